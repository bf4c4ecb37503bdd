"""Fast CPU inference: ONNX Runtime sessions as plain callables, and `open_model`.

`open_model` gives `evaluate`/`predict` one object whatever the file and backend: a callable and its metadata;
int8 is calibrated on the fly (`deploy.int8`) unless the file already is int8.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from squeezenet.data.folders import check_disjoint
from squeezenet.deploy import BACKENDS
from squeezenet.deploy.graph import to_onnx
from squeezenet.deploy.int8 import calibration_batches, calibration_dir, quantize_int8
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.onnx import INPUT, OUTPUT, description, get_description, set_description
from squeezenet.formats.weights import load
from squeezenet.models.preprocessing import Preprocessing


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


@dataclass
class InferenceModel:
    """What `evaluate`/`predict` need, whatever the file and backend: a callable and how to feed it."""

    model: nn.Module | Callable[[torch.Tensor], torch.Tensor]
    classes: list[str]
    class_ids: list[str] | None
    preprocessing: Preprocessing
    backend: str
    precision: str
    arch: str = "squeezenet"


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
                              "torch", "fp32", weights.arch)
    if is_onnx:
        model = read_onnx(path)
        desc = get_description(model, path)
    else:
        weights = load(path)
        desc = description(weights)
    calibrate = int8 and desc.get("precision") != "int8"
    if calibrate:
        check_disjoint(calibration_dir(calibration), evaluation_data, "calibration images")  # before the export
    if not is_onnx:
        model = to_onnx(weights.build(), weights.preprocessing.crop_size)
        set_description(model, desc)
    preprocessing = Preprocessing.from_dict(desc["preprocessing"])
    if calibrate:
        model = quantize_int8(model, calibration_batches(preprocessing, calibration))
    return InferenceModel(OrtModel(model), desc["classes"], desc.get("class_ids"), preprocessing,
                          "onnxruntime", "int8" if int8 else desc.get("precision", "fp32"),
                          desc.get("arch", "squeezenet"))

