"""Reader of the authors' Deep Compression files (`compressed_SqueezeNet.net` + a Caffe prototxt).

The binary has no magic, no names and no shapes: they come from the prototxt. So every size is checked
against the bytes that remain before anything is read or allocated, and the layers must consume the file
exactly; a truncated, padded or damaged file, or a prototxt that does not match it, is a one-line
`SqueezeNetError` saying where. The layout is documented in the shared `FORMAT.md`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from squeezenet.errors import SqueezeNetError
from squeezenet.formats.weights import Quantized, Weights, imagenet_classes
from squeezenet.models.preprocessing import CAFFE
from squeezenet.models.registry import model_config
from squeezenet.models.squeezenet import SqueezeNet

MAX_PROTOTXT_BYTES = 1 << 20


MAX_LAYER_WEIGHTS = 1 << 26  # 256 MB as float32; AlexNet's largest layer has 37.7 M


_STORED = ("conv", "fc", "ip")  # the authors' decoder keeps a layer only if its name contains one of these


_PARAMETERISED = {"convolution", "innerproduct", "inner_product"}


_TOKEN = re.compile(r'\s+|#[^\n]*|"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|[{}:]|[^\s{}:"\'#]+')


def parse_prototxt(text: str, source: str = "prototxt") -> dict[str, list]:
    """Protobuf text format as nested dicts: every field maps to the list of its values (fields repeat)."""
    tokens: list[tuple[str, int]] = []
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise SqueezeNetError(f"{source}: line {line}: cannot parse {text[pos:pos + 20]!r}")
        tok = m.group()
        if not (tok[0].isspace() or tok[0] == "#"):
            tokens.append((tok, line))
        line += tok.count("\n")
        pos = m.end()

    def message(i: int, closing: bool) -> tuple[dict[str, list], int]:
        fields: dict[str, list] = {}
        while i < len(tokens):
            key, ln = tokens[i]
            if key == "}":
                if not closing:
                    raise SqueezeNetError(f"{source}: line {ln}: unexpected '}}'")
                return fields, i + 1
            if not re.fullmatch(r"[A-Za-z_]\w*", key):
                raise SqueezeNetError(f"{source}: line {ln}: expected a field name, got {key!r}")
            i += 1
            if i < len(tokens) and tokens[i][0] == ":":
                i += 1
            if i >= len(tokens):
                raise SqueezeNetError(f"{source}: line {ln}: field {key!r} has no value")
            tok = tokens[i][0]
            if tok == "{":
                value, i = message(i + 1, closing=True)
            elif tok in "}:":
                raise SqueezeNetError(f"{source}: line {tokens[i][1]}: field {key!r} has no value")
            else:
                value, i = _scalar(tok), i + 1
            fields.setdefault(key, []).append(value)
        if closing:
            raise SqueezeNetError(f"{source}: unexpected end of file: a '{{' is never closed")
        return fields, i

    return message(0, closing=False)[0]


def _scalar(tok: str) -> int | float | str:
    if tok[0] in "\"'":
        return tok[1:-1]
    for cast in (int, float):
        try:
            return cast(tok)
        except ValueError:
            pass
    return tok  # an enum such as MAX, or a bool


@dataclass(frozen=True)
class LayerSpec:
    """One parameterised layer of the prototxt, in the order the file stores them."""

    name: str
    out_channels: int
    in_channels: int
    kernel: tuple[int, int]
    stride: int
    pad: int
    group: int

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.out_channels, self.in_channels // self.group, *self.kernel)

    @property
    def bits(self) -> int:
        return 8 if "conv" in self.name else 4


def _one(fields: dict, key: str, default=None, where: str = ""):
    values = fields.get(key)
    if not values:
        if default is None:
            raise SqueezeNetError(f"{where}: missing {key!r}")
        return default
    return values[0]


def _int(value, what: str, minimum: int = 1) -> int:
    if not isinstance(value, int) or value < minimum:
        raise SqueezeNetError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def _input_channels(net: dict, source: str) -> tuple[str, int]:
    """The input blob's name and channels from `input_dim`, `input_shape` or an Input layer."""
    name = _one(net, "input", "data")
    dims = net.get("input_dim") or (net.get("input_shape") or [{}])[0].get("dim")
    if dims:
        if len(dims) != 4:
            raise SqueezeNetError(f"{source}: the input has {len(dims)} dimensions, expected 4 (N, C, H, W)")
        return name, _int(dims[1], f"{source}: input channels")
    for layer in net.get("layer", []) + net.get("layers", []):
        if str(_one(layer, "type", "")).lower() == "input":
            shape = _one(_one(layer, "input_param", {}), "shape", {})
            dims = shape.get("dim", [])
            if len(dims) == 4:
                return _one(layer, "top", where=source), _int(dims[1], f"{source}: input channels")
    raise SqueezeNetError(f"{source}: no input shape (input_dim, input_shape or an Input layer)")


def layer_specs(net: dict, source: str = "prototxt") -> list[LayerSpec]:
    """The layers the file stores, with shapes: channels are followed through the graph blob by blob."""
    data, channels = _input_channels(net, source)
    blobs = {data: channels}
    specs = []
    for layer in net.get("layer", []) + net.get("layers", []):
        name = str(_one(layer, "name", "", source))
        where = f"{source}: layer {name!r}"
        kind = str(_one(layer, "type", "", where)).lower()
        bottoms, tops = layer.get("bottom", []), layer.get("top", [])
        if kind == "input":
            continue
        missing = [b for b in bottoms if b not in blobs]
        if missing:
            raise SqueezeNetError(f"{where}: input blob {missing[0]!r} is not produced by any earlier layer")
        if kind in _PARAMETERISED:
            if not any(s in name for s in _STORED):
                raise SqueezeNetError(f"{where}: has parameters but its name contains none of "
                                      f"{', '.join(_STORED)}, so the file does not store it")
            if kind != "convolution":
                raise SqueezeNetError(f"{where}: InnerProduct layers are not supported (only convolutions)")
            p = _one(layer, "convolution_param", where=where)
            k = _int(_one(p, "kernel_size", where=where), f"{where}: kernel_size")
            spec = LayerSpec(name, _int(_one(p, "num_output", where=where), f"{where}: num_output"),
                             blobs[bottoms[0]] if bottoms else 0, (k, k),
                             _int(_one(p, "stride", 1), f"{where}: stride"),
                             _int(_one(p, "pad", 0), f"{where}: pad", 0),
                             _int(_one(p, "group", 1), f"{where}: group"))
            if len(bottoms) != 1 or spec.in_channels % spec.group or spec.out_channels % spec.group:
                raise SqueezeNetError(f"{where}: needs one input whose channels divide into {spec.group} groups")
            specs.append(spec)
            out = spec.out_channels
        elif kind == "concat":
            out = sum(blobs[b] for b in bottoms)
        elif bottoms:
            out = blobs[bottoms[0]]
        else:
            raise SqueezeNetError(f"{where}: layer type {kind!r} without inputs is not supported")
        for t in tops:
            blobs[t] = out
    if not specs:
        raise SqueezeNetError(f"{source}: no convolution layers")
    return specs


def read_prototxt(path: str | Path) -> list[LayerSpec]:
    path = Path(path)
    if not path.is_file():
        raise SqueezeNetError(f"prototxt not found: {path}")
    if path.stat().st_size > MAX_PROTOTXT_BYTES:
        raise SqueezeNetError(f"{path}: {path.stat().st_size:,} bytes is too large for a prototxt")
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise SqueezeNetError(f"{path}: not a text prototxt ({e.reason} at byte {e.start})") from None
    return layer_specs(parse_prototxt(text, path.name), path.name)


def find_prototxt(net_path: str | Path) -> Path:
    """The prototxt beside a `.net` file: the only `*deploy*.prototxt`, else the only `*.prototxt`."""
    folder = Path(net_path).parent
    for pattern in ("*deploy*.prototxt", "*.prototxt"):
        found = sorted(folder.glob(pattern))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise SqueezeNetError(f"several prototxt files beside {net_path} ({', '.join(p.name for p in found)}); "
                                  "name one explicitly")
    raise SqueezeNetError(f"no prototxt beside {net_path}: the .net file needs the network's prototxt")


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
    most = 4 * len(specs) + sum(4 * (1 << s.bits) + 4 * s.out_channels + 2 * math.prod(s.shape) for s in specs)
    if size > most:  # every entry advances at least one weight: no file for this prototxt can be larger
        raise SqueezeNetError(f"{name}: {size:,} bytes is more than any file for this prototxt can hold "
                              f"({most:,}): not a Deep Compression file or mismatched prototxt")
    raw = memoryview(path.read_bytes())
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
        if numel > MAX_LAYER_WEIGHTS:
            raise SqueezeNetError(f"{where}: shape {spec.shape} has {numel:,} weights, more than this reader "
                                  f"accepts ({MAX_LAYER_WEIGHTS:,})")
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
