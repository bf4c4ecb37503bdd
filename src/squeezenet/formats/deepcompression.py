"""Reader of the authors' Deep Compression files (`compressed_SqueezeNet.net` + a Caffe prototxt).

The binary has no magic, no names and no shapes: they come from the prototxt. So every size is checked
against the bytes that remain before anything is read or allocated, and the layers must consume the file
exactly; a truncated, padded or damaged file, or a prototxt that does not match it, is a one-line
`SqueezeNetError` saying where. The layout is documented in the shared `FORMAT.md`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from squeezenet.errors import SqueezeNetError
from squeezenet.formats.prototxt import LayerSpec, find_prototxt, read_prototxt
from squeezenet.formats.weights import MAX_PARAMS, Quantized, Weights, imagenet_classes
from squeezenet.models.preprocessing import CAFFE
from squeezenet.models.registry import model_config
from squeezenet.models.squeezenet import SqueezeNet


@dataclass
class CompressedLayer:
    """One decoded layer: `codes` indexes `codebook` (code 0 = 0.0 = pruned), the bias is dense fp32."""

    spec: LayerSpec
    codebook: np.ndarray  # float32 (2**bits,)
    codes: np.ndarray  # uint8, spec.shape
    bias: np.ndarray  # float32 (out_channels,)
    entries: int  # stored entries, fillers included

    @property
    def weight(self) -> np.ndarray:
        return self.codebook[self.codes]


@dataclass
class DeepCompressionFile:
    layers: list[CompressedLayer]
    file_bytes: int

    def stats(self) -> dict[str, int]:
        return {"layers": len(self.layers),
                "weights": sum(int(lay.codes.size) for lay in self.layers),
                "nonzero": sum(int(np.count_nonzero(lay.codebook[lay.codes])) for lay in self.layers),
                "biases": sum(int(lay.bias.size) for lay in self.layers),
                "entries": sum(lay.entries for lay in self.layers),
                "bytes": self.file_bytes}


def _nibbles(packed: np.ndarray, n: int) -> np.ndarray:
    """Unpack 4-bit values, low nibble first."""
    return np.stack([packed & 15, packed >> 4], axis=1).reshape(-1)[:n]


def read_net(path: str | Path, prototxt: str | Path | None = None) -> DeepCompressionFile:
    """Decode a Deep Compression `.net` file with the layer list of its prototxt (found beside it by default)."""
    path = Path(path)
    specs = read_prototxt(prototxt if prototxt is not None else find_prototxt(path))
    if not path.is_file():
        raise SqueezeNetError(f"weights file not found: {path}")
    name, size = path.name, path.stat().st_size
    total = sum(math.prod(s.shape) for s in specs)
    if total > MAX_PARAMS:  # checked before reading: it bounds `most`, hence what is read and allocated
        raise SqueezeNetError(f"{name}: the prototxt describes {total:,} weights, more than this reader accepts "
                              f"({MAX_PARAMS:,})")
    most = 4 * len(specs) + sum(4 * (1 << s.bits) + 4 * s.out_channels + 2 * math.prod(s.shape) for s in specs)
    if size > most:  # every entry advances at least one weight: no file for this prototxt can be larger
        raise SqueezeNetError(f"{name}: {size:,} bytes is more than any file for this prototxt can hold "
                              f"({most:,}): not a Deep Compression file or mismatched prototxt")
    with open(path, "rb") as f:
        raw = memoryview(f.read(most))  # no more than the size checked: the file may grow meanwhile
    header = 4 * len(specs)
    if len(raw) < header:
        raise SqueezeNetError(f"{name}: {len(raw):,} bytes cannot hold the {len(specs)}-layer header "
                              f"({header} bytes): truncated file or mismatched prototxt")
    counts = np.frombuffer(raw[:header], "<u4").astype(np.int64)
    offset, layers = header, []
    for i, (spec, n) in enumerate(zip(specs, counts, strict=True)):
        where = f"{name}: layer {i} ({spec.name})"
        k, per_byte = 1 << spec.bits, 8 // spec.bits
        code_bytes, gap_bytes = (n - 1) // per_byte + 1, (n - 1) // 2 + 1
        need = 4 * k + 4 * spec.out_channels + code_bytes + gap_bytes
        if need > len(raw) - offset:
            raise SqueezeNetError(f"{where} needs {need:,} bytes ({n:,} entries) at offset {offset:,} but only "
                                  f"{len(raw) - offset:,} remain: truncated file or mismatched prototxt")
        numel = math.prod(spec.shape)
        codebook = np.frombuffer(raw[offset:offset + 4 * k], "<f4").astype(np.float32)
        offset += 4 * k
        bias = np.frombuffer(raw[offset:offset + 4 * spec.out_channels], "<f4").astype(np.float32)
        offset += 4 * spec.out_channels
        packed = np.frombuffer(raw[offset:offset + code_bytes], np.uint8)
        codes = packed if per_byte == 1 else _nibbles(packed, n)
        offset += code_bytes
        gaps = _nibbles(np.frombuffer(raw[offset:offset + gap_bytes], np.uint8), n).astype(np.int64)
        offset += gap_bytes
        if codebook[0] != 0 or not np.isfinite(codebook).all() or not np.isfinite(bias).all():
            raise SqueezeNetError(f"{where}: damaged codebook or bias (code 0 must be 0.0, all values finite)")
        positions = np.cumsum(gaps + 1) - 1
        if n and positions[-1] >= numel:
            raise SqueezeNetError(f"{where}: entries reach weight {positions[-1]:,} of a {spec.shape} tensor "
                                  f"({numel:,} weights): damaged file or mismatched prototxt")
        fake = np.flatnonzero((codes == 0) & (gaps != 15))
        if fake.size:
            raise SqueezeNetError(f"{where}: entry {fake[0]:,} stores a zero weight without being a gap filler: "
                                  "damaged file or mismatched prototxt")
        dense = np.zeros(numel, np.uint8)
        dense[positions] = codes
        layers.append(CompressedLayer(spec, codebook, dense.reshape(spec.shape), bias, int(n)))
    if offset != len(raw):
        raise SqueezeNetError(f"{name}: {len(raw) - offset:,} bytes left after the last of {len(specs)} layers "
                              f"(file of {len(raw):,} bytes): extended file or mismatched prototxt")
    return DeepCompressionFile(layers, len(raw))


def read_deep_compression(path: Path, prototxt: str | Path | None = None) -> Weights:
    """The authors' `.net` as a dense Caffe-variant SqueezeNet (conv10 padding 1) with the Caffe preprocessing."""
    prototxt = Path(prototxt) if prototxt is not None else find_prototxt(path)
    decoded = read_net(path, prototxt)
    final = decoded.layers[-1].spec
    shapes = [lay.spec.shape for lay in decoded.layers]
    for name in ("squeezenet1_0", "squeezenet1_1"):
        if final.pad > 1:
            continue
        config = model_config(name, num_classes=final.out_channels, conv10_padding=final.pad, init="paper")
        expected = {k: tuple(p.shape) for k, p in SqueezeNet(config).state_dict().items() if k.endswith("weight")}
        if list(expected.values()) == shapes:
            break
    else:
        raise SqueezeNetError(f"{prototxt.name}: the layers do not describe SqueezeNet v1.0 or v1.1")
    state: dict[str, torch.Tensor] = {}
    codebooks: dict[str, Quantized] = {}
    for key, layer in zip(expected, decoded.layers, strict=True):
        state[key] = torch.from_numpy(layer.weight)
        state[key[: -len("weight")] + "bias"] = torch.from_numpy(layer.bias)
        codebooks[key] = Quantized(layer.codes, layer.codebook, 8)
    if final.out_channels == 1000:
        class_ids, classes = imagenet_classes()
    else:
        class_ids, classes = None, [f"class {i}" for i in range(final.out_channels)]
    meta = {"source": path.name, "format": "deep-compression", "prototxt": prototxt.name, **decoded.stats()}
    return Weights("squeezenet", config.to_dict(), state, classes, CAFFE, class_ids, meta, codebooks)
