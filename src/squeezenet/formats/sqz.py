"""The `.sqz` file: a compressed SqueezeNet (or AlexNet) that rebuilds a working `nn.Module` on its own.

    magic  b"\\x89SQZ\\r\\n\\x1a\\n"   (PNG-style: catches text-mode transfers and truncation at byte 0)
    u8     version (2; version 1 files, which lack the context records, read too)
    u32    header length, then zlib(JSON): arch ("squeezenet" or "alexnet"), config, classes, class_ids,
           preprocessing, meta, and the tensors' names and shapes (the 1000 ImageNet classes are stored as the
           name "imagenet": 14 KB saved in a 400 KB file)
    u16    number of tensors: the model's state_dict, in its order
    per tensor: u8 kind, then
        raw kinds (fp32, fp16, int64): numel values, little-endian
        quantized (codebook fp16 or fp32, code 0 the implicit 0.0): `records`, the streams of version 1
            (codes and relative index) or the context-modelled stream of version 2, the smaller per layer
    u32    CRC-32 of everything before it

The reader checks the declared tensors against the configuration (on the meta device: no memory), the file's size
against what they can need before it reads past the header, and every count and length against the declared shapes
and the bytes that remain before it allocates, so a truncated, corrupted, forged or huge file is a one-line
`SqueezeNetError`. Conv (grouped too) and linear weights are stored alike.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from squeezenet.atomic import write_bytes
from squeezenet.errors import ConfigError, SqueezeNetError
from squeezenet.formats import records
from squeezenet.formats.records import DEFAULT_CODERS, F16, F32, GAP_BITS, I64, Reader
from squeezenet.formats.weights import Quantized, Weights, parse_json, state_shapes
from squeezenet.models.registry import ARCHS, architecture, describe

MAGIC = b"\x89SQZ\r\n\x1a\n"
VERSION = 2
READS = (1, 2)
MAX_HEADER = 1 << 20  # the JSON header, compressed and decompressed
PREFIX = len(MAGIC) + 5  # magic, version, header length
RECORD_SLACK = 4096  # a record is at most 1 + 8 bytes a value (int64 raw), or quantized: codebook, 2 streams
_RAW = {F32: np.dtype("<f4"), F16: np.dtype("<f2"), I64: np.dtype("<i8")}


@dataclass
class Decoded:
    """A read file: the usable weights, the quantized tensors as stored (to re-encode), per-tensor costs."""

    weights: Weights
    quantized: dict[str, Quantized]
    layers: list[dict]


def encode(weights: Weights, quantized: dict[str, Quantized], *, gap_bits: int | None = None,
           coders: tuple[str, ...] = DEFAULT_CODERS, float_dtype: str = "f16",
           codebook_dtype: str = "f16") -> tuple[bytes, list[dict]]:
    """The file's bytes and, per tensor, what it cost.

    Tensors named in `quantized` are stored as codes and codebook, the rest of the state_dict (biases) in
    `float_dtype`; `gap_bits=None` picks the index width per layer.
    """
    if weights.arch not in ARCHS:
        raise ConfigError(f"the .sqz format stores {' and '.join(ARCHS)}, not {weights.arch}")
    if gap_bits is not None and gap_bits not in GAP_BITS:
        raise ConfigError(f"gap_bits must be one of {GAP_BITS}, got {gap_bits}")
    if float_dtype not in ("f16", "f32") or codebook_dtype not in ("f16", "f32"):
        raise ConfigError("float_dtype and codebook_dtype must be 'f16' or 'f32'")
    with torch.device("meta"):
        model = architecture(weights.arch, weights.config)
    expected = model.state_dict()
    tensors = {k: quantized.get(k, v) for k, v in weights.state_dict.items()}
    if list(tensors) != list(expected) or set(quantized) - set(expected):
        diff = sorted((set(expected) ^ set(tensors)) | (set(quantized) - set(expected)))
        raise ConfigError(f"weights do not match their configuration (first difference: "
                         f"{diff[0] if diff else 'order'})")
    header = weights.header(compact=True) | {"config": describe(model)[1],
                                    "tensors": [[k, list(v.shape)] for k, v in expected.items()]}
    head = zlib.compress(json.dumps(header, separators=(",", ":")).encode(), 9)
    parts = [MAGIC, struct.pack("<BI", VERSION, len(head)), head, struct.pack("<H", len(tensors))]
    layers = []
    for name, t in tensors.items():
        shape = tuple(expected[name].shape)
        if isinstance(t, Quantized):
            if t.codes.shape != shape:
                raise ConfigError(f"{name}: codes of shape {t.codes.shape}, expected {shape}")
            rec, info = records.write(t, gap_bits, coders, codebook_dtype)
        else:
            a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
            if a.shape != shape:
                raise ConfigError(f"{name}: shape {a.shape}, expected {shape}")
            kind = I64 if a.dtype.kind in "iu" else (F16 if float_dtype == "f16" else F32)
            rec = bytes([kind]) + np.ascontiguousarray(a, dtype=_RAW[kind]).tobytes()
            info = {"kind": _RAW[kind].name, "raw_bytes": len(rec) - 1}
        parts.append(rec)
        layers.append({"name": name, "shape": list(shape), "numel": int(np.prod(shape)), "bytes": len(rec)} | info)
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body)), layers


def _header(raw: bytes) -> dict:
    d = zlib.decompressobj()
    try:
        text = d.decompress(raw, MAX_HEADER)
    except zlib.error as e:
        raise SqueezeNetError(f"corrupt header: {e}") from None
    if d.unconsumed_tail or not d.eof:
        raise SqueezeNetError("corrupt header (bad or oversized compressed JSON)")
    header = parse_json(text, "header")
    if not isinstance(header, dict) or not isinstance(header.get("arch"), str) or header["arch"] not in ARCHS \
            or not isinstance(header.get("config"), dict):
        raise SqueezeNetError(f"header: arch must be one of {', '.join(ARCHS)} with a config object")
    return header


def _expected(header: dict) -> list[tuple[str, tuple[int, ...]]]:
    """The tensors the header declares (names and shapes, in file order), checked against the configuration
    before anything is read."""
    tensors = header.get("tensors")
    ok = isinstance(tensors, list) and all(
        isinstance(t, list) and len(t) == 2 and isinstance(t[0], str) and isinstance(t[1], list)
        and len(t[1]) <= 4 and all(type(d) is int and 0 < d < 1 << 31 for d in t[1]) for t in tensors)
    if not ok or len({t[0] for t in tensors}) != len(tensors):
        raise SqueezeNetError("header has no valid tensor list")
    out = [(name, tuple(shape)) for name, shape in tensors]
    if list(state_shapes(header["arch"], header["config"])) != out:
        raise SqueezeNetError("the declared tensors are not those of the configuration")
    return out


def _start(r: Reader) -> tuple[dict, list[tuple[str, tuple[int, ...]]]]:
    """Magic, version and header: the header checked and its tensors declared, from the first bytes alone."""
    if bytes(r.take(len(MAGIC), "magic")) != MAGIC:
        raise SqueezeNetError("not a .sqz file (bad magic)")
    version, hlen = r.unpack("<BI", "version")
    if version not in READS:
        raise SqueezeNetError(f"unsupported .sqz version {version} (this reader knows {READS[0]}-{READS[-1]})")
    if hlen > MAX_HEADER:
        raise SqueezeNetError(f"a header of {hlen:,} bytes is larger than any .sqz holds ({MAX_HEADER:,})")
    header = _header(bytes(r.take(hlen, "header")))
    return header, _expected(header)


def decode(data: bytes) -> Decoded:
    """Parse and validate a whole file; raises SqueezeNetError naming the first problem."""
    if len(data) < len(MAGIC) + 9 or data[:len(MAGIC)] != MAGIC:
        raise SqueezeNetError("not a .sqz file (bad magic or too short)")
    if struct.unpack("<I", data[-4:])[0] != zlib.crc32(memoryview(data)[:-4]):
        raise SqueezeNetError("checksum mismatch: the file is corrupted")
    r = Reader(data, len(data) - 4)
    header, expected = _start(r)
    (count,) = r.unpack("<H", "tensor count")
    if count != len(expected):
        raise SqueezeNetError(f"file holds {count} tensors, the configuration has {len(expected)}")
    state, layers, quantized = {}, [], {}
    for name, shape in expected:
        numel = int(np.prod(shape, dtype=np.int64))
        start = r.pos
        (kind,) = r.unpack("<B", f"{name} kind")
        info: dict = {"name": name, "shape": list(shape), "numel": numel}
        if kind in _RAW:
            a = np.frombuffer(r.take(numel * _RAW[kind].itemsize, name), _RAW[kind])
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise SqueezeNetError(f"{name}: non-finite values")
            t = torch.from_numpy(a.astype(np.float32 if kind != I64 else np.int64).reshape(shape))
            info |= {"kind": _RAW[kind].name, "raw_bytes": numel * _RAW[kind].itemsize}
        elif kind in records.STREAMS or kind in records.CONTEXT:
            q, more = records.read(r, kind, name, shape)
            quantized[name] = q
            t = torch.from_numpy(q.weight)
            info |= more
        else:
            raise SqueezeNetError(f"{name}: unknown tensor kind {kind}")
        state[name] = t
        layers.append(info | {"bytes": r.pos - start})
    if r.pos != r.end:
        raise SqueezeNetError(f"{r.end - r.pos:,} unexpected bytes after the last tensor")
    weights = Weights.from_header(header, state)
    weights.codebooks = quantized
    return Decoded(weights, quantized, layers)


def write(path: str | Path, weights: Weights, quantized: dict[str, Quantized], **kw) -> list[dict]:
    """Encode and write atomically; returns the per-tensor costs (see `encode`)."""
    data, layers = encode(weights, quantized, **kw)
    write_bytes(path, data)
    return layers


def _read_bounded(path: Path) -> bytes:
    """The file's bytes, once its header says how large it can be: a huge or sparse file is refused after reading
    its first bytes, and no more than that bound is ever read."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        start = f.read(PREFIX)
        if len(start) == PREFIX and start[:len(MAGIC)] == MAGIC:
            start += f.read(min(struct.unpack("<I", start[-4:])[0], MAX_HEADER))
        r = Reader(start, len(start))
        _, expected = _start(r)
        most = r.pos + 2 + sum(8 * int(np.prod(s, dtype=np.int64)) + RECORD_SLACK for _, s in expected) + 4
        if size > most:
            raise SqueezeNetError(f"{size:,} bytes is more than any .sqz of its configuration holds ({most:,})")
        f.seek(0)
        return f.read(most)


def read(path: str | Path) -> Weights:
    """`squeezenet.load`'s reader for .sqz files."""
    path = Path(path)
    try:
        return decode(_read_bounded(path)).weights
    except SqueezeNetError as e:
        raise SqueezeNetError(f"{path}: {e}") from None


def is_sqz(data: bytes) -> bool:
    return data[:len(MAGIC)] == MAGIC

