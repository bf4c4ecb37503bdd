"""`squeezenet export WEIGHTS --format c --out DIR [--target cortex-m4]`: a weights file to a checked C library,
or to a firmware project for a Cortex-M4.

The network is lowered, calibrated on training images (`deploy.int8.calibration_batches`, as the ONNX int8 path),
planned for the RAM it may use (`planner.choose`: layer by layer, or its first layers streamed row by row) and
quantized, and the files written. Then real images (Imagenette val, or `check`) are run through the integer
reference and the fp32 PyTorch module, and, where this machine has a C compiler, through the generated C, whose
scores must equal the reference's bit for bit. For a Cortex-M4 the harness, startup code, linker script, Makefile
and images are written beside the library (`targets.write_firmware`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from squeezenet import progress
from squeezenet.data.folders import image_array, list_samples, load_image
from squeezenet.deploy.cengine.codegen import write_c
from squeezenet.deploy.cengine.graph import lower
from squeezenet.deploy.cengine.planner import NoPlan, choose
from squeezenet.deploy.cengine.quantize import Engine, quantize
from squeezenet.deploy.cengine.reference import calibrate, run_int
from squeezenet.deploy.cengine.targets import FLASH, RAM, firmware_ram, host_build, host_cc, host_run, write_firmware
from squeezenet.deploy.graph import image_folder
from squeezenet.deploy.int8 import CALIBRATION_IMAGES, calibration_batches
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.weights import Weights, load, resolve
from squeezenet.models.preprocessing import Preprocessing

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
                 calibration_images: int = CALIBRATION_IMAGES, arena: int | None = None, plan: str = "fit",
                 dense: bool = False) -> Engine:
    """The engine of `weights`, planned by `planner.choose(graph, arena, plan)`: by default the fewest layers
    streamed whose arena is at most `arena` bytes (no limit: layer by layer); `dense`: plain int8 weights."""
    if weights.arch != "squeezenet":
        raise SqueezeNetError(f"the C engine runs SqueezeNets, not {weights.arch} (no fully connected layer kernel)")
    pre = weights.preprocessing
    if image_size is not None and image_size != pre.crop_size:
        pre = pre.at_size(image_size)
    graph = lower(weights.build(), pre.crop_size)
    ranges = calibrate(graph, calibration_batches(pre, image_folder("train", calibration, weights), calibration_images))
    return quantize(weights, graph, choose(graph, arena, plan), ranges, pre, dense)


def check_crops(engine: Engine, folder: str | Path | None = None, count: int = CHECK_IMAGES) -> tuple[list[Path],
                                                                                                  np.ndarray]:
    """A class-balanced sample of the check folder (default: `image_folder("val")` for the weights), resized and
    cropped as the weights were trained."""
    paths = list_samples(image_folder("val", folder, engine.weights)).sample(count).paths
    return paths, crops_of(engine.preprocessing, paths, "check images")


def check(engine: Engine, crops: np.ndarray) -> dict:
    """Real images through the integer reference, the fp32 module and, with a C compiler here, the generated C."""
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


def board_images(files: Sequence[str | Path], size: int) -> list[tuple[str, np.ndarray]]:
    """The firmware's images as they are: each must already be `size` x `size` (resizing and cropping are the
    caller's on a device, as model.h says)."""
    out = []
    for f in files:
        a = image_array(f)
        if a.shape[:2] != (size, size):
            raise SqueezeNetError(f"image {f} is {a.shape[1]}x{a.shape[0]}: the firmware takes {size}x{size} RGB "
                                  f"images, resized and cropped as model.h says")
        out.append((Path(f).stem, a))
    return out


def _engine(weights: Weights, image_size: int | None, calibration, calibration_images: int, ram: int | None,
            plan: str, firmware: bool) -> Engine:
    """The engine planned for `ram` bytes: the whole arena on a host, beside the harness and stack on a board."""
    extra = firmware_ram(0, len(weights.classes)) if firmware else 0
    try:
        return build_engine(weights, image_size, calibration, calibration_images,
                            None if ram is None else ram - extra, plan)
    except NoPlan as e:
        raise SqueezeNetError(f"--ram {ram:,}: no memory plan fits; the smallest RAM that works is "
                              f"{e.need + extra:,} bytes" + (f" (an arena of {e.need:,} and {extra:,} for the "
                                                              f"scores and the stack)" if firmware else "")) from None


def export_c(weights_path: str | Path, out: str | Path, image_size: int | None = None,
             calibration: str | Path | None = None, calibration_images: int = CALIBRATION_IMAGES,
             check_folder: str | Path | None = None, target: str = "host", images: Sequence[str | Path] = (),
             flash: int | None = None, ram: int | None = None, plan: str = "fit") -> dict:
    """Write the C library of `weights_path` into `out` (for a Cortex-M4, the firmware project); returns what to
    tell the user."""
    weights = load(weights_path)
    calibration, check_folder = image_folder("train", calibration, weights), image_folder("val", check_folder, weights)
    firmware = target == "cortex-m4"
    ram = RAM if firmware and ram is None else ram
    size = image_size or weights.preprocessing.crop_size
    mine = board_images(images, size)
    engine = _engine(weights, image_size, calibration, calibration_images, ram, plan, firmware)
    paths, crops = check_crops(engine, check_folder)
    report = check(engine, crops)
    write_c(engine, out, Path(resolve(weights_path)).name)
    if firmware:
        write_firmware(out, mine or [(p.stem, c) for p, c in zip(paths[:4], crops, strict=False)], flash or FLASH,
                       ram)
    return report | {"out": str(out), "target": target, "image_size": engine.graph.image_size,
                     "calibration_folder": str(calibration), "check_folder": str(check_folder),
                     "arena": engine.plan.arena, "streamed": [c.name for s in (
                         engine.plan.stream.stages if engine.plan.stream else []) for c in s.convs],
                     "plan_rest": bool(engine.plan.stream) and engine.plan.stream.ops < len(engine.graph.ops),
                     "ram_budget": ram, "firmware_ram": firmware_ram(engine.plan.arena, engine.graph.num_classes),
                     "board_images": len(mine) or min(4, len(crops)) if firmware else 0,
                     "arena_lower_bound": engine.plan.lower_bound, "fused": list(engine.plan.fused),
                     "c_engine_flash": engine.flash, "file_bytes": resolve(weights_path).stat().st_size,
                     "clustered": list(engine.clustered)}
