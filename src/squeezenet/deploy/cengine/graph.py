"""A SqueezeNet as the C engine runs it: ops over named CHW tensors, lowered from the PyTorch module.

Lowered, not traced, so that anything the kernels cannot run is refused by name at export time: BatchNorm folds
into the convolution before it and ReLU into its requantization, dropout vanishes (eval mode), the global average
pool becomes conv10's epilogue (a sum into the scores, conv10's map is never stored), and a Fire's two expand
convolutions write the two halves of one tensor, so the concat costs nothing. Max pools run in place; `fuse` folds
one into the convolutions that produce its input (each output plane pooled as it is made). The planner sizes the
arena from this graph, the quantizer calibrates its tensors, the reference and the generated C execute it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from torch import nn

from squeezenet.errors import SqueezeNetError
from squeezenet.models.squeezenet import Fire, SqueezeNet, conv_out, pool_out

MAX_KERNEL = 15  # the kernels keep per-tap bounds for at most this kernel size on the stack
INPUT, SCORES = "input", "scores"  # the caller's image (converted into the arena) and the caller's output


@dataclass(frozen=True)
class Shape:
    """A CHW tensor as stored: `border` rows and columns of padding around each plane (what a padded convolution
    reading it needs), split into `phases` x `phases` planes per channel (what a strided convolution needs)."""

    c: int
    h: int
    w: int
    border: int = 0
    phases: int = 1

    @property
    def plane(self) -> int:
        return self.h * self.w

    @property
    def rows(self) -> int:
        return -(-(self.h + 2 * self.border) // self.phases)

    @property
    def cols(self) -> int:
        return -(-(self.w + 2 * self.border) // self.phases)

    @property
    def size(self) -> int:
        """Bytes stored."""
        return self.c * self.phases ** 2 * self.rows * self.cols

    def __str__(self) -> str:
        return f"{self.c}x{self.h}x{self.w}"


@dataclass(frozen=True)
class Input:
    """The caller's HWC RGB bytes, normalised and quantized through a lookup table into a CHW tensor."""

    name: str = INPUT
    dst: str = INPUT


@dataclass(frozen=True)
class Conv:
    """A convolution, its folded BatchNorm and ReLU; it writes channels [channel, channel + out.c) of dst."""

    name: str  # the paper's: conv1, fire2/squeeze1x1, conv10
    src: str
    dst: str
    key: str  # the state_dict name of its weight (where a codebook is found)
    conv: nn.Conv2d
    norm: nn.BatchNorm2d | None
    relu: bool
    out: Shape  # the convolution's own output, before a fused pool
    channel: int = 0
    epilogue: str = "store"  # "store", "max" (a fused 3x3/2 max pool) or "sum" (the global average pool)


@dataclass(frozen=True)
class MaxPool:
    """3x3/2 max pool with Caffe's ceil rounding, written in place over its input."""

    name: str
    src: str
    dst: str


@dataclass(frozen=True)
class Add:
    """A bypass: dst = src + other (then the sum's BatchNorm, if any), written in place over src."""

    name: str
    src: str
    other: str
    dst: str
    norm: nn.BatchNorm2d | None


Op = Input | Conv | MaxPool | Add


@dataclass(frozen=True)
class Graph:
    ops: tuple[Op, ...]
    shapes: dict[str, Shape]
    num_classes: int
    image_size: int

    def writers(self, tensor: str) -> list[Op]:
        return [op for op in self.ops if op.dst == tensor]


def reads(op: Op) -> tuple[str, ...]:
    return () if isinstance(op, Input) else (op.src, op.other) if isinstance(op, Add) else (op.src,)


def in_place(op: Op) -> bool:
    """The op's output starts where its input does (the planner gives both one offset)."""
    return isinstance(op, (MaxPool, Add))


def _unknown(where: str, m: nn.Module) -> SqueezeNetError:
    return SqueezeNetError(f"the C engine cannot express layer {where} ({type(m).__name__})")


def _activation(where: str, m: nn.Module) -> nn.BatchNorm2d | None:
    """ReLU, or BatchNorm then ReLU (the `bn` recipe): the BatchNorm to fold."""
    if type(m) is nn.ReLU:
        return None
    if type(m) is nn.Sequential and len(m) == 2 and type(m[0]) is nn.BatchNorm2d and type(m[1]) is nn.ReLU:
        return m[0]
    raise _unknown(where, m)


def _kernel(where: str, m: nn.Module) -> int:
    if type(m) is not nn.Conv2d:
        raise _unknown(where, m)
    k, s, p = m.kernel_size, m.stride, m.padding
    if isinstance(p, str) or k[0] != k[1] or s[0] != s[1] or p[0] != p[1] or m.dilation != (1, 1) \
            or m.groups != 1 or m.padding_mode != "zeros":
        raise SqueezeNetError(f"{where}: the C engine runs square, ungrouped, undilated, zero-padded convolutions")
    if k[0] > MAX_KERNEL:
        raise SqueezeNetError(f"{where}: a {k[0]}x{k[0]} kernel is larger than the C engine's {MAX_KERNEL}")
    return k[0]


class _Lowering:
    def __init__(self, image_size: int) -> None:
        self.ops: list[Op] = [Input()]
        self.shapes = {INPUT: Shape(3, image_size, image_size)}
        self.x = INPUT

    def conv(self, name: str, key: str, m: nn.Module, norm: nn.BatchNorm2d | None, relu: bool, src: str,
             dst: str, channel: int = 0, epilogue: str = "store") -> Shape:
        k = _kernel(key, m)
        i = self.shapes[src]
        if m.in_channels != i.c:
            raise SqueezeNetError(f"{key}: {m.in_channels} input channels for a {i.c}-channel tensor")
        out = Shape(m.out_channels, conv_out(i.h, k, m.stride[0], m.padding[0]),
                    conv_out(i.w, k, m.stride[0], m.padding[0]))
        self.ops.append(Conv(name, src, dst, f"{key}.weight", m, norm, relu, out, channel, epilogue))
        return out

    def stem(self, m: nn.Module, act: nn.Module) -> None:
        out = self.conv("conv1", "features.0", m, _activation("features.1", act), True, INPUT, "conv1")
        self.shapes["conv1"], self.x = out, "conv1"

    def pool(self, key: str, m: nn.Module, name: str) -> None:
        if type(m) is not nn.MaxPool2d or (m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode) not in (
                (3, 2, 0, 1, True), ((3, 3), (2, 2), (0, 0), (1, 1), True)):
            raise _unknown(key, m)
        s = self.shapes[self.x]
        self.shapes[name] = Shape(s.c, pool_out(s.h), pool_out(s.w))
        self.ops.append(MaxPool(name, self.x, name))
        self.x = name

    def fire(self, key: str, m: nn.Module, name: str) -> None:
        if type(m) is not Fire:
            raise _unknown(key, m)
        x, sq = self.x, f"{name}/squeeze1x1"
        self.shapes[sq] = self.conv(sq, f"{key}.squeeze", m.squeeze, _activation(f"{key}.squeeze_activation",
                                    m.squeeze_activation), True, x, sq)
        e1 = m.expand1x1.out_channels
        for part, channel in (("expand1x1", 0), ("expand3x3", e1)):
            out = self.conv(f"{name}/{part}", f"{key}.{part}", getattr(m, part), _activation(
                f"{key}.{part}_activation", getattr(m, f"{part}_activation")), True, sq, name, channel)
        self.shapes[name] = replace(out, c=m.out_channels)
        self.x = name
        if m.bypass == "none":
            return
        other = x
        if m.bypass == "conv":
            other = f"{name}/shortcut"
            self.shapes[other] = self.conv(other, f"{key}.shortcut", m.shortcut, None, False, x, other)
        norm = m.sum_norm if type(m.sum_norm) is nn.BatchNorm2d else None
        if norm is None and type(m.sum_norm) is not nn.Identity:
            raise _unknown(f"{key}.sum_norm", m.sum_norm)
        self.shapes[f"{name}+"] = self.shapes[name]
        self.ops.append(Add(f"{name}/bypass", name, other, f"{name}+", norm))
        self.x = f"{name}+"

    def head(self, classifier: nn.Sequential) -> None:
        parts = list(classifier)
        if len(parts) != 4 or type(parts[0]) is not nn.Dropout or type(parts[2]) not in (nn.ReLU, nn.Identity) \
                or type(parts[3]) is not nn.AdaptiveAvgPool2d or parts[3].output_size not in (1, (1, 1)):
            bad = next((f"classifier.{i}" for i, p in enumerate(parts)
                        if type(p) not in (nn.Dropout, nn.Conv2d, nn.ReLU, nn.Identity, nn.AdaptiveAvgPool2d)),
                       "classifier")
            raise SqueezeNetError(f"the C engine cannot express the classifier at {bad}: it runs dropout, conv10, "
                                  f"an optional ReLU and the global average pool")
        out = self.conv("conv10", "classifier.1", parts[1], None, type(parts[2]) is nn.ReLU, self.x, SCORES,
                        epilogue="sum")
        self.shapes[SCORES] = Shape(out.c, 1, 1)


def lower(model: nn.Module, image_size: int) -> Graph:
    """The graph of a SqueezeNet at `image_size` x `image_size`; anything else is a one-line SqueezeNetError."""
    if not isinstance(model, SqueezeNet):
        raise SqueezeNetError(f"the C engine runs SqueezeNets, not {getattr(model, 'arch', type(model).__name__)} "
                              f"(no fully connected layer kernel)")
    if image_size < model.min_input_size:
        raise SqueezeNetError(f"image size {image_size} is below this configuration's minimum "
                              f"{model.min_input_size}")
    low = _Lowering(image_size)
    features = list(model.features)
    low.stem(features[0], features[1])
    last = 1
    for i, m in enumerate(features[2:], start=2):
        if isinstance(m, Fire):
            last += 1
            low.fire(f"features.{i}", m, f"fire{last}")
        else:
            low.pool(f"features.{i}", m, f"maxpool{last}")
    low.head(model.classifier)
    return Graph(tuple(low.ops), _layouts(low.ops, low.shapes), model.num_classes, image_size)


def _layouts(ops: list[Op], shapes: dict[str, Shape]) -> dict[str, Shape]:
    """Each padded or strided convolution's input stored with the border and phases it reads; its producers
    write them, so every tensor carrying them must be made by convolutions (or be the input) and read by them."""
    for op in ops:
        if not isinstance(op, Conv):
            continue
        pad, stride = op.conv.padding[0], op.conv.stride[0]
        if pad == 0 and stride == 1:
            continue
        makers = [w for w in ops if w.dst == op.src]
        readers = [r for r in ops if op.src in reads(r)]
        fits = all(isinstance(w, Input) or isinstance(w, Conv) and w.epilogue == "store" for w in makers) and all(
            isinstance(r, Conv) for r in readers)
        if not fits or stride > 1 and op.src != INPUT:
            raise SqueezeNetError(f"{op.name}: the C engine pads or strides a convolution only where convolutions "
                                  f"make its input and read nothing else (the stem may stride)")
        s = shapes[op.src]
        shapes[op.src] = replace(s, border=max(s.border, pad), phases=stride)
    return shapes


def fusable(graph: Graph) -> list[str]:
    """Max pools whose input is made only by convolutions and read by nothing else: each can be fused."""
    out = []
    for op in graph.ops:
        if isinstance(op, MaxPool):
            made = graph.writers(op.src)
            others = [o for o in graph.ops if op.src in reads(o) and o is not op]
            if made and all(isinstance(w, Conv) and w.epilogue == "store" for w in made) and not others:
                out.append(op.name)
    return out


def fuse(graph: Graph, pools: set[str] | frozenset[str]) -> Graph:
    """The graph with the named max pools fused into the convolutions that produce their inputs."""
    pooled = {op.src: op.dst for op in graph.ops if isinstance(op, MaxPool) and op.name in pools}
    ops = tuple(replace(op, dst=pooled[op.dst], epilogue="max") if isinstance(op, Conv) and op.dst in pooled else op
                for op in graph.ops if not (isinstance(op, MaxPool) and op.name in pools))
    shapes = {k: v for k, v in graph.shapes.items() if k not in pooled}
    return replace(graph, ops=ops, shapes=shapes)


def fold_norm(norm: nn.BatchNorm2d | None, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) per channel of an eval-mode BatchNorm, float64; (1, 0) without one."""
    if norm is None:
        return np.ones(channels), np.zeros(channels)
    k = norm.weight.detach().double() / (norm.running_var.detach().double() + norm.eps).sqrt()
    return k.numpy(), (norm.bias.detach().double() - k * norm.running_mean.detach().double()).numpy()


def fold(op: Conv) -> tuple[np.ndarray, np.ndarray]:
    """The convolution's (scale, bias) per output channel with its BatchNorm folded in: y = scale * (w * x) + bias."""
    c = op.conv.out_channels
    bias = np.zeros(c) if op.conv.bias is None else op.conv.bias.detach().double().numpy()
    k, shift = fold_norm(op.norm, c)
    return k, k * bias + shift
