"""`squeezenet export WEIGHTS --format c --out DIR`: a weights file to a checked C library.

The network is lowered, calibrated on training images (`deploy.int8.calibration_batches`, as the ONNX int8 path),
planned and quantized, and the files written. Then real images (Imagenette val, or `check`) are run through the
integer reference and the fp32 PyTorch module, and, where this machine has a C compiler, through the generated C,
whose scores must equal the reference's bit for bit.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from squeezenet import progress
from squeezenet.data.folders import list_samples, load_image
from squeezenet.deploy.cengine.codegen import write_c
from squeezenet.deploy.cengine.graph import lower
from squeezenet.deploy.cengine.planner import best_plan
from squeezenet.deploy.cengine.quantize import Engine, quantize
from squeezenet.deploy.cengine.reference import calibrate, run_int
from squeezenet.deploy.cengine.targets import host_build, host_cc, host_run
from squeezenet.deploy.int8 import CALIBRATION_IMAGES, calibration_batches
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.weights import Weights, load, resolve
from squeezenet.models.preprocessing import Preprocessing
from squeezenet.paths import shared_dir

CHECK_IMAGES = 32


def crops_of(pre: Preprocessing, paths: Sequence[Path], desc: str = "images") -> np.ndarray:
    """The images resized and cropped as `pre` says: NHWC RGB uint8, what `sqz_predict` takes."""
    return np.stack([np.asarray(pre.resize_crop(load_image(p)), np.uint8)
                     for p in progress.bar(paths, desc=desc, unit="img", leave=False)])


def fp32_logits(weights: Weights, pre: Preprocessing, crops: np.ndarray, batch: int = 32) -> np.ndarray:
    """The PyTorch module's logits on the same crops the engine gets."""
    model = weights.build()
    with torch.inference_mode():
        return np.concatenate([model(pre.normalize(torch.from_numpy(crops[i:i + batch]).permute(0, 3, 1, 2))).numpy()
                               for i in range(0, len(crops), batch)])


def build_engine(weights: Weights, image_size: int | None = None, calibration: str | Path | None = None,
                 calibration_images: int = CALIBRATION_IMAGES) -> Engine:
    if weights.arch != "squeezenet":
        raise SqueezeNetError(f"the C engine runs SqueezeNets, not {weights.arch} (no fully connected layer kernel)")
    pre = weights.preprocessing
    if image_size is not None and image_size != pre.crop_size:
        pre = pre.at_size(image_size)
    graph = lower(weights.build(), pre.crop_size)
    ranges = calibrate(graph, calibration_batches(pre, calibration, calibration_images))
    return quantize(weights, graph, best_plan(graph), ranges, pre)


def stream_bytes(engine: Engine) -> int:
    """The network's data at fixed width: codebooks, codes, relative indexes, biases and multipliers."""
    return sum(p.stream.nbytes + p.codebook.nbytes + p.bias.nbytes + p.mult.nbytes for p in engine.convs.values()) \
        + sum(p.mult_a.nbytes + p.mult_b.nbytes + p.offset.nbytes for p in engine.adds.values()) + engine.lut.nbytes


def check(engine: Engine, folder: str | Path | None = None, count: int = CHECK_IMAGES) -> dict:
    """Real images through the integer reference, the fp32 module and, with a C compiler here, the generated C."""
    folder = Path(folder) if folder is not None else shared_dir() / "data" / "imagenette2" / "val"
    if not folder.is_dir():
        raise SqueezeNetError(f"check images not found at {folder}; pass a folder of images")
    crops = crops_of(engine.preprocessing, list_samples(folder).sample(count).paths, "check images")
    ref = run_int(engine, crops)
    fp32 = fp32_logits(engine.weights, engine.preprocessing, crops)
    report = {"check_images": len(crops), "top1_agreement_fp32": float(np.mean(ref.argmax(1) == fp32.argmax(1)))}
    if host_cc() is None:
        return report | {"c_checked": False}
    with tempfile.TemporaryDirectory(prefix="sqz-check-") as tmp:
        lib = Path(tmp) / "lib"
        write_c(engine, lib, "check")
        scores, _ = host_run(host_build(lib, Path(tmp) / "build"), crops, engine.graph.num_classes)
    if not np.array_equal(scores, ref):
        raise RuntimeError("the generated C's scores differ from the integer reference: a bug in the engine")
    return report | {"c_checked": True}


def export_c(weights_path: str | Path, out: str | Path, image_size: int | None = None,
             calibration: str | Path | None = None, calibration_images: int = CALIBRATION_IMAGES,
             check_folder: str | Path | None = None) -> dict:
    """Write the C library of `weights_path` into `out`; returns what to tell the user."""
    weights = load(weights_path)
    engine = build_engine(weights, image_size, calibration, calibration_images)
    report = check(engine, check_folder)
    write_c(engine, out, Path(resolve(weights_path)).name)
    return report | {"out": str(out), "image_size": engine.graph.image_size, "arena": engine.plan.arena,
                     "arena_lower_bound": engine.plan.lower_bound, "fused": list(engine.plan.fused),
                     "weights_bytes": stream_bytes(engine), "file_bytes": resolve(weights_path).stat().st_size,
                     "clustered": list(engine.clustered)}
