"""The project's own weights file: safetensors tensors plus the weights' description as JSON in its header.

safetensors, not pickle: reading a file runs no code, whoever wrote it.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from squeezenet.atomic import atomic_path
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.weights import METADATA_KEY, Weights


def read_safetensors(path: Path) -> Weights:
    """The project's safetensors: tensors plus a JSON description under the header key 'squeezenet'."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta_json = (f.metadata() or {}).get(METADATA_KEY)
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise SqueezeNetError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0]})") from None
    if meta_json is None:
        raise SqueezeNetError(f"{path}: safetensors file without squeezenet metadata (not written by this project)")
    try:
        weights = Weights.from_header(json.loads(meta_json), state)
    except (ValueError, RecursionError) as e:
        raise SqueezeNetError(f"{path}: damaged squeezenet metadata ({type(e).__name__})") from None
    except SqueezeNetError as e:
        raise SqueezeNetError(f"{path}: {e}") from None
    try:
        weights.build()
    except (SqueezeNetError, ValueError, TypeError) as e:
        raise SqueezeNetError(f"{path}: {e}") from None
    return weights


def save(weights: Weights, path: str | Path) -> Path:
    """Write weights and their description as safetensors, atomically."""
    path = Path(path)
    d = weights.header()
    tensors = {k: v.detach().cpu().contiguous() for k, v in weights.state_dict.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(d)})
    return path
