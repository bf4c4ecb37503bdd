"""The C engine (`squeezenet export --format c`) measured: memory plans, speed, accuracy, a Cortex-M4 under QEMU,
and TensorFlow Lite Micro on the same int8 network.

For the bundled Imagenette v1.1 (at 128 px, and at 224 px with --imagenette-224) and the authors' ImageNet v1.0
`.sqz` at 227 px (a `.net` is re-encoded losslessly first; --authors-6bit adds the file of
results/compress/headline.sh):
- plans: the arena layer by layer and streamed row by row (the smallest plan), the plan that fits 256 KB of RAM on
  the board, and the MACs each plan's execution makes;
- memory: the linked Cortex-M4 firmware's flash and RAM (arm-none-eabi-size: .data + .bss + stack) for each
  firmware build (the 256 KB plan, the smallest, and a build with dense int8 weights), beside a dense int8 runtime's
  weights and arena planned in TensorFlow Lite Micro's style;
- speed: ms per image at batch 1 on one thread, the C host build (layer by layer) against ONNX Runtime int8 and
  fp32 at the same input size, in interleaved rounds, each ratio taken within its round, the rounds repeated until
  both ratios are known to --tolerance (`timing.interleaved`), with the load meanwhile (`load_average`: was the
  machine idle);
- with --accuracy: every image of the model's evaluation set through the streamed and the layer-by-layer host
  builds (their scores compared bit for bit, and with the integer reference), top-1 against fp32 and ORT int8;
- with --qemu N: N images through each firmware under qemu-system-arm -icount shift=0: top-1 against the host
  build's, the stack used, instructions per image (SysTick, calibrated by the harness) and the ms they imply on a
  168 MHz Cortex-M4 and a 216 MHz Cortex-M7 for a range of cycles per instruction (CPI below);
- with --tflm (pip install 'squeezenet[tflm]'): the same int8 network as a .tflite run by TFLM's interpreter on
  every evaluation image: model bytes, the smallest arena, top-1 agreement with the C engine, plain and with TFLM's
  look-up-table weight compression.

    python benchmarks/c_engine.py [--only authors] [--accuracy] [--qemu 20] [--tflm]
        [--rounds 20 --max-rounds 60 --tolerance 0.03] [--out results/benchmarks/c_engine.json]
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
from timing import Load, add_arguments, interleaved, protocol

import squeezenet
from squeezenet import progress
from squeezenet.atomic import write_text
from squeezenet.compression.pipeline import reencode
from squeezenet.data.folders import list_samples
from squeezenet.deploy.cengine import targets
from squeezenet.deploy.cengine.codegen import write_c
from squeezenet.deploy.cengine.export import build_engine, crops_of, fp32_logits
from squeezenet.deploy.cengine.graph import Conv, lower
from squeezenet.deploy.cengine.planner import best_plan, choose, plan_macs, smallest_plan, tflm_plan
from squeezenet.deploy.cengine.reference import run_float, run_int
from squeezenet.deploy.cengine.stream import stage_rows
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


# Cycles per instruction assumed for the ms figures: a Cortex-M4 issues one instruction a cycle, loads take two
# (pipelined back to back) and a taken branch two to four, and code and weights in flash at 168 MHz add wait states
# that the ART accelerator's prefetch mostly hides: 1.2 to 1.8 for these loops (12 instructions, three loads and a
# branch per entry). A Cortex-M7 dual-issues and caches flash: 0.7 to 1.2.
CPI = {"cortex_m4_168mhz": (168e6, 1.2, 1.8), "cortex_m7_216mhz": (216e6, 0.7, 1.2)}
RAM_BUDGET = 256 << 10
DENSE_FLASH = 2 << 20  # dense int8 weights of v1.0 do not fit 1 MB; QEMU's board has 4 MB at 0x0


def models(args) -> dict[str, tuple[str, int, Path]]:
    data = shared_dir() / "data"
    out = {"imagenette": (args.imagenette, args.imagenette_size, data / "imagenette2" / "val"),
           "authors": (args.authors, 227, data / "imagenet-val-1300")}
    if args.imagenette_224:
        out["imagenette-224"] = (args.imagenette, 224, data / "imagenette2" / "val")
    if args.authors_6bit:
        out["authors-6bit"] = (args.authors_6bit, 227, data / "imagenet-val-1300")
    return out


def as_sqz(path: str, work: Path) -> Path:
    """The authors' `.net` as the lossless `.sqz` `squeezenet compress` writes; other files as they are."""
    path = resolve(path)
    if path.suffix != ".net":
        return path
    out = work / (path.stem + ".sqz")
    out.write_bytes(reencode(squeezenet.load(path), log=lambda _: None).data)
    return out


def plans(weights, size: int) -> dict:
    """Each plan's arena and the MACs its execution makes (streamed rows counted by the C's schedule)."""
    graph = lower(weights.build(), size)
    layers, small = best_plan(graph), smallest_plan(graph)
    fit = choose(graph, RAM_BUDGET - targets.firmware_ram(0, len(weights.classes)))
    return {"layers": {"arena": layers.arena, "macs": plan_macs(layers)},
            "stream": {"arena": small.arena, "macs": plan_macs(small), "stages_streamed": small.streamed,
                       "stages": stage_rows(small.stream) if small.stream else []},
            "fit_256k": {"arena": fit.arena, "macs": plan_macs(fit), "stages_streamed": fit.streamed},
            "dense_int8_runtime": {"arena": tflm_plan(graph).arena}}


def memory(engine, weights) -> dict:
    convs = [op for op in lower(weights.build(), engine.graph.image_size).ops if isinstance(op, Conv)]
    dense_weights = sum(op.conv.weight.numel() for op in convs) + 12 * sum(op.conv.out_channels for op in convs)
    return {"weights_fixed_width": engine.flash, "dense_int8_weights": dense_weights}


def board_ms(instructions: float) -> dict:
    return {k: [instructions * lo / f * 1e3, instructions * hi / f * 1e3] for k, (f, lo, hi) in CPI.items()}


def firmware(name: str, engine, crops: np.ndarray, labels: list[int], host_top1: np.ndarray, work: Path,
             flash: int = targets.FLASH) -> dict:
    """The Cortex-M4 firmware of `engine`: its sections, and with images its run under QEMU."""
    out = work / name
    write_c(engine, out, name)
    targets.write_firmware(out, [(str(i), c) for i, c in enumerate(crops)], flash, RAM_BUDGET)
    try:
        fw = targets.arm_build(out)
    except SqueezeNetError as e:
        return {"error": str(e), "arena": engine.plan.arena}
    r = {"arena": engine.plan.arena, "stages_streamed": engine.plan.streamed, "flash": fw.flash, "ram": fw.ram,
         "sections": {k: v for k, v in fw.sections.items() if not k.startswith((".debug", ".comment", ".ARM.att"))},
         "objects": {k: v for k, v in targets.object_sizes(targets.arm_library(out, work / f"{name}-lib")).items()}}
    if len(crops):
        start = time.perf_counter()
        board = targets.qemu_run(out)
        top1 = np.array([t[0] for t in board.top])
        per = statistics.median(board.instructions)
        r["qemu"] = {"images": len(crops), "same_top1_as_host": int(np.sum(top1 == host_top1)),
                     "top1": float(np.mean(top1 == np.asarray(labels))), "stack_used": board.stack,
                     "instructions_per_image": per, "instructions_min_max": [min(board.instructions),
                                                                             max(board.instructions)],
                     "instructions_per_tick": board.per_tick, "ms": board_ms(per),
                     "seconds": time.perf_counter() - start}
    return r


def ort_models(weights, pre) -> dict[str, OrtModel]:
    fp32 = to_onnx(weights.build(), pre.crop_size)
    set_description(fp32, description(weights))
    int8 = quantize_int8(fp32, calibration_batches(pre))
    return {"onnxruntime int8": OrtModel(int8, threads=1), "onnxruntime fp32": OrtModel(fp32, threads=1)}


def speed(exe: Path, runners: dict, crops: np.ndarray, pre, classes: int, args, name: str) -> dict:
    """Median ms per image of each backend over interleaved rounds, each ratio "c engine / peer" (median within
    the rounds, 95% interval), and the load during the rounds."""
    load = Load()
    x = pre.normalize(torch.from_numpy(crops).permute(0, 3, 1, 2))

    def one_round() -> dict[str, float]:
        _, ms = targets.host_run(exe, crops, classes, rounds=3)
        times = {"c engine": statistics.median(v for row in ms for v in row)}
        for k, run in runners.items():
            run(x[:1])
            ms = []
            for i in range(len(x)):
                for _ in range(3):
                    t = time.perf_counter()
                    run(x[i:i + 1])
                    ms.append((time.perf_counter() - t) * 1000)
            times[k] = statistics.median(ms)
        time.sleep(0.2)
        return times

    times, ratios = interleaved(one_round, [("c engine", k) for k in runners], args, f"{name}: timing")
    return {k: {"ms_per_image": statistics.median(v), "q1_ms": float(np.percentile(v, 25)),
                "q3_ms": float(np.percentile(v, 75)), "rounds": len(v)} for k, v in times.items()} | ratios | {
        "load_average": load.record()}


def accuracy(engine, layers_exe: Path, stream_exe: Path, runners: dict, samples, name: str) -> dict:
    """Every image through both host builds (bit for bit), the integer reference, fp32 and ORT int8."""
    pre, y = engine.preprocessing, np.asarray(samples.labels)
    crops = crops_of(pre, samples.paths, f"{name}: images")
    classes = engine.graph.num_classes
    stream, _ = targets.host_run(stream_exe, crops, classes)
    layers, _ = targets.host_run(layers_exe, crops, classes)
    ref = np.concatenate([run_int(engine, crops[i:i + 16]) for i in progress.bar(
        range(0, len(crops), 16), desc=f"{name}: integer reference", unit="batch", leave=False)])
    fp32 = fp32_logits(engine.weights, pre, crops)
    x = pre.normalize(torch.from_numpy(crops).permute(0, 3, 1, 2))
    int8 = torch.cat([runners["onnxruntime int8"](x[i:i + 32]) for i in range(0, len(x), 32)]).numpy()
    top1 = stream.argmax(1)
    return {"images": len(y), "top1_c_engine": float(np.mean(top1 == y)),
            "top1_fp32": float(np.mean(fp32.argmax(1) == y)),
            "top1_onnxruntime_int8": float(np.mean(int8.argmax(1) == y)),
            "streamed_scores_identical_to_layer_by_layer": int(np.sum(np.all(stream == layers, axis=1))),
            "scores_identical_to_reference": int(np.sum(np.all(stream == ref, axis=1))),
            "top1_agreement_fp32": float(np.mean(top1 == fp32.argmax(1))), "crops": crops, "top1": top1}


def tflm(engine, crops: np.ndarray, ours: np.ndarray) -> dict:
    """TFLM on the same int8 network and images. Its scores are int8 means of conv10's map (ours: 16-bit sums), on
    the grid a converter would calibrate: the largest |mean logit| on the calibration images (Imagenette train)."""
    try:
        import tflite_micro  # noqa: F401
    except ImportError:
        return {"error": "not measured: pip install 'squeezenet[tflm]'"}
    from squeezenet.deploy import tflm as peer

    bound = max(float(run_float(engine.graph, torch.from_numpy(b)).abs().max())
                for b in calibration_batches(engine.preprocessing))
    r = peer.evaluate(engine, crops, bound)
    r = {k: v for k, v in r.items() if k not in ("top1", "reference_top1")} | {"logit_range": bound}
    if r.get("compressed"):
        r["compressed"].pop("top1", None)
    r["agreement_with_c_engine"] = r["agreement"]  # run_int's top-1 is the C engine's (scores bit for bit)
    return r


def measure(name: str, path: str, size: int, data: Path, args, work: Path) -> dict:
    path = as_sqz(path, work)
    weights = squeezenet.load(path)
    engine = build_engine(weights, size, plan="layers")
    streamed = build_engine(weights, size, plan="stream")
    exes = {}
    for label, e in (("layers", engine), ("stream", streamed)):
        write_c(e, work / name / label, path.name)
        exes[label] = targets.host_build(work / name / label, work / name / f"{label}-host", HOST_FLAGS)
    samples = list_samples(data, classes=weights.class_ids)
    speed_crops = crops_of(engine.preprocessing, samples.sample(5, seed=1).paths)
    runners = ort_models(weights, engine.preprocessing)
    out = {"weights": path.name, "file_bytes": path.stat().st_size, "image_size": size, "data": data.name,
           "plans": plans(weights, size), "memory": memory(engine, weights),
           "speed": speed(exes["layers"], runners, speed_crops, engine.preprocessing, engine.graph.num_classes,
                          args, name)}
    acc = accuracy(streamed, exes["layers"], exes["stream"], runners, samples, name) if args.accuracy else None
    if acc:
        out["accuracy"] = {k: v for k, v in acc.items() if k not in ("crops", "top1")}
    if not targets.missing_arm_tools():
        out["firmware"] = boards(name, weights, size, samples, args, work / name / "boards")
    if args.tflm and acc:
        out["tflm"] = tflm(streamed, acc["crops"], acc["top1"])
    print(json.dumps({name: out}, indent=1), flush=True)
    return out


def boards(name: str, weights, size: int, samples, args, work: Path) -> dict:
    """The firmware builds: the plan that fits 256 KB and the smallest on --qemu images, the smallest with dense int8
    weights on a few (every build computes the same scores, so all are held to one host build's top-1)."""
    fit = build_engine(weights, size, arena=RAM_BUDGET - targets.firmware_ram(0, len(weights.classes)))
    smallest = build_engine(weights, size, plan="stream")
    dense = build_engine(weights, size, plan="stream", dense=True)
    picked = samples.sample(args.qemu, seed=2) if args.qemu else None
    crops = crops_of(fit.preprocessing, picked.paths, "qemu images") if picked else np.zeros((0, size, size, 3))
    labels, host_top1 = list(picked.labels) if picked else [], np.zeros(0, int)
    if picked:
        write_c(fit, work / "host-c", name)
        exe = targets.host_build(work / "host-c", work / "host", HOST_FLAGS)
        host_top1 = targets.host_run(exe, crops, fit.graph.num_classes)[0].argmax(1)
    few = slice(0, args.qemu_dense)
    out = {"fit_256k": firmware("fit", fit, crops, labels, host_top1, work),
           "stream": firmware("stream", smallest, crops, labels, host_top1, work),
           "stream_dense_int8": firmware("dense", dense, crops[few], labels[few], host_top1[few], work,
                                         DENSE_FLASH)}
    i = {k: v.get("qemu", {}).get("instructions_per_image") for k, v in out.items()}
    if i["stream"] and i["stream_dense_int8"]:
        out["decoding_share_of_instructions"] = 1 - i["stream_dense_int8"] / i["stream"]
    return out


def chart(results: dict, path: Path) -> None:
    names = list(results)
    fig, (ax, bx) = subplots(1, 2, figsize=(13, 4.8))
    builds = [("fit_256k", "fits 256 KB"), ("stream", "smallest (streamed)"), ("stream_dense_int8", "dense int8")]
    for j, (b, label) in enumerate(builds):
        ms = [results[n].get("firmware", {}).get(b, {}).get("qemu", {}).get("ms", {}).get("cortex_m4_168mhz")
              for n in names]
        lo = [m[0] / 1000 if m else 0 for m in ms]
        hi = [m[1] / 1000 if m else 0 for m in ms]
        ax.bar(np.arange(len(names)) + (j - 1) * 0.27, hi, 0.27, alpha=0.35, color=f"C{j}")
        ax.bar(np.arange(len(names)) + (j - 1) * 0.27, lo, 0.27, color=f"C{j}", label=label)
    ax.set_xticks(np.arange(len(names)), [f"{n}\n{results[n]['image_size']} px" for n in names], fontsize=8)
    ax.set_ylabel("s per image on a 168 MHz Cortex-M4 (CPI 1.2 solid - 1.8 light)")
    ax.set_title("on-device time from QEMU's instruction counts")
    ax.legend(fontsize=8)
    for j, (b, label) in enumerate([("fit_256k", "RAM: fits 256 KB"), ("stream", "RAM: smallest")]):
        ram = [results[n].get("firmware", {}).get(b, {}).get("ram", 0) / 1024 for n in names]
        bx.bar(np.arange(len(names)) + (j - 1.5) * 0.2, ram, 0.2, label=label, color=f"C{j}")
    flash = [results[n].get("firmware", {}).get("fit_256k", {}).get("flash", 0) / 1024 for n in names]
    bx.bar(np.arange(len(names)) + 0.5 * 0.2, flash, 0.2, label="flash (compressed weights)", color="C3")
    tflm_arena = [results[n].get("tflm", {}).get("smallest_arena", 0) / 1024 for n in names]
    bx.bar(np.arange(len(names)) + 1.5 * 0.2, tflm_arena, 0.2, label="TFLM: smallest arena", color="C4")
    bx.axhline(256, color="r", lw=0.8, ls="--", label="256 KB RAM")
    bx.axhline(1024, color="k", lw=0.8, ls="--", label="1 MB flash")
    bx.set_yscale("log")
    bx.set_xticks(np.arange(len(names)), names, fontsize=8)
    bx.set_ylabel("KB (log)")
    bx.set_title("firmware RAM (.data + .bss + stack) and flash; TFLM's arena")
    bx.legend(fontsize=7)
    save(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--imagenette", default="imagenette", help="the Imagenette model (default: the bundled one)")
    ap.add_argument("--imagenette-size", type=int, default=128, help="its input size (128: the Cortex-M4's)")
    ap.add_argument("--imagenette-224", action="store_true", help="also the Imagenette model at 224 px")
    ap.add_argument("--authors-6bit", metavar="SQZ", help="also this v1.0 file (results/compress/headline.sh's)")
    ap.add_argument("--authors", default=str(authors_model_dir() / "compressed_SqueezeNet.net"),
                    help="the authors' ImageNet v1.0 (.sqz, or the .net, re-encoded losslessly)")
    ap.add_argument("--only", choices=["imagenette", "authors", "imagenette-224", "authors-6bit"],
                    help="measure one model only (into an existing --out: the other models' entries are kept)")
    add_arguments(ap, rounds=20, max_rounds=60)
    ap.add_argument("--accuracy", action="store_true", help="every evaluation image through the C engine")
    ap.add_argument("--qemu", type=int, default=0, metavar="N", help="N images through each Cortex-M4 firmware "
                    "under QEMU (the dense int8 build: --qemu-dense)")
    ap.add_argument("--qemu-dense", type=int, default=4, metavar="N", help="images through the dense int8 build")
    ap.add_argument("--tflm", action="store_true", help="TensorFlow Lite Micro on the same network (with --accuracy)")
    ap.add_argument("--out", default=default_out("c_engine"), help="output JSON (default: a new results file)")
    args = ap.parse_args()
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
                    "onnxruntime": ort.__version__, "torch": torch.__version__},
        "speed_rounds": protocol(args), "host_flags": HOST_FLAGS, "arm_flags": targets.ARM_FLAGS,
        "qemu": " ".join(targets.QEMU_ARGS), "cpi_assumed": CPI, "ram_budget": RAM_BUDGET, "models": results},
        indent=2))
    chart(results, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
