"""Static int8 quantization of an ONNX graph with ONNX Runtime, calibrated on training images.

Per-channel int8 weights, uint8 activations whose min/max ranges come from a class-balanced sample of training
images (never the evaluation images), QDQ format, and each fire module's concatenation on one scale. On this x86
CPU u8 activations with s8 weights is the pairing ONNX Runtime has fast integer kernels for; s8 activations or u8
weights ran slower than fp32 (benchmarks/inference.py --variants).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
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

from squeezenet import progress
from squeezenet.data.folders import list_samples, load_image
from squeezenet.deploy.graph import image_folder
from squeezenet.formats.onnx import INPUT, get_description, set_description
from squeezenet.models.preprocessing import Preprocessing

CALIBRATION_IMAGES = 300


def calibration_batches(preprocessing: Preprocessing, folder: str | Path | None = None,
                        count: int = CALIBRATION_IMAGES, batch_size: int = 8) -> list[np.ndarray]:
    """`count` preprocessed images of `folder`, a seeded class-balanced sample (`Samples.sample`).

    Small batches: the calibration session's memory grows with the batch (3.7 GB at 32 for v1.0, 1.3 GB at 8).
    """
    samples = list_samples(image_folder("train", folder)).sample(count)
    images = np.stack([preprocessing(load_image(p)).numpy()
                       for p in progress.bar(samples.paths, desc="calibration images", unit="img", leave=False)])
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
            calibrator.collect_data(Calibration(progress.bar(batches, desc="calibrating int8 ranges",
                                                             unit="batch", leave=False)))
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
