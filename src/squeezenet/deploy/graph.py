"""ONNX export of any weights `squeezenet.load` reads, checked against PyTorch on real images.

The graph is exported in eval mode (no dropout) with a dynamic batch dimension by PyTorch's torch.export-based
exporter, and carries the weights' description (classes, preprocessing, provenance) in its metadata, so an
`.onnx` file is as self-describing as the project's safetensors and `evaluate`/`predict` run it unchanged.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from squeezenet.data.folders import list_samples, load_image
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.onnx import INPUT, OUTPUT, description, set_description
from squeezenet.formats.weights import Weights
from squeezenet.models.preprocessing import Preprocessing
from squeezenet.paths import shared_dir

OPSET = 20


PARITY_TOLERANCE = 1e-4


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter logs progress, missing-torchvision notes and deprecation warnings; a CLI wants none of them."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def to_onnx(model: nn.Module, input_size: int, opset: int = OPSET) -> onnx.ModelProto:
    """The eval-mode network as an ONNX graph with inputs (batch, 3, input_size, input_size), batch dynamic."""
    model = model.eval()
    example = torch.zeros(2, 3, input_size, input_size)
    with _quiet():
        program = torch.onnx.export(model, (example,), dynamo=True, opset_version=opset, input_names=[INPUT],
                                    output_names=[OUTPUT], verbose=False,
                                    dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    return program.model_proto


def image_folder(split: str, folder: str | Path | None = None, weights: Weights | None = None) -> Path:
    """Calibration (`train`) or parity-check (`val`) images: `folder` when given, else the split of the folder the
    weights were trained on (`squeezenet train --data DIR`, recorded with them) when it is here, else the shared
    Imagenette split. Commands say which folder they used; a missing one names the flag that chooses it."""
    if folder is None:
        data = ((weights.meta if weights is not None else {}).get("train_config") or {}).get("data")
        own = Path(data) / split if data else None
        folder = own if own is not None and own.is_dir() else shared_dir() / "data" / "imagenette2" / split
    folder = Path(folder)
    if not folder.is_dir():
        what, flag = ("calibration", "--calibration") if split == "train" else ("parity-check", "--check-images")
        raise SqueezeNetError(f"{what} images not found at {folder}; pass {flag} DIR (a folder of images)")
    return folder


def check_images(preprocessing: Preprocessing, folder: str | Path | None = None, count: int = 32) -> torch.Tensor:
    """`count` real images spread over `folder` (default: `image_folder("val")`), preprocessed."""
    samples = list_samples(image_folder("val", folder))
    idx = np.linspace(0, len(samples) - 1, min(count, len(samples))).round().astype(int)
    return torch.stack([preprocessing(load_image(samples.paths[i])) for i in idx])


def check_parity(model: nn.Module, onnx_model: onnx.ModelProto, images: torch.Tensor,
                 tolerance: float = PARITY_TOLERANCE) -> float:
    """Largest |logit difference| between PyTorch and ONNX Runtime on `images`; over `tolerance` times the largest
    |logit| (at least 1: fp32 rounding grows with the logits' size) is an error."""
    with torch.inference_mode():
        expected = model.eval()(images).numpy()
    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    diff = float(np.abs(expected - session.run([OUTPUT], {INPUT: images.numpy()})[0]).max())
    limit = tolerance * max(1.0, float(np.abs(expected).max()))
    if not diff <= limit:
        raise SqueezeNetError(f"ONNX output differs from PyTorch by {diff:.3g} (> {limit:.3g}); not written")
    return diff


def checked_onnx(weights: Weights, images: torch.Tensor, opset: int = OPSET) -> tuple[onnx.ModelProto, float]:
    """`weights` as ONNX with their description, and its max |diff| to PyTorch on `images` (checked)."""
    model = weights.build()
    proto = to_onnx(model, weights.preprocessing.crop_size, opset)
    set_description(proto, description(weights))
    return proto, check_parity(model, proto, images)
