"""Fast CPU inference: ONNX Runtime sessions as plain callables, and int8 static quantization.

int8 is ONNX Runtime's static post-training quantization: per-channel int8 weights, uint8 activations whose
ranges come from a few hundred training images (never the evaluation images), QDQ format, each fire module's
concatenation on one scale. On this x86 CPU u8 activations with s8 weights is the pairing ONNX Runtime has fast
integer kernels for; s8 activations or u8 weights ran slower than fp32 (benchmarks/inference.py --variants).
`open_model` gives `evaluate`/`predict` one object whatever the file and backend: a callable and its metadata.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    TensorsData,
    create_calibrator,
    quantize_static,
    save_tensors_data,
)
from torch import nn

from .atomic import write_bytes
from .data import list_samples, load_image
from .errors import SqueezeNetError
from .export import (
    INPUT,
    OPSET,
    OUTPUT,
    check_images,
    checked_onnx,
    description,
    get_description,
    set_description,
    to_onnx,
)
from .paths import shared_dir
from .preprocess import Preprocessing
from .weights import load

BACKENDS = ("torch", "onnxruntime")
CALIBRATION_IMAGES = 300


class OrtModel:
    """An ONNX Runtime CPU session as a callable from a float32 NCHW tensor to float32 logits."""

    def __init__(self, model: onnx.ModelProto | bytes | str | Path, threads: int | None = None,
                 optimization: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL) -> None:
        options = ort.SessionOptions()
        options.graph_optimization_level = optimization
        if threads:
            options.intra_op_num_threads = threads
        source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
        source = str(source) if isinstance(source, Path) else source
        try:
            self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own exception types for unreadable or invalid graphs
            raise SqueezeNetError(f"ONNX Runtime cannot load the model: {str(e).splitlines()[0]}") from None

    def __call__(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        x = x.detach().cpu().float().contiguous().numpy() if isinstance(x, torch.Tensor) else x
        return torch.from_numpy(self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(x, np.float32)})[0])


def calibration_dir(folder: str | Path | None = None) -> Path:
    """`folder`, by default the shared Imagenette TRAIN split."""
    return Path(folder) if folder is not None else shared_dir() / "data" / "imagenette2" / "train"


def calibration_batches(preprocessing: Preprocessing, folder: str | Path | None = None,
                        count: int = CALIBRATION_IMAGES, batch_size: int = 8) -> list[np.ndarray]:
    """`count` preprocessed images of `folder`, a seeded class-balanced sample (`Samples.sample`).

    Small batches: the calibration session's memory grows with the batch (3.7 GB at 32 for v1.0, 1.3 GB at 8).
    """
    folder = calibration_dir(folder)
    if not folder.is_dir():
        raise SqueezeNetError(f"calibration images not found at {folder}; pass a folder of training images")
    samples = list_samples(folder).sample(count)
    images = np.stack([preprocessing(load_image(p)).numpy() for p in samples.paths])
    return [images[i:i + batch_size] for i in range(0, len(images), batch_size)]


class Calibration(CalibrationDataReader):
    """Feeds preprocessed image batches to ONNX Runtime's calibrator."""

    def __init__(self, batches: Sequence[np.ndarray]) -> None:
        self.batches = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        return None if batch is None else {INPUT: batch}


def shared_concat_ranges(model: onnx.ModelProto, ranges: TensorsData) -> dict[str, list[dict]]:
    """Range overrides putting every Concat's inputs and output on one scale (the union of their ranges).

    Each fire module concatenates its two expand branches; with equal scales ONNX Runtime's QLinearConcat
    copies bytes instead of requantizing every input, which measured 0.48x -> 0.37x of fp32 time at batch 1.
    """
    parent: dict[str, str] = {}

    def root(t: str) -> str:
        while parent.get(t, t) != t:
            t = parent[t]
        return t

    for node in model.graph.node:
        if node.op_type == "Concat":
            for t in node.input:
                parent[root(t)] = root(node.output[0])
    groups: dict[str, list[str]] = {}
    for t in {*parent, *parent.values()}:
        groups.setdefault(root(t), []).append(t)
    overrides: dict[str, list[dict]] = {}
    for members in groups.values():
        if all(t in ranges for t in members):
            lo = min(np.min(ranges[t].range_value[0]) for t in members)
            hi = max(np.max(ranges[t].range_value[1]) for t in members)
            overrides |= {t: [{"rmin": np.float32(lo), "rmax": np.float32(hi)}] for t in members}
    return overrides


def quantize_int8(model: onnx.ModelProto, batches: Sequence[np.ndarray], *,
                  quant_format: QuantFormat = QuantFormat.QDQ, per_channel: bool = True,
                  activation_type: QuantType = QuantType.QUInt8, weight_type: QuantType = QuantType.QInt8,
                  share_concat_scales: bool = True) -> onnx.ModelProto:
    """Static int8 quantization, activation ranges from `batches` (min/max); the defaults measured fastest.

    Calibration runs first on its own so that Concat ranges can be unified (`shared_concat_ranges`) before
    quantizing with the ranges found.
    """
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs advice (pre-processing) through the root logger
    try:
        with tempfile.TemporaryDirectory(prefix="squeezenet-int8-") as tmp:
            src, dst, cache = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx", Path(tmp) / "ranges.json"
            src.write_bytes(model.SerializeToString())
            calibrator = create_calibrator(src, augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                           calibrate_method=CalibrationMethod.MinMax)
            calibrator.collect_data(Calibration(batches))
            ranges = calibrator.compute_data()
            del calibrator
            save_tensors_data(ranges, cache)
            overrides = shared_concat_ranges(model, ranges) if share_concat_scales else {}
            quantize_static(src, dst, None, quant_format=quant_format, per_channel=per_channel,
                            activation_type=activation_type, weight_type=weight_type,
                            calibrate_method=CalibrationMethod.MinMax, calibration_cache_path=cache,
                            extra_options={"TensorQuantOverrides": overrides})
            quantized = onnx.load(dst)
    finally:
        root.setLevel(level)
    desc = get_description(model) | {"precision": "int8", "calibration_images": sum(len(b) for b in batches)}
    set_description(quantized, desc)
    return quantized


def read_onnx(path: str | Path) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise SqueezeNetError(f"model file not found: {path}")
    try:
        model = onnx.load(path)
    except Exception as e:  # protobuf's DecodeError and onnx's own errors: the file is not an ONNX model
        raise SqueezeNetError(f"{path}: not a readable ONNX model ({type(e).__name__})") from None
    get_description(model, path)
    return model


def export_model(weights_path: str | Path, out: str | Path, int8: bool = False,
                 calibration: str | Path | None = None, calibration_images: int = CALIBRATION_IMAGES,
                 check: str | Path | None = None) -> dict:
    """Export weights to ONNX (parity-checked on real images), optionally int8, and write it atomically.

    Returns what to tell the user: the fp32 parity, and for int8 its agreement with fp32 on the same images.
    """
    weights = load(weights_path)
    images = check_images(weights.preprocessing, check)
    model, diff = checked_onnx(weights, images)
    report = {"out": str(out), "opset": OPSET, "check_images": len(images), "max_abs_diff": diff}
    if int8:
        fp32 = OrtModel(model)(images)
        model = quantize_int8(model, calibration_batches(weights.preprocessing, calibration, calibration_images))
        q = OrtModel(model)(images)
        report |= {"calibration_images": get_description(model)["calibration_images"],
                   "int8_top1_agreement": float((fp32.argmax(1) == q.argmax(1)).float().mean()),
                   "int8_max_abs_diff": float((fp32 - q).abs().max())}
    data = model.SerializeToString()
    write_bytes(out, data)
    return report | {"precision": "int8" if int8 else "fp32", "bytes": len(data)}


@dataclass
class InferenceModel:
    """What `evaluate`/`predict` need, whatever the file and backend: a callable and how to feed it."""

    model: nn.Module | Callable[[torch.Tensor], torch.Tensor]
    classes: list[str]
    class_ids: list[str] | None
    preprocessing: Preprocessing
    backend: str
    precision: str


def open_model(path: str | Path, backend: str | None = None, int8: bool = False,
               calibration: str | Path | None = None, evaluation_data: str | Path | None = None) -> InferenceModel:
    """Weights (.net, .safetensors, ...) or an exported .onnx, on PyTorch or ONNX Runtime, fp32 or int8.

    The backend defaults to PyTorch for weights and ONNX Runtime for .onnx files; int8 runs on ONNX Runtime
    and, unless the file already is int8, is calibrated here on `calibration` (which must not overlap
    `evaluation_data`).
    """
    if backend not in (None, *BACKENDS):
        raise SqueezeNetError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    is_onnx = Path(path).suffix.lower() == ".onnx"
    if backend == "torch" and (is_onnx or int8):
        raise SqueezeNetError("an ONNX model and int8 run on ONNX Runtime: use --backend onnxruntime")
    if not is_onnx and not int8 and backend != "onnxruntime":
        weights = load(path)
        return InferenceModel(weights.build(), weights.classes, weights.class_ids, weights.preprocessing,
                              "torch", "fp32")
    if is_onnx:
        model = read_onnx(path)
        desc = get_description(model, path)
    else:
        weights = load(path)
        desc = description(weights)
    calibrate = int8 and desc.get("precision") != "int8"
    if calibrate:
        _check_disjoint(calibration, evaluation_data)  # before the slow export, not after
    if not is_onnx:
        model = to_onnx(weights.build(), weights.preprocessing.crop_size)
        set_description(model, desc)
    preprocessing = Preprocessing.from_dict(desc["preprocessing"])
    if calibrate:
        model = quantize_int8(model, calibration_batches(preprocessing, calibration))
    return InferenceModel(OrtModel(model), desc["classes"], desc.get("class_ids"), preprocessing,
                          "onnxruntime", "int8" if int8 else desc.get("precision", "fp32"))


def _check_disjoint(calibration: str | Path | None, evaluation_data: str | Path | None) -> None:
    """Calibrating on the images being evaluated would flatter int8: refuse overlapping folders."""
    if evaluation_data is None:
        return
    a, b = calibration_dir(calibration).resolve(), Path(evaluation_data).resolve()
    if a == b or a in b.parents or b in a.parents:
        raise SqueezeNetError(f"calibration images {a} overlap the evaluation images {b}; calibrate on others")
