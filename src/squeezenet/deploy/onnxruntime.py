"""Fast CPU inference: ONNX Runtime sessions as plain callables, and `open_model`, which picks the backend.

`open_model` gives `evaluate`/`predict` one object whatever the file and backend (PyTorch, ONNX Runtime, OpenVINO
in `deploy.openvino`): a callable and its metadata; int8 is calibrated on the fly (`deploy.int8`) unless the file
already is int8.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from squeezenet.data.folders import check_disjoint
from squeezenet.deploy import BACKENDS
from squeezenet.deploy.graph import image_folder, to_onnx
from squeezenet.deploy.int8 import calibration_batches, quantize_int8
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


def fastest_runtime() -> str:
    """The default runtime of int8, by the measured rule (docs, CPU inference): OpenVINO when it is installed and
    loads (0.21-0.47x of ONNX Runtime fp32's time against ONNX Runtime int8's 0.45-0.60x in the idle run of
    benchmarks/inference.py), else ONNX Runtime. An fp32 graph runs on ONNX Runtime: OpenVINO's exact fp32 took
    1.05-1.13x its time."""
    try:
        import openvino  # noqa: F401  (used right after: the import is not wasted)
    except ImportError:
        return "onnxruntime"
    return "openvino"


def _described(runner: Callable[[torch.Tensor], torch.Tensor], desc: dict, backend: str,
               precision: str) -> InferenceModel:
    return InferenceModel(runner, desc["classes"], desc.get("class_ids"),
                          Preprocessing.from_dict(desc["preprocessing"]), backend, precision,
                          desc.get("arch", "squeezenet"))


def _openvino_ir(path: str | Path, backend: str | None, int8: bool) -> InferenceModel:
    if backend not in (None, "openvino"):
        raise SqueezeNetError(f"{path}: an OpenVINO IR runs on OpenVINO only: use --backend openvino")
    from squeezenet.deploy.openvino import OvModel, read_ir  # the optional extra

    model, desc = read_ir(path)
    if int8 and desc.get("precision") != "int8":
        raise SqueezeNetError(f"{path}: an fp32 IR cannot be calibrated; export it with --int8, or pass the .onnx")
    return _described(OvModel(model), desc, "openvino", desc.get("precision", "fp32"))


def open_model(path: str | Path, backend: str | None = None, int8: bool = False,
               calibration: str | Path | None = None,
               evaluation_data: str | Path | Sequence[str | Path] | None = None) -> InferenceModel:
    """Weights (.net, .safetensors, ...), an exported .onnx or OpenVINO IR (.xml), on any backend, fp32 or int8.

    The backend defaults to PyTorch for weights, ONNX Runtime for an fp32 graph, `fastest_runtime()` for int8; int8
    runs on a graph runtime and, unless the file already is int8, is calibrated here on `calibration` (which must not
    overlap `evaluation_data`).
    """
    if backend not in (None, *BACKENDS):
        raise SqueezeNetError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    suffix = Path(path).suffix.lower()
    is_onnx = suffix == ".onnx"
    if backend == "torch" and (is_onnx or suffix == ".xml" or int8):
        raise SqueezeNetError("an exported graph and int8 run on ONNX Runtime or OpenVINO: use --backend "
                              "onnxruntime or --backend openvino")
    if suffix == ".xml":
        return _openvino_ir(path, backend, int8)
    if not is_onnx and not int8 and backend in (None, "torch"):
        weights = load(path)
        return InferenceModel(weights.build(), weights.classes, weights.class_ids, weights.preprocessing,
                              "torch", "fp32", weights.arch)
    weights = None if is_onnx else load(path)
    model = read_onnx(path) if is_onnx else None
    desc = get_description(model, path) if is_onnx else description(weights)
    backend = backend or (fastest_runtime() if int8 or desc.get("precision") == "int8" else "onnxruntime")
    if backend == "openvino":
        from squeezenet.deploy.openvino import OvModel  # the optional extra: a missing one is said before any work
    runtime = OvModel if backend == "openvino" else OrtModel
    calibrate = int8 and desc.get("precision") != "int8"
    if calibrate:
        calibration = image_folder("train", calibration, weights)
        for folder in [evaluation_data] if isinstance(evaluation_data, str | Path) else evaluation_data or []:
            check_disjoint(calibration, folder, "calibration images")  # before the export
    if not is_onnx:
        model = to_onnx(weights.build(), weights.preprocessing.crop_size)
        set_description(model, desc)
    if calibrate:
        model = quantize_int8(model, calibration_batches(Preprocessing.from_dict(desc["preprocessing"]), calibration))
        print(f"int8: calibrated on {get_description(model)['calibration_images']} images of {calibration} "
              "(--calibration to choose)", file=sys.stderr)
    return _described(runtime(model), desc, backend, "int8" if int8 else desc.get("precision", "fp32"))
