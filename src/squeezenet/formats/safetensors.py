"""The project's own weights file: safetensors tensors plus the weights' description as JSON in its header.

safetensors, not pickle: reading a file runs no code, whoever wrote it.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_bytes

from squeezenet.atomic import write_bytes
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.weights import METADATA_KEY, Weights, check_fit, parse_json

MAX_HEADER = 1 << 24  # the JSON header: tensor entries and the metadata (~40 KB with 1000 ImageNet classes)


def _header_length(path: Path) -> None:
    """The first 8 bytes give the header's length: checked against the file and a sane bound before any parsing."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
    n = int.from_bytes(head, "little")
    if not 0 < n <= min(MAX_HEADER, size - 8):
        raise SqueezeNetError(f"{path}: not a safetensors file (its first bytes declare a header of {n:,} bytes, "
                              f"in a file of {size:,}; at most {MAX_HEADER:,})")


def read_safetensors(path: Path) -> Weights:
    """The project's safetensors: tensors plus a JSON description under the header key 'squeezenet'.

    The description and the tensors' shapes are checked before any tensor is read, so a forged file allocates
    no more than the model it describes."""
    _header_length(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta_json = (f.metadata() or {}).get(METADATA_KEY)
            if meta_json is None:
                raise SqueezeNetError("safetensors file without squeezenet metadata (not written by this project)")
            weights = Weights.from_header(parse_json(meta_json, "squeezenet metadata"), {})
            check_fit(weights.arch, weights.config, {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()})
            weights.state_dict = {k: f.get_tensor(k) for k in f.keys()}
        weights.build()
    except SqueezeNetError as e:
        raise SqueezeNetError(f"{path}: {e}") from None
    except (SafetensorError, OSError, ValueError, TypeError) as e:
        raise SqueezeNetError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0]})") from None
    return weights


def save(weights: Weights, path: str | Path) -> Path:
    """Write weights and their description as safetensors, atomically."""
    path = Path(path)
    d = weights.header()
    tensors = {k: v.detach().cpu().contiguous() for k, v in weights.state_dict.items()}
    write_bytes(path, save_bytes(tensors, metadata={METADATA_KEY: json.dumps(d)}))  # a full disk: an OSError
    return path
