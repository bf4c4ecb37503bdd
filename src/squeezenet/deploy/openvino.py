"""OpenVINO on the CPU: the project's ONNX files (fp32 or int8 QDQ) and OpenVINO IR as plain callables.

On this x86 CPU OpenVINO ran the same int8 QDQ file 2.8-6x faster than ONNX Runtime: its convolutions use the CPU's
AMX int8 kernels. The settings were measured by benchmarks/inference.py: one compiled model per input shape
(static shapes ran 1.2-1.7x faster than the file's dynamic batch), the f32 precision hint (OpenVINO's default on
a CPU with AMX is bf16, which moved the authors' fp32 logits by up to 0.47 and changed 1 top-1 in 100), and
LATENCY (all threads on one request) or THROUGHPUT (a batch split over single-thread streams run in parallel).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch

from squeezenet.atomic import write_bytes
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.onnx import get_description, parse_description
from squeezenet.formats.weights import METADATA_KEY

try:
    import openvino as ov
except ImportError:  # an optional extra: the CLI prints this line
    raise SqueezeNetError("the OpenVINO backend needs openvino: pip install 'squeezenet[openvino]'") from None

HINTS = ("LATENCY", "THROUGHPUT")
PARITY_TOLERANCE = 1e-3  # fp32 logits of OpenVINO against ONNX Runtime's on the same images
MAX_SHAPES = 8  # compiled models kept, one per input shape: a caller with ever-new batch sizes stays bounded


def _message(e: Exception) -> str:
    """OpenVINO's messages start with source locations; their last line says what is wrong."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[-1] if lines else type(e).__name__


def _read(source: ov.Model | onnx.ModelProto | bytes | str | Path) -> ov.Model:
    if isinstance(source, ov.Model):
        return source
    source = source.SerializeToString() if isinstance(source, onnx.ModelProto) else source
    try:
        return ov.Core().read_model(source if isinstance(source, bytes) else str(source))
    except RuntimeError as e:
        raise SqueezeNetError(f"OpenVINO cannot read the model: {_message(e)}") from None


class OvModel:
    """An OpenVINO CPU model as a callable from a float32 NCHW tensor to float32 logits, like `OrtModel`.

    `hint` LATENCY runs a batch as one request on every thread; THROUGHPUT splits it into one part per stream
    (`threads` streams of one thread, default: the cores this process may use), padded to equal parts so that one
    compiled shape serves them all.
    """

    def __init__(self, model: ov.Model | onnx.ModelProto | bytes | str | Path, hint: str = "LATENCY",
                 threads: int | None = None) -> None:
        if hint not in HINTS:
            raise SqueezeNetError(f"unknown OpenVINO performance hint {hint!r}; choose one of {', '.join(HINTS)}")
        self.model = _read(model)
        self.core = ov.Core()
        self.streams = 1 if hint == "LATENCY" else threads or len(os.sched_getaffinity(0))
        self.config = {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": "f32", "NUM_STREAMS": self.streams}
        if threads or hint == "THROUGHPUT":
            self.config["INFERENCE_NUM_THREADS"] = threads or self.streams
        self.compiled: dict[tuple, tuple[ov.CompiledModel, list[ov.InferRequest]]] = {}

    def _request(self, shape: tuple, k: int) -> ov.InferRequest:
        """The k-th request of the model compiled for inputs of `shape` (compiled on first use)."""
        if shape not in self.compiled:
            if len(self.compiled) >= MAX_SHAPES:
                self.compiled.pop(next(iter(self.compiled)))
            model = self.model.clone()
            try:
                model.reshape(list(shape))
                self.compiled[shape] = (self.core.compile_model(model, "CPU", self.config), [])
            except RuntimeError as e:
                raise SqueezeNetError(f"OpenVINO cannot run the model on inputs {list(shape)}: {_message(e)}") from None
        compiled, requests = self.compiled[shape]
        while len(requests) <= k:
            requests.append(compiled.create_infer_request())
        return requests[k]

    def __call__(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        x = x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else x
        x = np.ascontiguousarray(x, np.float32)
        n, parts = len(x), min(self.streams, len(x))
        step = -(-n // parts)
        if step * parts > n:
            x = np.concatenate([x, np.zeros((step * parts - n, *x.shape[1:]), np.float32)])
        requests = [self._request((step, *x.shape[1:]), k) for k in range(parts)]
        for k, request in enumerate(requests):
            request.start_async({0: x[k * step:(k + 1) * step]}, share_inputs=True)
        for request in requests:
            request.wait()
        return torch.from_numpy(np.concatenate([r.get_output_tensor(0).data for r in requests])[:n])


def parity(model: OvModel, reference: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor,
           int8: bool = False) -> float:
    """Largest |logit difference| to `reference` (ONNX Runtime) on `images`: over `PARITY_TOLERANCE` is an error
    for fp32; int8 is only reported (the two runtimes' integer kernels round differently)."""
    diff = float((model(images) - reference(images)).abs().max())
    if not int8 and not diff <= PARITY_TOLERANCE:
        raise SqueezeNetError(f"OpenVINO output differs from ONNX Runtime by {diff:.3g} (> {PARITY_TOLERANCE:g}); "
                              "not written")
    return diff


def write_ir(model: onnx.ModelProto, out: str | Path) -> int:
    """`model` as OpenVINO IR, OUT (.xml) beside its .bin, the description in its rt_info; the bytes written.

    fp32 weights stay fp32 (`save_model` would store fp16 by default); the .bin is written first, so that the
    .xml, written last, finds its weights.
    """
    out = Path(out)
    ir = _read(model)
    ir.set_rt_info(json.dumps(get_description(model)), [METADATA_KEY])
    with tempfile.TemporaryDirectory(prefix="squeezenet-ir-") as tmp:
        xml = Path(tmp) / "model.xml"
        ov.save_model(ir, xml, compress_to_fp16=False)
        files = {out.with_suffix(".bin"): xml.with_suffix(".bin").read_bytes(), out: xml.read_bytes()}
    for path, data in files.items():
        write_bytes(path, data)
    return sum(len(data) for data in files.values())


def read_ir(path: str | Path) -> tuple[ov.Model, dict]:
    """An IR written by `squeezenet export --format openvino` (PATH.xml beside PATH.bin) and its description."""
    path = Path(path)
    if not path.is_file():
        raise SqueezeNetError(f"model file not found: {path}")
    if not path.with_suffix(".bin").is_file():
        raise SqueezeNetError(f"{path}: its weights {path.with_suffix('.bin').name} are not beside it")
    with open(path, "rb") as f:
        if b"<net" not in f.read(4096):  # else OpenVINO tries every frontend on it, each logging its failure
            raise SqueezeNetError(f"{path}: not an OpenVINO IR (.xml)")
    model = _read(path)
    try:
        text = model.get_rt_info([METADATA_KEY]).astype(str) if model.has_rt_info([METADATA_KEY]) else None
    except (RuntimeError, TypeError):
        text = None
    if not text:
        raise SqueezeNetError(f"{path}: OpenVINO IR without squeezenet metadata (not exported by this project)")
    return model, parse_description(text, path)
