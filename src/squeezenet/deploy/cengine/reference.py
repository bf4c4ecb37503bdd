"""The engine's graph executed in Python: in float (calibration, and the check against the PyTorch module) and in
exactly the generated C's integer arithmetic (what the C output is compared with, bit for bit).

Integer convolutions run as float64 convolutions of integers, which are exact: every partial sum is below 2^31.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
import torch.nn.functional as F

from squeezenet.deploy.cengine.graph import INPUT, Add, Conv, Graph, MaxPool, fold, fold_norm
from squeezenet.deploy.cengine.quantize import ConvQ, Engine


def _pool(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, 3, 2, ceil_mode=True)


def _write(t: dict[str, torch.Tensor], graph: Graph, op: Conv, y: torch.Tensor) -> None:
    """Into channels [op.channel, op.channel + C) of op.dst: a Fire's expand branches share one tensor."""
    if op.dst not in t:
        s = graph.shapes[op.dst]
        t[op.dst] = y.new_zeros(y.shape[0], s.c, s.h, s.w)
    t[op.dst][:, op.channel:op.channel + y.shape[1]] = y


def _record(ranges: dict[str, tuple[float, float]] | None, name: str, y: torch.Tensor) -> None:
    if ranges is not None:
        lo, hi = ranges.get(name, (np.inf, -np.inf))
        ranges[name] = (min(lo, float(y.min())), max(hi, float(y.max())))


def run_float(graph: Graph, x: torch.Tensor, ranges: dict[str, tuple[float, float]] | None = None) -> torch.Tensor:
    """Logits of normalised NCHW images; `ranges` collects every tensor's (min, max), conv10's map as SCORES."""
    t, logits = {INPUT: x.float()}, None
    with torch.inference_mode():
        for op in graph.ops[1:]:
            if isinstance(op, Conv):
                k, b = (torch.from_numpy(v).float().view(1, -1, 1, 1) for v in fold(op))
                y = F.conv2d(t[op.src], op.conv.weight, None, op.conv.stride, op.conv.padding) * k + b
                y = y.clamp_min(0) if op.relu else y
                _record(ranges, op.dst, y)
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
                _record(ranges, op.dst, t[op.dst])
    return logits


def calibrate(graph: Graph, batches: Iterable[np.ndarray]) -> dict[str, tuple[float, float]]:
    """Min/max of every tensor over the calibration batches (ONNX Runtime's MinMax calibration)."""
    ranges: dict[str, tuple[float, float]] = {}
    for batch in batches:
        run_float(graph, torch.from_numpy(batch), ranges)
    return ranges


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

