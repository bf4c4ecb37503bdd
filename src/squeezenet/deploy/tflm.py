"""The C engine's int8 network as a TensorFlow Lite for Microcontrollers model: `to_tflite(engine)`.

Built from the Engine, not converted from PyTorch, so that TFLM multiplies what our C multiplies: the codebook's
int8 weights, our calibrated grids (uint8 zero point z is int8 z - 128), BatchNorm folded into per-channel filter
scales. What TFLM cannot say our way is rewritten exactly: a negative BatchNorm scale negates its channel (TFLM's
scales are positive), the input's per-channel zero points become one with the difference in conv1's bias (exact
without padding), a 1x1 conv's padding a PAD. Approximate stay TFLM's 31-bit requantization (an occasional
off-by-one) and its int8 scores, where ours are 16-bit sums: near ties in the top class can flip.
`tflite_micro` is imported inside the functions, so the module imports without it (`pip install .[tflm]`).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import warnings

import numpy as np

from squeezenet.deploy.cengine.graph import INPUT, SCORES, Add, Conv, MaxPool, Shape, fold
from squeezenet.deploy.cengine.quantize import SCORE_LEVELS, Act, Engine, act_of, int8_codebook
from squeezenet.deploy.cengine.reference import run_int
from squeezenet.errors import SqueezeNetError

ARENA_STEP = 16  # smallest_arena's resolution in bytes: TFLM aligns its allocations to 16
LUT_MAX_BITS = 7  # the widest index TFLM's LUT decoder takes


class _Builder:
    """A flatbuffer written through the schema's object API; tensors and operators are appended in order."""

    def __init__(self) -> None:
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated

        self.s = schema_py_generated
        self.tensors, self.buffers, self.ops, self.codes = [], [self.s.BufferT()], [], {}

    def tensor(self, name: str, shape, dtype: str = "INT8", act: Act | None = None, data: np.ndarray | None = None,
               scales: np.ndarray | None = None) -> int:
        """`act`: our uint8 grid as int8; `scales`: per output channel (axis 0) with zero point 0."""
        s, q, buffer = self.s, None, 0
        if act is not None:
            q = s.QuantizationParametersT(scale=[act.scale], zeroPoint=[int(act.zero_point) - 128])
        elif scales is not None:
            q = s.QuantizationParametersT(scale=[float(v) for v in scales], zeroPoint=[0] * len(scales))
        if data is not None:
            self.buffers.append(s.BufferT(data=np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)))
            buffer = len(self.buffers) - 1
        self.tensors.append(s.TensorT(shape=[int(v) for v in shape], type=getattr(s.TensorType, dtype),
                                      buffer=buffer, name=name, quantization=q))
        return len(self.tensors) - 1

    def op(self, code: str, inputs: list[int], outputs: list[int], options) -> int:
        kind = getattr(self.s.BuiltinOptions, type(options).__name__[:-1])  # Conv2DOptionsT -> Conv2DOptions
        self.ops.append(self.s.OperatorT(opcodeIndex=self.codes.setdefault(code, len(self.codes)), inputs=inputs,
                                         outputs=outputs, builtinOptionsType=kind, builtinOptions=options))
        return outputs[0]

    def finish(self, inputs: list[int], outputs: list[int], description: str) -> bytes:
        """Packed, then repacked by TFLM's C++ tool, which honours the schema's 16-byte buffer alignment (the
        Python flatbuffers do not), as a device's int32 biases need."""
        import flatbuffers
        from tflite_micro.tensorflow.lite.micro.tools import tflite_flatbuffer_align_wrapper as align

        s = self.s
        codes = [s.OperatorCodeT(builtinCode=getattr(s.BuiltinOperator, c),
                                 deprecatedBuiltinCode=min(getattr(s.BuiltinOperator, c), 127)) for c in self.codes]
        graph = s.SubGraphT(tensors=self.tensors, inputs=inputs, outputs=outputs, operators=self.ops, name="main")
        builder = flatbuffers.Builder(1 << 20)
        builder.Finish(s.ModelT(version=3, operatorCodes=codes, subgraphs=[graph], description=description,
                                buffers=self.buffers).Pack(builder), file_identifier=b"TFL3")
        with tempfile.TemporaryDirectory(prefix="sqz-tflm-") as tmp:
            src, dst = os.path.join(tmp, "in.tflite"), os.path.join(tmp, "out.tflite")
            with open(src, "wb") as f:
                f.write(builder.Output())
            align.align_tflite_model(src, dst)
            with open(dst, "rb") as f:
                return f.read()


def _weight_scale(engine: Engine, op: Conv) -> float:
    """The real value of one int8 weight unit: the codebook's, or, for a layer clustered at export (no codebook in
    the file), the one the engine's multiplier implies (from its largest channel, to about 2^-30)."""
    q = (engine.weights.codebooks or {}).get(op.key)
    if q is not None:
        return int8_codebook(q)[1]
    p, k = engine.convs[op.name], fold(op)[0]
    o = int(np.argmax(np.abs(k * p.mult)))
    return float(p.mult[o % len(p.mult)]) / 2.0 ** p.shift * engine.acts[op.dst].scale / (
        float(k[o]) * engine.acts[op.src].scale)


def _conv(b: _Builder, engine: Engine, op: Conv, x: int, out: Act) -> int:
    """CONV_2D, after a PAD (value: the input's zero point) where the padding is not SAME's; a channel whose
    BatchNorm scale is negative has its weights and bias negated, as TFLM's filter scales must be positive."""
    s, p, k = b.s, engine.convs[op.name], fold(op)[0]
    size, stride, pad = op.conv.kernel_size[0], op.conv.stride[0], op.conv.padding[0]
    sign = np.where(k < 0, -1, 1)
    bias = p.bias.astype(np.int64)
    if op.src == INPUT:  # TFLM's input has one zero point z: sum(w * (q - z)) = ours + sum(w * (zp_c - z))
        if pad:
            raise SqueezeNetError(f"{op.name}: a padded first convolution cannot take a per-channel zero point")
        z = b.tensors[x].quantization.zeroPoint[0] + 128
        bias = bias - (p.weight.astype(np.int64).sum((2, 3)) * (p.in_zero - z)).sum(1)
    bias = bias * sign
    if np.any(np.abs(bias) >= 2 ** 31):
        raise SqueezeNetError(f"{op.name}: its bias does not fit TFLM's int32")
    same = stride == 1 and size % 2 == 1 and pad == size // 2
    if pad and not same:
        i = engine.graph.shapes[op.src]
        widths = b.tensor(f"{op.name}/paddings", [4, 2], "INT32", data=np.array([[0, 0], [pad, pad], [pad, pad],
                                                                                    [0, 0]], np.int32))
        padded = b.tensor(f"{op.name}/padded", [1, i.h + 2 * pad, i.w + 2 * pad, i.c], act=engine.acts[op.src])
        x = b.op("PAD", [x, widths], [padded], s.PadOptionsT())
    scales = np.abs(k) * _weight_scale(engine, op)
    w = (p.weight.astype(np.int16) * sign[:, None, None, None]).astype(np.int8).transpose(0, 2, 3, 1)  # OHWI
    inputs = [x, b.tensor(f"{op.name}/weights", w.shape, data=w, scales=scales),
              b.tensor(f"{op.name}/bias", [len(bias)], "INT32", data=bias.astype(np.int32),
                       scales=scales * engine.acts[op.src].scale)]
    y = b.tensor(op.name, [1, op.out.h, op.out.w, op.out.c], act=out)
    return b.op("CONV_2D", inputs, [y], s.Conv2DOptionsT(
        padding=s.Padding.SAME if pad and same else s.Padding.VALID, strideW=stride, strideH=stride,
        fusedActivationFunction=s.ActivationFunctionType.RELU if op.relu else s.ActivationFunctionType.NONE))


def _max_pool(b: _Builder, x: int, name: str, shape: Shape, act: Act) -> int:
    """3x3/2 with Caffe's ceil rounding, ceil((n - 3) / 2) + 1 outputs: VALID on an odd n gives (n - 1) / 2, the
    same; SAME on an even n gives n / 2, the same, padding one row and column at the end, which TFLM's max skips as
    Caffe's window running past the edge does. Max pooling keeps its input's grid."""
    if shape.h != shape.w:
        raise SqueezeNetError(f"{name}: the TFLM export pools square maps only")
    n, s = (shape.h - 2) // 2 + 1, b.s
    y = b.tensor(name, [1, n, n, shape.c], act=act)
    return b.op("MAX_POOL_2D", [x], [y], s.Pool2DOptionsT(padding=s.Padding.VALID if shape.h % 2 else s.Padding.SAME,
                                                          strideW=2, strideH=2, filterWidth=3, filterHeight=3))


def _head(b: _Builder, engine: Engine, op: Conv, x: int, logit_range: float | None) -> int:
    """conv10 into int8 (the range of our 16-bit grid in 256 levels), then MEAN over its map, which is [1, classes]
    already: by default on conv10's grid, as an AVERAGE_POOL_2D would be; with `logit_range` (say 1.25 x the largest
    |logit| `run_int` gives on calibration images) on a finer grid, as a map's mean spans a fraction of its pixels'
    range: fewer int8 ties in the top class."""
    bound = engine.acts[SCORES].scale * SCORE_LEVELS
    act = act_of(0.0 if op.relu else -bound, bound)
    y = _conv(b, engine, op, x, act)
    r = logit_range or bound
    out = b.tensor("scores", [1, op.out.c], act=act_of(0.0 if op.relu else -r, r))
    axes = b.tensor("scores/axes", [2], "INT32", data=np.array([1, 2], np.int32))
    return b.op("MEAN", [y, axes], [out], b.s.ReducerOptionsT(keepDims=False))


def _join(b: _Builder, op: Conv, parts: list[int], act: Act) -> int:
    """A Fire's two expand halves concatenated on channels (one grid, as TFLM requires), then any fused pool."""
    c = sum(b.tensors[i].shape[3] for i in parts)
    x = parts[0]
    if len(parts) > 1:
        y = b.tensor(op.dst if op.epilogue != "max" else f"{op.dst}/concat", [1, op.out.h, op.out.w, c], act=act)
        x = b.op("CONCATENATION", parts, [y], b.s.ConcatenationOptionsT(axis=3))
    return _max_pool(b, x, op.dst, Shape(c, op.out.h, op.out.w), act) if op.epilogue == "max" else x


def to_tflite(engine: Engine, logit_range: float | None = None) -> bytes:
    """The engine's network as a .tflite flatbuffer: int8 NHWC [1, S, S, 3] in (`tflite_input`), int8 scores
    [1, classes] out (see `_head` for `logit_range`). What it cannot express is a one-line SqueezeNetError."""
    graph = engine.graph
    if any(isinstance(op, Add) for op in graph.ops):
        raise SqueezeNetError("the TFLM export runs plain SqueezeNets: bypass (Add) models are not supported")
    b, size, x = _Builder(), graph.image_size, engine.acts[INPUT]  # one zero point: the middle of our three
    first = b.tensor(INPUT, [1, size, size, 3], act=Act(x.scale, int(round(float(np.mean(x.zero_point))))))
    t, parts, out = {INPUT: first}, {}, None
    for op in graph.ops[1:]:
        if isinstance(op, MaxPool):
            t[op.dst] = _max_pool(b, t[op.src], op.dst, graph.shapes[op.src], engine.acts[op.src])
        elif op.dst == SCORES:
            out = _head(b, engine, op, t[op.src], logit_range)
        else:
            parts.setdefault(op.dst, []).append(_conv(b, engine, op, t[op.src], engine.acts[op.dst]))
            if op is graph.writers(op.dst)[-1]:
                t[op.dst] = _join(b, op, parts.pop(op.dst), engine.acts[op.dst])
    return b.finish([first], [out], f"SqueezeNet {size}x{size} int8 from the squeezenet C engine")


def tflite_input(engine: Engine, crops: np.ndarray) -> np.ndarray:
    """NHWC RGB uint8 crops -> the model's int8 NHWC input: our lookup tables' quantized input minus 128."""
    q = np.stack([engine.lut[c][crops[..., engine.source[c]]] for c in range(3)], -1)
    return (q.astype(np.int16) - 128).astype(np.int8)


def run(model: bytes, inputs: np.ndarray, arena_size: int) -> np.ndarray:
    """TFLM's int8 outputs (N x classes) for int8 NHWC inputs (`tflite_input`), one inference each."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena_size)
    out = []
    for x in inputs:
        interpreter.set_input(np.ascontiguousarray(x[None]), 0)
        interpreter.invoke()
        out.append(np.array(interpreter.get_output(0)).reshape(-1))
    return np.stack(out).astype(np.int8)


def _works(model: bytes, arena_size: int, x: np.ndarray) -> bool:
    """Whether TFLM constructs and invokes with this arena; its C stderr (where failures are told) is silenced."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        run(model, x, arena_size)
        return True
    except (RuntimeError, ValueError):
        return False
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def smallest_arena(model: bytes) -> int:
    """The smallest `arena_size`, to 16 bytes, with which TFLM constructs the interpreter and invokes it: what a
    device reserves for activations, scratch and TFLM's own state (the weights stay in the flatbuffer)."""
    from tflite_micro.tensorflow.lite.micro.python.schema_py_generated import Model

    graph = Model.GetRootAs(model, 0).Subgraphs(0)
    x = np.zeros((1, *graph.Tensors(graph.Inputs(0)).ShapeAsNumpy()[1:]), np.int8)
    lo, hi = 0, 64 << 10  # lo fails, hi works
    while not _works(model, hi, x):
        lo, hi = hi, hi * 2
        if hi > 1 << 30:
            raise SqueezeNetError("TFLM does not run this model even with a 1 GB arena")
    while hi - lo > ARENA_STEP:
        mid = (lo + hi) // 2 // ARENA_STEP * ARENA_STEP
        lo, hi = (lo, mid) if _works(model, mid, x) else (mid, hi)
    return hi


def _lut_specs(model: bytes) -> tuple[list, str]:
    """Each CONV_2D filter's LUT spec, a value table per output channel at the fewest index bits, or why a filter
    cannot have one. Per channel because this build's DECODE takes the number of tables from the tensor's
    quantization (a scale per output channel here): one per-tensor table decodes to wrong weights."""
    from tflite_micro.tensorflow.lite.micro.compression import model_editor, spec
    from tflite_micro.tensorflow.lite.micro.python.schema_py_generated import BuiltinOperator

    specs, reasons = [], []
    for op in (op for op in model_editor.read(model).subgraphs[0].operators if op.opcode == BuiltinOperator.CONV_2D):
        w = op.inputs[1].array
        bits = max(1, math.ceil(math.log2(max(len(np.unique(row)) for row in w.reshape(len(w), -1)))))
        if bits > LUT_MAX_BITS:
            reasons.append(f"{op.inputs[1].name} needs {bits}-bit indexes, TFLM's LUT takes {LUT_MAX_BITS}")
        specs.append(spec.Tensor(subgraph=0, tensor=op.inputs[1].index, compression=[
            spec.LookUpTableCompression(index_bitwidth=bits, mode=spec.PerChannel(axis=0))]))
    return specs, "; ".join(reasons) if specs else "the model has no CONV_2D filter"


def _compress(model: bytes) -> tuple[bytes | None, str]:
    from tflite_micro import compression

    specs, reason = _lut_specs(model)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Compression of tensor")  # "resulted in expansion": see evaluate's bytes
        return (None, f"no LUT compression: {reason}") if reason else (bytes(compression.compress(model, specs)), "")


def compress(model: bytes) -> bytes | None:
    """The model with TFLM's look-up-table compression on every CONV_2D filter, restored into the arena by DECODE
    operators at run time: k-bit indexes plus a value table per channel, which for our per-layer codebooks can
    outweigh the bits saved. None, with the reason as a warning, when a channel needs more than 7-bit indexes."""
    small, reason = _compress(model)
    if small is None:
        warnings.warn(reason, stacklevel=2)
    return small


def _measure(model: bytes, x: np.ndarray, ref: np.ndarray) -> dict:
    arena = smallest_arena(model)
    start = time.perf_counter()
    out = run(model, x, arena)
    seconds = (time.perf_counter() - start) / len(x)
    agree = out.argmax(1) == ref
    ties = ~agree & (out[np.arange(len(out)), ref] == out.max(1))  # our class is among TFLM's tied maxima
    return {"model_bytes": len(model), "arena_bytes": arena, "top1": out.argmax(1).tolist(),
            "agreement": float(agree.mean()), "disagreements": int((~agree).sum()),
            "tied_disagreements": int(ties.sum()), "seconds_per_image": seconds, "outputs": out}


def evaluate(engine: Engine, crops: np.ndarray, logit_range: float | None = None) -> dict:
    """TFLM against our integer reference on `crops`: model bytes, smallest arena, TFLM's top-1 and its agreement
    with `run_int`'s (with the disagreements where our class ties TFLM's int8 maximum), time per image; the same
    for the LUT-compressed model under "compressed" (None, with "compressed_reason", where it does not apply)
    with "identical": whether its outputs equal the plain model's, as decoding is exact."""
    ref = np.concatenate([run_int(engine, crops[i:i + 16]).argmax(1) for i in range(0, len(crops), 16)])
    x, model = tflite_input(engine, crops), to_tflite(engine, logit_range)
    report = {"images": len(crops), "reference_top1": ref.tolist(), **_measure(model, x, ref)}
    out, (small, reason) = report.pop("outputs"), _compress(model)
    c = None if small is None else _measure(small, x, ref)
    if c is not None:
        c["identical"] = bool(np.array_equal(c.pop("outputs"), out))
    return report | {"compressed": c, "compressed_reason": reason or None}
