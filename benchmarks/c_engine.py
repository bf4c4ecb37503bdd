"""The C engine (`squeezenet export --format c`) measured: speed, memory, accuracy, and the Cortex-M4 under QEMU.

For the bundled Imagenette v1.1 (at 128 px) and the authors' ImageNet v1.0 `.sqz` (at 227 px; a `.net` is
re-encoded losslessly first):
- memory: the linked Cortex-M4 image's flash (arm-none-eabi-size: code and weights, the test images apart) and RAM
  (.data, .bss = the arena, heap, stack), the library's own objects, the stack measured under QEMU (painted); beside
  them a dense int8 runtime in TensorFlow Lite Micro's style: weights 1 byte each plus an int32 bias, multiplier and
  shift per output channel, its arena planned with concat copies, pools out of place and no fusion;
- speed: ms per image at batch 1 on one thread, the C host build against ONNX Runtime int8 (the project's path:
  QDQ, calibrated on the same 300 Imagenette train images) and fp32 at the same input size, in interleaved rounds,
  each ratio taken within its round;
- with --accuracy: every image of the model's evaluation set through the C host build, its top-1 against the
  fp32 PyTorch module on the same crops and its agreement with the integer reference (scores bit for bit);
- with --qemu N: N images through the Cortex-M4 build, its top-1 against the host build's.

    python benchmarks/c_engine.py [--accuracy] [--qemu 24] [--out results/benchmarks/c_engine.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from fresh import default_out

import squeezenet
from squeezenet import progress
from squeezenet.atomic import write_text
from squeezenet.compression.pipeline import reencode
from squeezenet.data.folders import list_samples
from squeezenet.deploy.cengine import targets
from squeezenet.deploy.cengine.codegen import write_c
from squeezenet.deploy.cengine.export import build_engine, crops_of, fp32_logits, stream_bytes
from squeezenet.deploy.cengine.graph import Conv, lower
from squeezenet.deploy.cengine.planner import tflm_plan
from squeezenet.deploy.cengine.reference import run_int
from squeezenet.deploy.graph import to_onnx
from squeezenet.deploy.int8 import calibration_batches, quantize_int8
from squeezenet.deploy.onnxruntime import OrtModel
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.onnx import description, set_description
from squeezenet.formats.weights import resolve
from squeezenet.paths import authors_model_dir, shared_dir
from squeezenet.plotting import save, subplots

HOST_FLAGS = "-O2 -march=native"


def x86_isa() -> list[str]:
    """The SIMD extensions the kernels' x86 paths and ONNX Runtime's int8 kernels choose between."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return []
    return [f for f in ("avx2", "avx_vnni", "avx512f", "avx512_vnni", "amx_int8") if f in flags]


def models(args) -> dict[str, tuple[str, int, Path]]:
    data = shared_dir() / "data"
    return {"imagenette": (args.imagenette, args.imagenette_size, data / "imagenette2" / "val"),
            "authors": (args.authors, 227, data / "imagenet-val-1300")}


def as_sqz(path: str, work: Path) -> Path:
    """The authors' `.net` as the lossless `.sqz` `squeezenet compress` writes; other files as they are."""
    path = resolve(path)
    if path.suffix != ".net":
        return path
    out = work / (path.stem + ".sqz")
    out.write_bytes(reencode(squeezenet.load(path), log=lambda _: None).data)
    return out


def memory(engine, weights, lib: Path, work: Path, crop: np.ndarray) -> dict:
    """Flash and RAM of the Cortex-M4 build (None where it does not link) and of a dense int8 runtime."""
    convs = [op for op in lower(weights.build(), engine.graph.image_size).ops if isinstance(op, Conv)]
    dense_weights = sum(op.conv.weight.numel() for op in convs) + 12 * sum(op.conv.out_channels for op in convs)
    out = {"arena": engine.plan.arena, "arena_lower_bound": engine.plan.lower_bound, "fused": list(engine.plan.fused),
           "weights_fixed_width": stream_bytes(engine),
           "dense_int8": {"weights": dense_weights,
                          "arena": tflm_plan(lower(weights.build(), engine.graph.image_size)).arena}}
    if targets.missing_arm_tools():
        return out | {"cortex_m4": f"not measured: {', '.join(targets.missing_arm_tools())} missing"}
    archive = targets.arm_library(lib, work / "arm")
    out["objects"] = targets.object_sizes(archive)
    # code and weights: the class names (labels.o) are linked only by a program that prints them
    out["code_and_weights"] = sum(v for k, v in out["objects"].items() if k != "labels.o")
    out["code_and_weights_over_fixed_width"] = out["code_and_weights"] / out["weights_fixed_width"]
    try:
        fw = targets.arm_link(archive, crop[None], [0], "probe")
    except SqueezeNetError as e:
        return out | {"cortex_m4": str(e)}
    _, stack = targets.qemu_run(fw)
    return out | {"cortex_m4": {"flash": fw.flash, "ram": fw.ram, "sections": fw.sections, "stack_used": stack,
                                "flash_budget": 512 << 10, "ram_budget": 256 << 10}}


def ort_models(weights, pre) -> dict[str, OrtModel]:
    fp32 = to_onnx(weights.build(), pre.crop_size)
    set_description(fp32, description(weights))
    int8 = quantize_int8(fp32, calibration_batches(pre))
    return {"onnxruntime int8": OrtModel(int8, threads=1), "onnxruntime fp32": OrtModel(fp32, threads=1)}


def timing(exe: Path, runners: dict, crops: np.ndarray, pre, classes: int, rounds: int, name: str) -> dict:
    """Median ms per image of each backend over interleaved rounds, and each ratio's median within the rounds."""
    x = pre.normalize(torch.from_numpy(crops).permute(0, 3, 1, 2))
    times: dict[str, list[float]] = {"c engine": [], **{k: [] for k in runners}}
    for _ in progress.bar(range(rounds), desc=f"{name}: timing", unit="round", leave=False):
        _, ms = targets.host_run(exe, crops, classes, rounds=3)
        times["c engine"].append(statistics.median(v for row in ms for v in row))
        for k, run in runners.items():
            run(x[:1])
            ms = []
            for i in range(len(x)):
                for _ in range(3):
                    t = time.perf_counter()
                    run(x[i:i + 1])
                    ms.append((time.perf_counter() - t) * 1000)
            times[k].append(statistics.median(ms))
        time.sleep(0.2)
    out = {k: {"ms_per_image": statistics.median(v), "q1_ms": float(np.percentile(v, 25)),
               "q3_ms": float(np.percentile(v, 75))} for k, v in times.items()}
    for k in runners:
        out[f"c engine / {k}"] = statistics.median(c / o for c, o in zip(times["c engine"], times[k], strict=True))
    return out


def accuracy(engine, weights, exe: Path, runners: dict, samples, name: str) -> dict:
    pre, y = engine.preprocessing, np.asarray(samples.labels)
    crops = crops_of(pre, samples.paths, f"{name}: images")
    scores, _ = targets.host_run(exe, crops, engine.graph.num_classes)
    ref = np.concatenate([run_int(engine, crops[i:i + 16]) for i in progress.bar(
        range(0, len(crops), 16), desc=f"{name}: integer reference", unit="batch", leave=False)])
    fp32 = fp32_logits(weights, pre, crops)
    x = pre.normalize(torch.from_numpy(crops).permute(0, 3, 1, 2))
    int8 = torch.cat([runners["onnxruntime int8"](x[i:i + 32]) for i in range(0, len(x), 32)]).numpy()
    top1 = scores.argmax(1)
    return {"images": len(y), "top1_c_engine": float(np.mean(top1 == y)),
            "top1_fp32": float(np.mean(fp32.argmax(1) == y)),
            "top1_onnxruntime_int8": float(np.mean(int8.argmax(1) == y)),
            "top1_agreement_reference": float(np.mean(top1 == ref.argmax(1))),
            "scores_identical_to_reference": float(np.mean(np.all(scores == ref, axis=1))),
            "top1_agreement_fp32": float(np.mean(top1 == fp32.argmax(1)))}


def qemu(engine, lib: Path, work: Path, exe: Path, samples) -> dict:
    """Images through the Cortex-M4 build, as many firmware images as the flash needs; top-1 against the host's."""
    crops = crops_of(engine.preprocessing, samples.paths, "qemu images")
    host, _ = targets.host_run(exe, crops, engine.graph.num_classes)
    archive = targets.arm_library(lib, work / "arm")
    per = targets.image_capacity(targets.arm_link(archive, crops[:1], [0], "probe"), crops[0].size)
    board, stack, start = [], 0, time.perf_counter()
    for i in range(0, len(crops), per):
        fw = targets.arm_link(archive, crops[i:i + per], samples.labels[i:i + per], f"batch{i}")
        top5, used = targets.qemu_run(fw)
        board += [t[0] for t in top5]
        stack = max(stack, used)
    return {"images": len(crops), "same_top1_as_host": int(np.sum(np.array(board) == host.argmax(1))),
            "top1": float(np.mean(np.array(board) == np.asarray(samples.labels))), "stack_used": stack,
            "images_per_firmware": per, "seconds": time.perf_counter() - start}


def measure(name: str, path: str, size: int, data: Path, args, work: Path) -> dict:
    path = as_sqz(path, work)
    weights = squeezenet.load(path)
    engine = build_engine(weights, size)
    lib = work / name / "c"
    write_c(engine, lib, path.name)
    exe = targets.host_build(lib, work / name / "host", HOST_FLAGS)
    samples = list_samples(data, classes=weights.class_ids)
    speed_crops = crops_of(engine.preprocessing, samples.sample(5, seed=1).paths)
    runners = ort_models(weights, engine.preprocessing)
    out = {"weights": path.name, "file_bytes": path.stat().st_size, "image_size": size,
           "memory": memory(engine, weights, lib, work / name, speed_crops[0]),
           "speed": timing(exe, runners, speed_crops, engine.preprocessing, engine.graph.num_classes, args.rounds,
                           name)}
    if args.accuracy:
        out["accuracy"] = accuracy(engine, weights, exe, runners, samples, name) | {"data": data.name}
    if args.qemu and not targets.missing_arm_tools() and isinstance(out["memory"].get("cortex_m4"), dict):
        out["qemu"] = qemu(engine, lib, work / name, exe, samples.sample(args.qemu, seed=2))
    print(json.dumps({name: out}, indent=1), flush=True)
    return out


def chart(results: dict, path: Path) -> None:
    names = list(results)
    fig, (ax, bx) = subplots(1, 2, figsize=(12, 4.6))
    backends = ["c engine", "onnxruntime int8", "onnxruntime fp32"]
    for j, b in enumerate(backends):
        ms = [results[n]["speed"][b]["ms_per_image"] for n in names]
        bars = ax.bar(np.arange(len(names)) + (j - 1) * 0.27, ms, 0.27, label=b)
        if b != "c engine":
            for bar, n in zip(bars, names, strict=True):
                ax.annotate(f"C {results[n]['speed'][f'c engine / {b}']:.2f}x", (bar.get_x() + 0.135, bar.get_height()),
                            ha="center", va="bottom", fontsize=7)
    ax.set_xticks(np.arange(len(names)), [f"{n} ({results[n]['image_size']} px)" for n in names])
    ax.set_ylabel("median ms per image, batch 1, one thread")
    ax.set_title("speed (labels: C engine time / that runtime's, same rounds)")
    ax.legend(fontsize=8)
    rows = []
    for n in names:
        m = results[n]["memory"]
        m4 = m.get("cortex_m4") if isinstance(m.get("cortex_m4"), dict) else {}
        rows.append((n, m4.get("flash") or m.get("code_and_weights") or m["weights_fixed_width"],
                     m["dense_int8"]["weights"], m["arena"], m["dense_int8"]["arena"]))
    labels = ["flash: C engine", "flash: dense int8 weights", "arena: C engine", "arena: dense int8"]
    for j in range(4):
        bx.bar(np.arange(len(rows)) + (j - 1.5) * 0.2, [r[j + 1] / 1024 for r in rows], 0.2, label=labels[j])
    bx.axhline(512, color="k", lw=0.8, ls="--", label="512 KB flash budget")
    bx.axhline(256, color="r", lw=0.8, ls="--", label="256 KB RAM budget")
    bx.set_xticks(np.arange(len(rows)), [r[0] for r in rows])
    bx.set_ylabel("KB")
    bx.set_title("memory: compressed weights and planned arena vs dense int8")
    bx.legend(fontsize=7)
    save(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--imagenette", default="imagenette", help="the Imagenette model (default: the bundled one)")
    ap.add_argument("--imagenette-size", type=int, default=128, help="its input size (128: the Cortex-M4's)")
    ap.add_argument("--authors", default=str(authors_model_dir() / "compressed_SqueezeNet.net"),
                    help="the authors' ImageNet v1.0 (.sqz, or the .net, re-encoded losslessly)")
    ap.add_argument("--only", choices=["imagenette", "authors"], help="measure one model only (into an existing "
                    "--out: the other model's entry is kept)")
    ap.add_argument("--rounds", type=int, default=20, help="interleaved timing rounds (20)")
    ap.add_argument("--accuracy", action="store_true", help="every evaluation image through the C engine")
    ap.add_argument("--qemu", type=int, default=0, metavar="N", help="N images through the Cortex-M4 under QEMU")
    ap.add_argument("--out", default=default_out("c_engine"), help="output JSON (default: a new results file)")
    args = ap.parse_args()
    load_before = os.getloadavg()
    results = {}
    with tempfile.TemporaryDirectory(prefix="sqz-bench-") as tmp:
        for name, (path, size, data) in models(args).items():
            if args.only in (None, name):
                results[name] = measure(name, path, size, data, args, Path(tmp))
    out = Path(args.out)
    if args.only and out.is_file():  # one model re-measured: the other's figures are kept
        results = json.loads(out.read_text())["models"] | results
    write_text(out, json.dumps({
        "machine": {"cpu": platform.processor() or platform.machine(), "isa": x86_isa(), "cores": os.cpu_count(),
                    "onnxruntime": ort.__version__, "torch": torch.__version__,
                    "load_average_1min_before_after": [load_before[0], os.getloadavg()[0]]},
        "host_flags": HOST_FLAGS, "arm_flags": targets.ARM_FLAGS, "models": results}, indent=2))
    chart(results, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
