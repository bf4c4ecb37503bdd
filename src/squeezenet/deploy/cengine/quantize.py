"""Everything the C engine computes with, fixed at export time: integer weights, streams, scales, multipliers.

Weights: each layer's shared values (its codebook, code 0 = 0.0) become int8 with one scale, so a weight stays
a code into 2^bits bytes. The `.sqz` file's entropy-coded streams (Huffman or rANS) are turned into one fixed-width
stream: per entry a code of the layer's bits and, where it is shorter, a relative index of `gap_bits` (the zeros
skipped before it, with filler entries bridging longer runs, as Deep Compression stores them). Fixed width because
the kernels decode the stream once per image inside the convolution loop: three byte loads and a shift an entry,
no decoding tables in RAM, and the index width is chosen per layer for the fewest bytes. Float weights without
codebooks (a `.safetensors`) are clustered to 8 bits here (`compression.quantize`).

Activations: 8-bit per tensor, `real = scale * (q - zero_point)` (uint8 storage, as ONNX Runtime's u8 activations),
from ranges calibrated on training images (`reference.calibrate`: each tensor's 99.999th percentile, not its few
largest outliers); ReLU outputs get zero point 0. The input's range is exact (the normalisation of 0..255, a zero
point per channel, so Caffe's mean subtraction loses nothing) and a 256-entry table per channel does the
normalisation and quantization in one load.
Each convolution accumulates `w_q * (x_q - zp)` in int32 and requantizes `((acc + bias) * mult) >> shift` in int64
with rounding, BatchNorm folded into a per-channel multiplier. conv10's outputs are summed, never stored, so they
keep 16 bits before the average; its sums are the scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from squeezenet.compression.quantize import quantize_tensor
from squeezenet.deploy.cengine.graph import INPUT, SCORES, Add, Conv, Graph, MaxPool, fold, fold_norm, lower
from squeezenet.deploy.cengine.planner import Plan
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.coders import pack_bits, sparse_index
from squeezenet.formats.weights import Quantized, Weights
from squeezenet.models.preprocessing import Preprocessing

ACC_LIMIT = (1 << 31) - 1
SCORE_LEVELS = 32767  # conv10's outputs are requantized to 16 bits before they are summed
MAX_SHIFT = 52
GAP_WIDTHS = range(1, 9)
INPUT_TABLE = 3 * 256  # the input's table: a byte per channel and pixel value


@dataclass(frozen=True)
class Act:
    scale: float
    zero_point: int | tuple[int, ...]  # per channel for the input, whose channels' ranges differ


def act_of(lo: float, hi: float) -> Act:
    """The 8-bit grid of a range (which always holds 0, so that zero padding and ReLU are exact)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255 if hi > lo else 1.0
    return Act(scale, int(np.clip(round(-lo / scale), 0, 255)))


def input_quantization(pre: Preprocessing) -> tuple[Act, np.ndarray, tuple[int, int, int]]:
    """The input's grid (one scale, a zero point per channel: Caffe's mean subtraction is then exact), the (3, 256)
    table from pixel value to quantized input, and each channel's RGB source."""
    values = (np.arange(256.0)[None] * pre.pixel_scale - np.array(pre.mean)[:, None]) / np.array(pre.std)[:, None]
    lo, hi = np.minimum(values.min(1), 0), np.maximum(values.max(1), 0)
    scale = float((hi - lo).max()) / 255
    zero = np.clip(np.round(-lo / scale), 0, 255).astype(np.int64)
    lut = np.clip(np.round(values / scale) + zero[:, None], 0, 255).astype(np.uint8)
    return Act(scale, tuple(int(z) for z in zero)), lut, (0, 1, 2) if pre.channel_order == "RGB" else (2, 1, 0)


@dataclass
class Stream:
    """A layer's entries at fixed width, `code | gap << bits` each, packed LSB first with three spare bytes (the
    kernels read 32 bits at a time)."""

    bits: int
    gap_bits: int  # 0: an entry for every weight, no index
    entries: int
    codes: bytes

    @property
    def nbytes(self) -> int:
        return len(self.codes)


def fixed_width(q: Quantized) -> Stream:
    """The narrowest fixed-width form: dense codes, or codes with gaps of the index width giving the fewest bytes."""
    flat = np.ascontiguousarray(q.codes).reshape(-1)
    best = (flat.size * q.bits, 0)
    for g in GAP_WIDTHS:
        best = min(best, (len(sparse_index(flat, g)[0]) * (q.bits + g), g))
    g = best[1]
    codes, gaps = sparse_index(flat, g) if g else (flat, np.zeros_like(flat))
    entries = codes.astype(np.uint32) | gaps.astype(np.uint32) << q.bits
    return Stream(q.bits, g, len(codes), pack_bits(entries, q.bits + g) + b"\0\0\0")


def dense_int8(weight: np.ndarray) -> Stream:
    """The int8 weights themselves, one byte each (bits 0): a build to measure what decoding costs."""
    return Stream(0, 0, 0, np.ascontiguousarray(weight, np.int8).tobytes() + b"\0\0\0")


@dataclass
class ConvQ:
    stream: Stream
    codebook: np.ndarray  # int8, 2^bits
    weight: np.ndarray  # int8 (O, I, k, k): codebook[codes], what the reference multiplies
    bias: np.ndarray  # int32 per output channel, accumulator units: added to sum(w * (x - zp))
    c_bias: np.ndarray  # int32: the same for the C's sum(w * x), whose padding holds zp: bias - zp * sum(w)
    mult: np.ndarray  # int32 per output channel, or one for the layer
    shift: int
    rounding: int
    lo: int
    hi: int
    in_zero: np.ndarray  # per input channel
    out_zero: int


@dataclass
class AddQ:
    mult_a: np.ndarray  # int32 per channel
    mult_b: np.ndarray
    offset: np.ndarray  # int64 per channel
    shift: int
    zero_a: int
    zero_b: int


@dataclass
class Engine:
    """A quantized, planned network: what the C is generated from and what the reference executes."""

    graph: Graph  # with the planner's fusions
    plan: Plan
    acts: dict[str, Act]
    convs: dict[str, ConvQ]
    adds: dict[str, AddQ]
    lut: np.ndarray
    source: tuple[int, int, int]
    score_scale: float  # mean logit = score * score_scale
    weights: Weights
    preprocessing: Preprocessing
    flash: int  # `flash_bytes`: the constant data weights.c keeps in flash
    clustered: tuple[str, ...] = ()  # layers without a codebook in the file, clustered to 8 bits here


def _shift(largest: float, what: str) -> int:
    """The Q format of a multiplier: the most fraction bits that keep it within int32."""
    if largest == 0:
        return MAX_SHIFT
    shift = min(MAX_SHIFT, math.floor(math.log2(ACC_LIMIT / largest)))
    if shift < 1:
        raise SqueezeNetError(f"{what}: a requantization multiplier of {largest:.3g} does not fit the engine")
    return shift


def int8_codebook(q: Quantized) -> tuple[np.ndarray, float]:
    book = q.codebook.astype(np.float64)
    scale = float(np.abs(book).max()) / 127 or 1.0
    return np.clip(np.round(book / scale), -127, 127).astype(np.int8), scale


def multipliers(k: np.ndarray) -> int:
    """A convolution's requantization multipliers: one a channel where BatchNorm's scales `k` differ, else one."""
    return len(k) if np.any(k != k[0]) else 1


def conv_params(op: Conv, q: Quantized, x: Act, y: Act, dense: bool = False) -> ConvQ:
    """Integer weights, bias and requantization of one convolution; what would overflow is refused here."""
    codebook, w_scale = int8_codebook(q)
    weight = codebook[q.codes]
    k, b = fold(op)
    eff = k * x.scale * w_scale  # the real value of one accumulator unit, per output channel
    if not np.all(eff != 0):
        raise SqueezeNetError(f"{op.name}: a channel's BatchNorm scale is 0; the engine cannot express it")
    bias = np.round(b / eff).astype(np.int64)
    w = weight.astype(np.int64).reshape(len(k), weight.shape[1], -1)
    in_zero = np.array(np.broadcast_to(np.asarray(x.zero_point, np.int64), (weight.shape[1],)))
    c_bias = bias - (w.sum(2) * in_zero).sum(1)
    w = w.reshape(len(k), -1)
    if np.any(np.abs(w).sum(1) * 255 + np.maximum(np.abs(bias), np.abs(c_bias)) >= ACC_LIMIT):
        raise SqueezeNetError(f"{op.name}: its accumulators could overflow int32")
    if op.epilogue == "sum":
        lo, hi = (0 if op.relu else -SCORE_LEVELS), SCORE_LEVELS
    else:
        lo, hi = (y.zero_point if op.relu else 0), 255
    m = eff / y.scale
    shift = _shift(float(np.abs(m).max()), op.name)
    mult = np.round(m * 2.0 ** shift).astype(np.int64)[:multipliers(k)]
    return ConvQ(dense_int8(weight) if dense else fixed_width(q), codebook, weight, bias.astype(np.int32),
                 c_bias.astype(np.int32), mult.astype(np.int32), shift,
                 math.floor((y.zero_point + 0.5) * 2 ** shift), lo, hi, in_zero, y.zero_point)


def add_params(op: Add, a: Act, b: Act, y: Act, channels: int) -> AddQ:
    k, bias = fold_norm(op.norm, channels)
    ma, mb = k * a.scale / y.scale, k * b.scale / y.scale
    shift = min(_shift(float(max(np.abs(ma).max(), np.abs(mb).max())), op.name), 40)
    offset = np.floor((bias / y.scale + y.zero_point + 0.5) * 2.0 ** shift)
    if np.any(np.abs(offset) >= 2.0 ** 61):
        raise SqueezeNetError(f"{op.name}: its bias does not fit the engine's int64 requantization")
    return AddQ(np.round(ma * 2.0 ** shift).astype(np.int32), np.round(mb * 2.0 ** shift).astype(np.int32),
                offset.astype(np.int64), shift, a.zero_point, b.zero_point)


def activations(graph: Graph, ranges: dict[str, tuple[float, float]], pre: Preprocessing) -> dict[str, Act]:
    """Each tensor's grid from the calibrated ranges of the unfused graph: a max pool keeps its input's (it runs
    in place on the bytes), the scores get conv10's 16-bit grid."""
    acts = {INPUT: input_quantization(pre)[0]}
    for op in graph.ops[1:]:
        if isinstance(op, MaxPool):
            acts[op.dst] = acts[op.src]
        elif op.dst == SCORES:
            lo, hi = ranges[SCORES]
            acts[SCORES] = Act(max(abs(lo), abs(hi)) / SCORE_LEVELS or 1.0, 0)
        else:
            acts[op.dst] = act_of(*ranges[op.dst])
    return acts


def codebooks(weights: Weights, graph: Graph) -> tuple[dict[str, Quantized], tuple[str, ...]]:
    """Each convolution's shared weights as the file stores them; layers stored as floats clustered to 8 bits."""
    books, clustered = {}, []
    for op in graph.ops:
        if isinstance(op, Conv):
            q = (weights.codebooks or {}).get(op.key)
            if q is None:
                q = quantize_tensor(op.conv.weight.detach().to(torch.float32), 8)
                clustered.append(op.name)
            books[op.name] = q
    return books, tuple(clustered)


def quantize(weights: Weights, graph: Graph, plan: Plan, ranges: dict[str, tuple[float, float]],
             pre: Preprocessing, dense: bool = False) -> Engine:
    """The engine of `plan` (whose graph may fuse pools of `graph`), calibrated by `ranges` of `graph`; `dense`:
    the weights stored as plain int8 (to compare with), not as the file's codes."""
    acts = activations(graph, ranges, pre)
    books, clustered = codebooks(weights, plan.graph)
    convs, adds = {}, {}
    for op in plan.graph.ops:
        if isinstance(op, Conv):
            convs[op.name] = conv_params(op, books[op.name], acts[op.src], acts[op.dst], dense)
        elif isinstance(op, Add):
            adds[op.name] = add_params(op, acts[op.src], acts[op.other], acts[op.dst], graph.shapes[op.dst].c)
    _, lut, source = input_quantization(pre)
    plane = next(op for op in plan.graph.ops if isinstance(op, Conv) and op.dst == SCORES).out.plane
    if plane * SCORE_LEVELS > ACC_LIMIT:
        raise SqueezeNetError(f"a {plane}-pixel conv10 map would overflow the int32 scores")
    return Engine(plan.graph, plan, acts, convs, adds, lut, source, acts[SCORES].scale / plane, weights, pre,
                  flash_bytes(plan.graph, books, dense), clustered)


def flash_bytes(graph: Graph, books: dict[str, Quantized], dense: bool = False) -> int:
    """The engine's constant data, what a device keeps in flash beside the code: per convolution its stream, int8
    codebook, int32 biases and multipliers; per bypass sum two int32 multipliers and an int64 offset a channel; the
    input's table. Calibration and the memory plan change no size, so this is known before any export."""
    total = INPUT_TABLE
    for op in graph.ops:
        if isinstance(op, Conv):
            q, c = books[op.name], op.conv.out_channels
            codebook, _ = int8_codebook(q)
            stream = dense_int8(codebook[q.codes]) if dense else fixed_width(q)
            total += stream.nbytes + codebook.nbytes + 4 * c + 4 * multipliers(fold(op)[0])
        elif isinstance(op, Add):
            total += 16 * graph.shapes[op.dst].c
    return total


def weights_flash(weights: Weights) -> int:
    """`flash_bytes` of the engine `export --format c` builds from `weights` (any layer without a codebook
    clustered to 8 bits, as there)."""
    graph = lower(weights.build(), weights.preprocessing.crop_size)
    return flash_bytes(graph, codebooks(weights, graph)[0])
