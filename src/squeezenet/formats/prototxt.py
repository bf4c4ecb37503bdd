"""The part of Caffe's prototxt the authors' Deep Compression file needs: its layers, their shapes and order.

A small tokenizer and parser (no protobuf dependency), bounded in size and depth, so that a hostile prototxt is a
one-line `SqueezeNetError`, never a crash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from squeezenet.errors import SqueezeNetError

MAX_PROTOTXT_BYTES = 1 << 20


MAX_DEPTH = 64  # messages inside messages; Caffe's nest 3 deep, deeper is forged (and would exhaust the stack)


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

    def message(i: int, depth: int) -> tuple[dict[str, list], int]:
        """The fields from token i to the matching '}' (depth 0: to the end of the file)."""
        fields: dict[str, list] = {}
        while i < len(tokens):
            key, ln = tokens[i]
            if key == "}":
                if not depth:
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
                if depth == MAX_DEPTH:
                    raise SqueezeNetError(f"{source}: line {tokens[i][1]}: messages nested deeper than {MAX_DEPTH}")
                value, i = message(i + 1, depth + 1)
            elif tok in "}:":
                raise SqueezeNetError(f"{source}: line {tokens[i][1]}: field {key!r} has no value")
            else:
                value, i = _scalar(tok), i + 1
            fields.setdefault(key, []).append(value)
        if depth:
            raise SqueezeNetError(f"{source}: unexpected end of file: a '{{' is never closed")
        return fields, i

    return message(0, 0)[0]


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
