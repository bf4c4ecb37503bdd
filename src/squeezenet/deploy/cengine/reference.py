"""The engine's graph executed in Python: in float (calibration, and the check against the PyTorch module) and in
exactly the generated C's integer arithmetic (what the C output is compared with, bit for bit).

Integer convolutions run as float64 convolutions of integers, which are exact: every partial sum is below 2^31.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from squeezenet.deploy.cengine.graph import INPUT, SCORES, Add, Conv, Graph, MaxPool, fold, fold_norm
from squeezenet.deploy.cengine.quantize import ConvQ, Engine


def _pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, 2, ceil_mode=True)


def _write(t: dict[str, torch.Tensor], graph: Graph, op: Conv, y: torch.Tensor) -> None:
    """Into channels [op.channel, op.channel + C) of op.dst: a Fire's expand branches share one tensor."""
    if op.dst not in t:
        s = graph.shapes[op.dst]
        t[op.dst] = y.new_zeros(y.shape[0], s.c, s.h, s.w)
    t[op.dst][:, op.channel:op.channel + y.shape[1]] = y


CALIBRATION_PERCENTILE = 99.999  # of each tensor's values; MinMax's few outliers cost resolution (docs, C engine)


class _Ranges:
    """Each tensor's `percentile` range over the calibration images, from its largest and smallest values, as many
    kept as four times the first batch's share would need (a Fire's output comes in two halves). conv10's map keeps
    its extremes (its 16 bits have room)."""

    def __init__(self, batches: int, percentile: float) -> None:
        self.batches, self.share = batches, (100 - percentile) / 100
        self.kept: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.seen: dict[str, int] = {}

    def __call__(self, name: str, y: torch.Tensor) -> None:
        flat = y.flatten()
        keep = 1 if name == SCORES else int(4 * flat.numel() * self.batches * self.share) + 1
        hi, lo = self.kept.get(name, (flat[:0], flat[:0]))
        hi, lo = torch.cat([hi, flat]), torch.cat([lo, -flat])
        self.kept[name] = (hi.topk(min(keep, len(hi))).values, lo.topk(min(keep, len(lo))).values)
        self.seen[name] = self.seen.get(name, 0) + flat.numel()

    def ranges(self) -> dict[str, tuple[float, float]]:
        out = {}
        for name, (hi, lo) in self.kept.items():
            k = 1 if name == SCORES else min(len(hi), max(1, int(self.seen[name] * self.share)))
            out[name] = (-float(lo[k - 1]), float(hi[k - 1]))
        return out


def run_float(graph: Graph, x: torch.Tensor,
              record: Callable[[str, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Logits of normalised NCHW images; `record(name, values)` sees every tensor, conv10's map as SCORES."""
    t, logits = {INPUT: x.float()}, None
    record = record or (lambda name, y: None)
    with torch.inference_mode():
        for op in graph.ops[1:]:
            if isinstance(op, Conv):
                k, b = (torch.from_numpy(v).float().view(1, -1, 1, 1) for v in fold(op))
                y = F.conv2d(t[op.src], op.conv.weight, None, op.conv.stride, op.conv.padding) * k + b
                y = y.clamp_min(0) if op.relu else y
                record(op.dst, y)
                if op.epilogue == "sum":
                    logits = y.mean((2, 3))
                    continue
                _write(t, graph, op, _pool(y) if op.epilogue == "max" else y)
            elif isinstance(op, MaxPool):
                t[op.dst] = _pool(t[op.src])
            elif isinstance(op, Add):
                k, b = (torch.from_numpy(v).float().view(1, -1, 1, 1) for v in fold_norm(op.norm, graph.shapes[
                    op.dst].c))
                t[op.dst] = (t[op.src] + t[op.other]) * k + b
                record(op.dst, t[op.dst])
    return logits


def calibrate(graph: Graph, batches: Sequence[np.ndarray],
              percentile: float = CALIBRATION_PERCENTILE) -> dict[str, tuple[float, float]]:
    """Every tensor's range over the calibration batches (`percentile` 100: ONNX Runtime's MinMax)."""
    ranges = _Ranges(len(batches), percentile)
    for batch in batches:
        run_float(graph, torch.from_numpy(batch), ranges)
    return ranges.ranges()


def _requantize(acc: np.ndarray, p: ConvQ) -> np.ndarray:
    mult = p.mult.astype(np.int64).reshape(1, -1, 1, 1)
    t = (acc + p.bias.astype(np.int64).reshape(1, -1, 1, 1)) * mult + p.rounding
    return np.clip(t >> p.shift, p.lo, p.hi)  # an arithmetic shift: floor, as the C computes it


def quantized_input(engine: Engine, crops: np.ndarray) -> np.ndarray:
    """NHWC RGB uint8 crops -> the NCHW quantized input, through the engine's lookup tables."""
    return np.stack([engine.lut[c][crops[..., engine.source[c]]] for c in range(3)], 1)


def run_int(engine: Engine, crops: np.ndarray) -> np.ndarray:
    """The scores (int64, N x classes) the generated C computes for NHWC RGB uint8 crops, bit for bit."""
    graph = engine.graph
    t = {INPUT: torch.from_numpy(quantized_input(engine, crops)).double()}
    scores = None
    with torch.inference_mode():
        for op in graph.ops[1:]:
            if isinstance(op, Conv):
                p = engine.convs[op.name]
                x = t[op.src] - torch.from_numpy(p.in_zero).double().view(1, -1, 1, 1)
                acc = F.conv2d(x, torch.from_numpy(p.weight).double(), None, op.conv.stride,
                               op.conv.padding)
                y = _requantize(acc.numpy().astype(np.int64), p)
                if op.epilogue == "sum":
                    scores = (y - p.out_zero).sum((2, 3))
                    continue
                y = torch.from_numpy(y).double()
                _write(t, graph, op, _pool(y) if op.epilogue == "max" else y)
            elif isinstance(op, MaxPool):
                t[op.dst] = _pool(t[op.src])
            elif isinstance(op, Add):
                p = engine.adds[op.name]
                a, b = t[op.src].numpy().astype(np.int64), t[op.other].numpy().astype(np.int64)
                s = ((a - p.zero_a) * p.mult_a.astype(np.int64).reshape(1, -1, 1, 1)
                     + (b - p.zero_b) * p.mult_b.astype(np.int64).reshape(1, -1, 1, 1) + p.offset.reshape(1, -1, 1, 1))
                t[op.dst] = torch.from_numpy(np.clip(s >> p.shift, 0, 255)).double()
    return scores


def logits_of(engine: Engine, scores: np.ndarray) -> np.ndarray:
    return scores * engine.score_scale

