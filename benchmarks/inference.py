"""CPU inference speed of SqueezeNet v1.0 and v1.1 at 224x224: PyTorch against ONNX Runtime, fp32 and int8.

In one run and on the same real images (Imagenette val, torchvision preprocessing), for batch 1 and 32:
PyTorch eager (NCHW), PyTorch channels_last, ONNX Runtime fp32 and our int8 path (`squeezenet.runtime`:
QDQ, per-channel s8 weights, u8 activations calibrated on Imagenette train, concat inputs on one scale).
Backends are timed in interleaved rounds, so a noisy neighbour slows them all alike; the figure is the median
ms per image, and each is also given as a ratio to ONNX Runtime fp32 measured in the same rounds. `--variants`
adds, for v1.0, the int8 alternatives that were tried, each differing from ours in one setting (no shared concat
scale, QOperator, per-tensor, s8 activations, u8 weights, no layout optimisation, one thread), and PyTorch's
own x86 int8. Weights are freshly initialised: speed does not depend on their values. Writes JSON and a PNG.

    python benchmarks/inference.py [--rounds 30] [--variants] [--out results/benchmarks/inference.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from fresh import default_out
from onnxruntime.quantization import QuantFormat, QuantType
from torch import nn

import squeezenet
from squeezenet import progress
from squeezenet.atomic import atomic_path, write_text
from squeezenet.deploy.graph import check_images, to_onnx
from squeezenet.deploy.int8 import calibration_batches, quantize_int8
from squeezenet.deploy.onnxruntime import OrtModel
from squeezenet.formats.onnx import description, set_description
from squeezenet.formats.weights import Weights
from squeezenet.models.preprocessing import TORCHVISION

MODELS = ("squeezenet1_0", "squeezenet1_1")
BATCHES = (1, 32)
BASELINE = "onnxruntime fp32"
PAUSE_S = 0.2


def cpu_flags() -> dict:
    try:
        flags = set(next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        flags = set()
    return {f: f in flags for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")}


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


def runners(name: str, batches: list[np.ndarray], variants: bool) -> dict[str, Callable[[torch.Tensor], object]]:
    model = squeezenet.create_model(name).eval()
    fp32 = to_onnx(model, 224)
    set_description(fp32, description(Weights.from_model(model, [str(i) for i in range(1000)], TORCHVISION)))
    ours = quantize_int8(fp32, batches)
    cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    run = {
        "pytorch eager": model,
        "pytorch channels_last": lambda x: cl(x.contiguous(memory_format=torch.channels_last)),
        BASELINE: OrtModel(fp32),
        "int8 (ours)": OrtModel(ours),
    }
    if variants:  # each is calibrated and quantized here: a bar, since this takes minutes
        all_opt = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        build = {
            "int8 no shared concat scale": lambda: OrtModel(quantize_int8(fp32, batches, share_concat_scales=False)),
            "int8 QOperator": lambda: OrtModel(quantize_int8(fp32, batches, quant_format=QuantFormat.QOperator)),
            "int8 per-tensor": lambda: OrtModel(quantize_int8(fp32, batches, per_channel=False)),
            "int8 s8 activations": lambda: OrtModel(quantize_int8(fp32, batches, activation_type=QuantType.QInt8)),
            "int8 u8 weights": lambda: OrtModel(quantize_int8(fp32, batches, weight_type=QuantType.QUInt8)),
            "int8 graph opt extended": lambda: OrtModel(ours,
                                                        optimization=ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED),
            "int8 1 thread": lambda: OrtModel(ours, threads=1, optimization=all_opt),
            "fp32 1 thread": lambda: OrtModel(fp32, threads=1, optimization=all_opt),
            "pytorch x86 int8 (fx)": lambda: torch_x86_int8(model, batches),
        }
        for k in progress.bar(build, desc=f"{name}: building the int8 variants", unit="variant"):
            run[k] = build[k]()
    return run


def measure(run: dict[str, Callable], images: torch.Tensor, batch: int, rounds: int,
            desc: str) -> dict[str, list[float]]:
    """ms per image of each runner. Round r times every runner once, in turn, on the same inputs.

    Each turn starts with an untimed call and ends with a pause: PyTorch's OpenMP threads and ONNX Runtime's
    thread pools spin-wait after a call, and a runner timed right after another framework would pay for them.
    """
    inner = 5 if batch == 1 else 1
    inputs = [images[i:i + 1] for i in range(inner)] if batch == 1 else [images[:batch]]
    times: dict[str, list[float]] = {k: [] for k in run}
    with torch.inference_mode():
        for _ in progress.bar(range(rounds), desc=desc, unit="round", leave=False):
            for k, fn in run.items():
                fn(inputs[0])
                t = time.perf_counter()
                for x in inputs:
                    fn(x)
                times[k].append((time.perf_counter() - t) * 1000 / (inner * batch))
                time.sleep(PAUSE_S)
    return times


def chart(results: dict, path: Path) -> None:
    """Bars of ms per image for the four main backends per model; with variants, their ratios for v1.0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    main_backends = ["pytorch eager", "pytorch channels_last", BASELINE, "int8 (ours)"]
    others = [k for k in results[MODELS[0]]["batch 1"] if k not in main_backends]
    fig, axes = plt.subplots(1, len(MODELS) + bool(others), figsize=(6 * (len(MODELS) + bool(others)), 4.8))
    width = 0.8 / len(main_backends)
    for ax, name in zip(axes, MODELS, strict=False):
        for j, backend in enumerate(main_backends):
            xs = np.arange(len(BATCHES)) + (j - (len(main_backends) - 1) / 2) * width
            rows = [results[name][f"batch {b}"][backend] for b in BATCHES]
            bars = ax.bar(xs, [r["ms_per_image"] for r in rows], width, label=backend)
            for bar, r in zip(bars, rows, strict=True):
                ax.annotate(f"{r['ratio_to_ort_fp32']:.2f}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                            ha="center", va="bottom", fontsize=7)
        ax.set_xticks(np.arange(len(BATCHES)), [f"batch {b}" for b in BATCHES])
        ax.set_title(f"{name}, 224x224")
        ax.set_ylabel("median ms per image (lower is better)")
    axes[0].legend(fontsize=8)
    if others:
        ax = axes[-1]
        names = ["int8 (ours)", *others]
        ys = np.arange(len(names))
        for j, b in enumerate(BATCHES):
            ratios = [results[MODELS[0]][f"batch {b}"][k]["ratio_to_ort_fp32"] for k in names]
            ax.barh(ys + (j - 0.5) * 0.4, ratios, 0.4, label=f"batch {b}")
        ax.axvline(1.0, color="k", lw=0.8)
        ax.axvline(0.6, color="r", lw=0.8, ls="--", label="goal 0.6x")
        ax.set_yticks(ys, names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("time relative to ONNX Runtime fp32")
        ax.set_title(f"{MODELS[0]}: int8 settings tried")
        ax.legend(fontsize=8)
    fig.suptitle("CPU inference (2 cores); bar labels: time relative to ONNX Runtime fp32 in the same run")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30, help="interleaved timing rounds per batch size (30)")
    ap.add_argument("--variants", action="store_true", help="also time the int8 alternatives tried, for v1.0")
    ap.add_argument("--calibration-images", type=int, default=300)
    ap.add_argument("--out", default=default_out("inference"),
                    help="output JSON (default: a new file under results/benchmarks/)")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    logging.getLogger().setLevel(logging.ERROR)

    load_before = os.getloadavg()
    images = check_images(TORCHVISION, count=32)
    batches = calibration_batches(TORCHVISION, count=args.calibration_images)
    results: dict = {}
    for name in MODELS:
        run = runners(name, batches, args.variants and name == "squeezenet1_0")
        results[name] = {}
        with torch.inference_mode():
            reference = torch.as_tensor(run[BASELINE](images))
            int8 = torch.as_tensor(run["int8 (ours)"](images))
        agreement = float((reference.argmax(1) == int8.argmax(1)).float().mean())
        for batch in BATCHES:
            times = measure(run, images, batch, args.rounds if batch == 1 else max(5, args.rounds // 3),
                            f"{name} batch {batch}: timing {len(run)} runners")
            base = statistics.median(times[BASELINE])
            results[name][f"batch {batch}"] = {
                k: {"ms_per_image": statistics.median(v), "ratio_to_ort_fp32": statistics.median(v) / base,
                    "q1_ms": float(np.percentile(v, 25)), "q3_ms": float(np.percentile(v, 75)), "rounds": len(v)}
                for k, v in times.items()}
            for k, r in results[name][f"batch {batch}"].items():
                print(f"{name:14s} batch {batch:2d}  {k:26s} {r['ms_per_image']:7.2f} ms/image  "
                      f"{r['ratio_to_ort_fp32']:5.2f}x ORT fp32", flush=True)
        results[name]["int8_top1_agreement_with_fp32"] = agreement
        print(f"{name:14s} int8 top-1 agrees with fp32 on {100 * agreement:.0f}% of {len(images)} images")

    out = Path(args.out)
    report = {
        "machine": {"cpu": platform.processor() or platform.machine(), "flags": cpu_flags(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                    "onnxruntime": ort.__version__, "python": platform.python_version(),
                    "load_average_1min_before_after": [load_before[0], os.getloadavg()[0]]},
        "input": "224x224, 32 Imagenette val images (torchvision preprocessing)",
        "int8": f"ONNX Runtime static QDQ, per-channel s8 weights, u8 activations, MinMax on "
                f"{sum(len(b) for b in batches)} Imagenette train images",
        "metric": "median ms per image over interleaved rounds; ratio to ONNX Runtime fp32 in the same rounds",
        "results": results,
    }
    write_text(out, json.dumps(report, indent=2))
    chart(results, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
