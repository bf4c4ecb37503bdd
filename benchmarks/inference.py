"""CPU inference speed of SqueezeNet v1.0 and v1.1 at 224x224: PyTorch, ONNX Runtime and OpenVINO, fp32 and int8.

In one run and on the same real images (Imagenette val, torchvision preprocessing), for batch 1 and 32:
PyTorch eager (NCHW), PyTorch channels_last, ONNX Runtime fp32 and int8 (`squeezenet.deploy.int8`: QDQ,
per-channel s8 weights, u8 activations calibrated on Imagenette train, concat inputs on one scale), and the same
two files on OpenVINO: our backend (`squeezenet.deploy.openvino`: compiled per input shape, f32 precision hint,
LATENCY; and THROUGHPUT, a batch split over single-thread streams) and OpenVINO as it comes (the file read as it
is, default settings: dynamic batch, and bf16 on a CPU with AMX). Backends are timed in interleaved rounds, so a
noisy neighbour slows them all alike; the figure is the median ms per image, and each is also given as a ratio to
ONNX Runtime fp32 taken within each round (its median and 95% interval over the rounds), and as GMAC/s against the
machine's peak for its precision (`cpu_limits.peaks`: cores x clock x MACs per cycle of the instruction set found).
The rounds go on until the ratios of `WATCHED` are known to --tolerance (`timing.interleaved`): the int8 paths and
OpenVINO's defaults against ONNX Runtime fp32, and each of our OpenVINO settings against OpenVINO's defaults on the
same file; the JSON's `load_average` says whether the machine was idle. For v1.0 it also records
OpenVINO int8's per-layer times (kernel, share, GMAC/s of each convolution), what limits it. `--variants` adds,
for v1.0, the alternatives that were tried, each differing from ours in one setting (ONNX Runtime: no shared
concat scale, QOperator, per-tensor, s8 activations, u8 weights, no layout optimisation, one thread; OpenVINO: one
thread, dynamic batch, no CPU pinning), and PyTorch's own x86 int8. Weights are freshly initialised: speed does
not depend on their values. Writes JSON and a PNG.

    python benchmarks/inference.py [--rounds 30 --max-rounds 90 --tolerance 0.03] [--variants]
        [--out results/benchmarks/inference.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import platform
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import openvino as ov
import torch
from cpu_limits import cpuinfo, openvino_profile, peak_gmacs, peaks
from fresh import default_out
from onnxruntime.quantization import QuantFormat, QuantType
from timing import Load, add_arguments, interleaved, protocol, ratio
from torch import nn

import squeezenet
from squeezenet import progress
from squeezenet.atomic import atomic_path, write_text
from squeezenet.deploy.graph import check_images, to_onnx
from squeezenet.deploy.int8 import calibration_batches, quantize_int8
from squeezenet.deploy.onnxruntime import OrtModel
from squeezenet.deploy.openvino import OvModel
from squeezenet.formats.onnx import description, set_description
from squeezenet.formats.weights import Weights
from squeezenet.models.preprocessing import TORCHVISION
from squeezenet.models.summary import summarize

MODELS = ("squeezenet1_0", "squeezenet1_1")
BATCHES = (1, 32)
BASELINE = "onnxruntime fp32"
MAIN = ["pytorch eager", "pytorch channels_last", BASELINE, "onnxruntime int8", "openvino fp32", "openvino int8",
        "openvino int8 THROUGHPUT", "openvino as it comes, fp32 file (bf16)", "openvino as it comes, int8 file"]
GOALS = {1: 0.30, 32: 0.25}  # issue 18: the fastest path's time as a fraction of ONNX Runtime fp32's
# our OpenVINO settings against OpenVINO as it comes, on the same file
AGAINST_DEFAULTS = [("openvino int8", "openvino as it comes, int8 file"),
                    ("openvino int8 THROUGHPUT", "openvino as it comes, int8 file"),
                    ("openvino fp32", "openvino as it comes, fp32 file (bf16)")]
# the ratios whose 95% intervals decide when the rounds stop
WATCHED = [(k, BASELINE) for k in ("onnxruntime int8", "openvino int8", "openvino as it comes, int8 file")]
WATCHED += AGAINST_DEFAULTS
PAUSE_S = 0.2


def precision_of(row: str) -> str:
    return "int8" if "int8" in row else "bf16" if "bf16" in row else "fp32"


def openvino_as_it_comes(model: onnx.ModelProto, **config) -> Callable[[torch.Tensor], np.ndarray]:
    """The file read by OpenVINO with its defaults (dynamic batch, the CPU's default precision) plus `config`."""
    core = ov.Core()
    request = core.compile_model(core.read_model(model.SerializeToString()), "CPU", config).create_infer_request()
    return lambda x: request.infer({0: np.ascontiguousarray(x.numpy())}, share_inputs=True)[0]


def torch_x86_int8(model: nn.Module, batches: list[np.ndarray]) -> Callable[[torch.Tensor], torch.Tensor]:
    """PyTorch's own static int8 (FX graph mode, x86 backend), channels_last input."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86"
    graph = nn.Sequential(model.features, model.classifier, nn.Flatten()).eval()  # no input-size check to trace
    prepared = prepare_fx(graph, get_default_qconfig_mapping("x86"), (torch.from_numpy(batches[0]),))
    with torch.inference_mode():
        for b in batches:
            prepared(torch.from_numpy(b))
    quantized = convert_fx(prepared)
    return lambda x: quantized(x.contiguous(memory_format=torch.channels_last))


def variants_of(model: nn.Module, fp32: onnx.ModelProto, ours: onnx.ModelProto,
                batches: list[np.ndarray]) -> dict[str, Callable[[], Callable]]:
    """The settings tried besides ours, each a builder (the int8 ones are calibrated and quantized anew)."""
    all_opt = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return {
        "onnxruntime int8 no shared concat scale":
            lambda: OrtModel(quantize_int8(fp32, batches, share_concat_scales=False)),
        "onnxruntime int8 QOperator":
            lambda: OrtModel(quantize_int8(fp32, batches, quant_format=QuantFormat.QOperator)),
        "onnxruntime int8 per-tensor": lambda: OrtModel(quantize_int8(fp32, batches, per_channel=False)),
        "onnxruntime int8 s8 activations":
            lambda: OrtModel(quantize_int8(fp32, batches, activation_type=QuantType.QInt8)),
        "onnxruntime int8 u8 weights": lambda: OrtModel(quantize_int8(fp32, batches, weight_type=QuantType.QUInt8)),
        "onnxruntime int8 graph opt extended":
            lambda: OrtModel(ours, optimization=ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED),
        "onnxruntime int8 1 thread": lambda: OrtModel(ours, threads=1, optimization=all_opt),
        "onnxruntime fp32 1 thread": lambda: OrtModel(fp32, threads=1, optimization=all_opt),
        "openvino int8 1 thread": lambda: OvModel(ours, threads=1),
        "openvino int8 dynamic batch": lambda: openvino_as_it_comes(ours, PERFORMANCE_HINT="LATENCY",
                                                                    INFERENCE_PRECISION_HINT="f32"),
        "openvino int8 no CPU pinning": lambda: no_pinning(ours),
        "openvino fp32 THROUGHPUT": lambda: OvModel(fp32, hint="THROUGHPUT"),
        "pytorch x86 int8 (fx)": lambda: torch_x86_int8(model, batches),
    }


def no_pinning(model: onnx.ModelProto) -> OvModel:
    run = OvModel(model)
    run.config["ENABLE_CPU_PINNING"] = False
    return run


def runners(name: str, batches: list[np.ndarray], variants: bool) -> tuple[dict[str, Callable], dict]:
    """The runners of `name`, and what else was measured building them (the in-memory export's seconds)."""
    model = squeezenet.create_model(name).eval()
    start = time.perf_counter()
    fp32 = to_onnx(model, 224)
    export_s = time.perf_counter() - start
    set_description(fp32, description(Weights.from_model(model, [str(i) for i in range(1000)], TORCHVISION)))
    ours = quantize_int8(fp32, batches)
    cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    run = {
        "pytorch eager": model,
        "pytorch channels_last": lambda x: cl(x.contiguous(memory_format=torch.channels_last)),
        BASELINE: OrtModel(fp32),
        "onnxruntime int8": OrtModel(ours),
        "openvino fp32": OvModel(fp32),
        "openvino int8": OvModel(ours),
        "openvino int8 THROUGHPUT": OvModel(ours, hint="THROUGHPUT"),
        "openvino as it comes, fp32 file (bf16)": openvino_as_it_comes(fp32),
        "openvino as it comes, int8 file": openvino_as_it_comes(ours),
    }
    if variants:  # this takes minutes: a bar
        build = variants_of(model, fp32, ours, batches)
        for k in progress.bar(build, desc=f"{name}: building the variants", unit="variant"):
            run[k] = build[k]()
    return run, {"export_to_onnx_s": export_s, "macs_per_image": summarize(model, 224)["total"]["macs"]}


def measure(run: dict[str, Callable], images: torch.Tensor, batch: int, args: argparse.Namespace,
            desc: str) -> tuple[dict[str, list[float]], dict[str, dict]]:
    """ms per image of each runner over the rounds, and the ratios of `WATCHED`. A round times every runner once,
    in turn, on the same inputs; batch 32 takes a third of the rounds (6 at least).

    Each turn starts with an untimed call and ends with a pause: PyTorch's OpenMP threads and ONNX Runtime's
    thread pools spin-wait after a call, and a runner timed right after another framework would pay for them.
    """
    inner = 5 if batch == 1 else 1
    inputs = [images[i:i + 1] for i in range(inner)] if batch == 1 else [images[:batch]]

    def one_round() -> dict[str, float]:
        times = {}
        for k, fn in run.items():
            fn(inputs[0])
            t = time.perf_counter()
            for x in inputs:
                fn(x)
            times[k] = (time.perf_counter() - t) * 1000 / (inner * batch)
            time.sleep(PAUSE_S)
        return times

    shrink = 1 if batch == 1 else 3
    with torch.inference_mode():
        return interleaved(one_round, WATCHED, args, desc, max(6, args.rounds // shrink),
                           max(6, args.max_rounds // shrink))


def chart(results: dict, load: dict, path: Path) -> None:
    """Bars of ms per image for the main backends per model; with variants, their ratios for v1.0. The title says
    whether the machine was idle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    others = [k for k in results[MODELS[0]]["batch 1"] if k not in MAIN]
    panels = len(MODELS) + bool(others)
    fig, axes = plt.subplots(1, panels, figsize=(8 * panels, 5.6))
    width = 0.8 / len(MAIN)
    for ax, name in zip(axes, MODELS, strict=False):
        for j, backend in enumerate(MAIN):
            xs = np.arange(len(BATCHES)) + (j - (len(MAIN) - 1) / 2) * width
            rows = [results[name][f"batch {b}"][backend] for b in BATCHES]
            bars = ax.bar(xs, [r["ms_per_image"] for r in rows], width, label=backend)
            for bar, r in zip(bars, rows, strict=True):
                ax.annotate(f"{r['ratio_to_ort_fp32']:.2f}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=6, rotation=90)
        ax.set_xticks(np.arange(len(BATCHES)), [f"batch {b}" for b in BATCHES])
        ax.set_title(f"{name}, 224x224")
        ax.set_yscale("log")
        ax.set_ylabel("median ms per image, log scale (lower is better)")
    axes[0].legend(fontsize=7)
    if others:
        ax = axes[-1]
        names = ["onnxruntime int8", "openvino int8", *others]
        ys = np.arange(len(names))
        for j, b in enumerate(BATCHES):
            ratios = [results[MODELS[0]][f"batch {b}"][k]["ratio_to_ort_fp32"] for k in names]
            ax.barh(ys + (j - 0.5) * 0.4, ratios, 0.4, label=f"batch {b}", color=f"C{j}")
            ax.axvline(GOALS[b], color=f"C{j}", lw=0.8, ls="--", label=f"goal batch {b}: {GOALS[b]:.2f}x")
        ax.axvline(1.0, color="k", lw=0.8)
        ax.set_yticks(ys, names, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("time relative to ONNX Runtime fp32")
        ax.set_title(f"{MODELS[0]}: settings tried")
        ax.legend(fontsize=7)
    quiet = "idle" if load["idle"] else f"not idle: other processes took {load['others_cores']} cores"
    fig.suptitle(f"CPU inference ({load['cores']} cores, {quiet}); bar labels: time relative to ONNX Runtime fp32 "
                 "in the same rounds")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def summarise(times: dict[str, list[float]], macs: int, peak: dict, tolerance: float) -> dict:
    """Per runner: median ms per image, its ratio to the baseline within the rounds (median, 95% interval),
    quartiles, GMAC/s and its share of the peak."""
    out = {}
    for k, v in times.items():
        ms, r = float(np.median(v)), ratio(v, times[BASELINE], tolerance)
        top = peak_gmacs(peak, precision_of(k))
        out[k] = {"ms_per_image": ms, "ratio_to_ort_fp32": r["median"], "ratio_ci95": r["ci95"],
                  "q1_ms": float(np.percentile(v, 25)), "q3_ms": float(np.percentile(v, 75)), "rounds": len(v),
                  "gmac_per_s": macs / ms / 1e6,
                  "precision": precision_of(k)} | ({"peak_fraction": macs / ms / 1e6 / top} if top else {})
    return out


def interval(ci: list[float] | None) -> str:
    return f"[{ci[0]:.2f}-{ci[1]:.2f}]" if ci else "[no interval]"


def benchmark(name: str, images: torch.Tensor, batches: list[np.ndarray], args: argparse.Namespace,
              peak: dict) -> dict:
    run, built = runners(name, batches, args.variants and name == MODELS[0])
    with torch.inference_mode():
        reference = torch.as_tensor(run[BASELINE](images))
        agreement = {k: float((reference.argmax(1) == torch.as_tensor(run[k](images)).argmax(1)).float().mean())
                     for k in ("onnxruntime int8", "openvino int8")}
    result: dict = dict(built)
    for batch in BATCHES:
        times, ratios = measure(run, images, batch, args, f"{name} batch {batch}: timing {len(run)} runners")
        result[f"batch {batch}"] = rows = summarise(times, built["macs_per_image"], peak, args.tolerance)
        result[f"ratios, batch {batch}"] = ratios
        for k, r in rows.items():
            share = f"{100 * r['peak_fraction']:4.1f}% of {r['precision']} peak" if "peak_fraction" in r else ""
            print(f"{name:14s} batch {batch:2d}  {k:40s} {r['ms_per_image']:7.2f} ms/image  "
                  f"{r['ratio_to_ort_fp32']:5.2f}x {interval(r['ratio_ci95']):13s} ORT fp32  "
                  f"{r['gmac_per_s']:6.1f} GMAC/s {share}", flush=True)
        for a, b in AGAINST_DEFAULTS:
            r = ratios[f"{a} / {b}"]
            print(f"{name:14s} batch {batch:2d}  {a} / {b}: {r['median']:.2f}x {interval(r['ci95'])} in {r['rounds']} "
                  f"rounds{'' if r['stable'] else ' (not within the tolerance)'}", flush=True)
    result["int8_top1_agreement_with_fp32"] = agreement
    print(f"{name:14s} int8 top-1 agrees with ORT fp32 on " + ", ".join(
        f"{100 * v:.0f}% ({k})" for k, v in agreement.items()) + f" of {len(images)} images")
    if name == MODELS[0]:
        result["openvino_int8_profile"] = {f"batch {b}": openvino_profile(run["openvino int8"], images[:b].numpy(),
                                                                          peak_gmacs(peak, "int8")) for b in BATCHES}
        for b, prof in result["openvino_int8_profile"].items():
            print(f"{name} openvino int8 {b}: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in
                                                            list(prof["share_by_type"].items())[:6]))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(ap, rounds=30, max_rounds=90)
    ap.add_argument("--variants", action="store_true", help="also time the alternatives tried, for v1.0")
    ap.add_argument("--calibration-images", type=int, default=300)
    ap.add_argument("--out", default=default_out("inference"),
                    help="output JSON (default: a new file under results/benchmarks/)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    logging.getLogger().setLevel(logging.ERROR)

    load = Load()
    peak = peaks()
    print("peak GMAC/s (" + peak["derivation"] + f", {peak['cores']} x {peak['ghz']:.2f}): " + ", ".join(
        f"{p} {isa} {v['gmac_per_s']:.0f}" for p in ("int8", "bf16", "fp32") for isa, v in peak[p]["found"].items()))
    images = check_images(TORCHVISION, count=32)
    batches = calibration_batches(TORCHVISION, count=args.calibration_images)
    results = {name: benchmark(name, images, batches, args, peak) for name in MODELS}
    out = Path(args.out)
    flags = cpuinfo()[0]
    report = {
        "machine": {"cpu": platform.processor() or platform.machine(),
                    "flags": {f: f in flags for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
                                                      "amx_bf16", "amx_int8")},
                    "peak": peak, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                    "onnxruntime": ort.__version__, "openvino": ov.__version__, "python": platform.python_version()},
        "load_average": load.record(),
        "input": "224x224, 32 Imagenette val images (torchvision preprocessing)",
        "int8": f"ONNX Runtime static QDQ, per-channel s8 weights, u8 activations, MinMax on "
                f"{sum(len(b) for b in batches)} Imagenette train images; the same file on OpenVINO",
        "metric": "median ms per image over interleaved rounds; ratio to ONNX Runtime fp32 within each round, its "
                  "median over the rounds and 95% interval; `ratios, batch N`: the pairs that decide when the rounds "
                  "stop (batch 32: a third of the rounds, 6 at least), among them our OpenVINO settings against "
                  "OpenVINO's defaults on the same file",
        "rounds": protocol(args),
        "goals": {f"batch {b}": g for b, g in GOALS.items()},
        "results": results,
    }
    write_text(out, json.dumps(report, indent=2))
    chart(results, report["load_average"], out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
