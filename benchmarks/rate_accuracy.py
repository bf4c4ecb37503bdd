"""Rate-accuracy of the authors' ImageNet SqueezeNet v1.0 through our pipeline: bytes against top-1 on both sets.

One recipe for every point (exact Fisher-weighted, entropy-constrained clustering, rate-distortion optimised
assignment with zero as a level (`--rdo`), the centroids fine-tuned by distillation on Imagenette *train*, drawn
so that the uncompressed model's top-1 classes spread (`--balance`, results/compress/reconstruction.sh)), one
knob varied: the rate weight `--rate`, at 6 bits per weight, and at 7 for the top of the range (a point written
RATE@BITS). The fine-tuning trains the weights too (`--reassign`: straight through the quantizer, re-assigned
by the same rate-distortion cost at every step). Each point is also measured without the
fine-tuning (`untuned`), the comparison with NNCodec's points on equal terms (they are not fine-tuned either).
Each file is evaluated on imagenet-val-1300 and imagenet-sample-750 with Caffe's protocol, judged image by image
against the authors' 8-bit model over both sets pooled (`fidelity.compare`: agreement, paired difference with its
exact interval, KL), and its decode time measured. NNCodec's points (MPEG NNC's reference encoder) are measured in
the same run when `nncodec` imports; it does not here (it needs torchvision, which does not import beside torch
2.13), so the points recorded in ../shared/docs/paper-facts.md are drawn, labelled as recorded. Writes JSON + PNG.

    python benchmarks/rate_accuracy.py [--rates 5e-4 3e-3 1e-4@7 ...] [--tuned 5e-4 ...] [--work ../runs/rate] \
        [--out results/compress/rate_accuracy.json]
    python benchmarks/rate_accuracy.py --redraw results/compress/rate_accuracy.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import torch
from fresh import default_out
from timing import Load

from squeezenet.atomic import write_bytes, write_text
from squeezenet.compression.options import CompressOptions
from squeezenet.compression.pipeline import compress, reencode
from squeezenet.data.folders import list_samples
from squeezenet.formats import sqz
from squeezenet.formats.weights import load
from squeezenet.paths import shared_dir
from squeezenet.plotting import percent_axis, save, subplots
from squeezenet.training.evaluation import accuracy, scores
from squeezenet.training.fidelity import compare

SETS = ("imagenet-val-1300", "imagenet-sample-750")
# NNCodec 2.1.3, use_dq, no fine-tuning, on the authors' decoded weights (paper-facts.md): qp -> bytes, top-1 per set
NNCODEC_RECORDED = [{"qp": -38, "bytes": 478_463, "top1": {"imagenet-val-1300": 0.7131, "imagenet-sample-750": 0.5747}},
                    {"qp": -32, "bytes": 400_276, "top1": {"imagenet-val-1300": 0.7062, "imagenet-sample-750": 0.5680}},
                    {"qp": -28, "bytes": 345_472, "top1": {"imagenet-val-1300": 0.6938, "imagenet-sample-750": 0.5600}},
                    {"qp": -24, "bytes": 291_600, "top1": {"imagenet-val-1300": 0.5700, "imagenet-sample-750": 0.4307}}]
RECIPE = {"profile": "none", "init": "optimal", "rdo": True, "fisher_batches": 8, "train_limit": 2000,
          "finetune_epochs": 2, "lr_finetune": 5e-5, "reassign": True, "balance": True}
DEFAULT_POINTS = ["1e-4", "5e-4", "1.5e-3", "3e-3", "4e-3", "1e-2", "1e-4@7"]


def parse_point(text: str, bits: int = 6) -> tuple[float, int]:
    """'4e-3' -> (0.004, 6); '1e-4@7' -> (0.0001, 7)."""
    rate, _, b = text.partition("@")
    try:
        return float(rate), int(b) if b else bits
    except ValueError:
        raise argparse.ArgumentTypeError(f"a point is RATE or RATE@BITS, got {text!r}") from None


def measure(weights, sets: dict[str, Path]) -> tuple[dict, torch.Tensor, list[int]]:
    """Top-1/top-5 per set, and the logits and labels of every image of the sets pooled (for `fidelity.compare`)."""
    per, logits, labels = {}, [], []
    for s, d in sets.items():
        samples = list_samples(d, weights.class_ids or weights.classes)
        out = scores(weights.build(), samples, weights.preprocessing, progress=False)
        per[s] = {**accuracy(out, samples.labels), "images": len(samples)}
        logits.append(out)
        labels += samples.labels
    return per, torch.cat(logits), labels


def decode_ms(data: bytes, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        sqz.decode(data)
        best = min(best, time.perf_counter() - t)
    return 1000 * best


def point(name: str, data: bytes, sets: dict[str, Path], reference: tuple, extra: dict) -> dict:
    """A file's size, decode time, accuracy per set and fidelity to the reference over the sets pooled."""
    weights = sqz.decode(data).weights
    per, logits, labels = measure(weights, sets)
    row = {"name": name, "bytes": len(data), "decode_ms": decode_ms(data), **extra, "accuracy": per,
           "fidelity": compare(logits, reference[0], labels)}
    print(json.dumps(row), flush=True)
    return row


def ours(authors, rate: float, bits: int, train: Path, work: Path, tuned: bool = True) -> bytes:
    """The recipe at one rate (`tuned` False: without its fine-tuning). The file is kept in `work`, so that a rerun
    re-measures it without recompressing; it is re-encoded (losslessly, checked) by today's coders, so the bytes
    are this commit's."""
    untuned = {"finetune_epochs": 0, "reassign": False, "balance": False}
    opts = CompressOptions(**RECIPE | ({} if tuned else untuned), rate=rate, bits=bits)
    recipe = hashlib.sha256(json.dumps(opts.__dict__, sort_keys=True, default=str).encode()).hexdigest()[:8]
    path = work / f"rate{rate:g}-bits{bits}-{recipe}.sqz"  # a changed recipe is a new file
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(path, compress(authors, opts, train, log=lambda m: None).data)
    return reencode(sqz.decode(path.read_bytes()).weights, log=lambda m: None).data


def chart(result: dict, png: Path) -> None:
    """Top-1 against bytes on each set, and each file's top-1 agreement with the 8-bit model (sets pooled)."""
    fig, axes = subplots(1, 3, figsize=(16, 4.2), layout="constrained")
    for ax, s in zip(axes, SETS, strict=False):
        ref = result["reference"]["accuracy"][s]["top1"]
        for key, label, ls in (("ours", "ours (one recipe, --rate varied)", "-"),
                               ("untuned", "ours, not fine-tuned", ":")):
            pts = sorted((r["bytes"] / 1e3, r["accuracy"][s]["top1"]) for r in result.get(key, []))
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", ls=ls, label=label)
        nn = sorted((r["bytes"] / 1e3, r["top1"][s]) for r in result["nncodec"])
        ax.plot(*zip(*nn, strict=True), marker="s", ls="--", label=f"NNCodec ({result['nncodec_source']})")
        ax.axhline(ref, color="grey", lw=0.8, label=f"authors' 8-bit, {result['reference']['bytes'] / 1e3:.0f} KB")
        ax.axhspan(ref - (0.005 if s == SETS[0] else 0.01), ref, color="grey", alpha=0.12)
        ax.set(title=s, xlabel="file size (KB)", ylabel="top-1 accuracy")
        percent_axis(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax = axes[2]
    for key, label, ls in (("ours", "ours", "-"), ("untuned", "ours, not fine-tuned", ":")):
        pts = sorted((r["bytes"] / 1e3, r["fidelity"]["agreement"]) for r in result.get(key, []) if "fidelity" in r)
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", ls=ls, label=label)
    ax.set(title=f"agreement with the 8-bit model ({result.get('fidelity_images', 0):,} images)",
           xlabel="file size (KB)", ylabel="top-1 agreement")
    percent_axis(ax)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    fig.suptitle("SqueezeNet v1.0 (ImageNet): rate against accuracy")
    save(fig, png)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=parse_point, nargs="+", default=[parse_point(p) for p in DEFAULT_POINTS],
                    metavar="RATE[@BITS]", help=f"the points, 6 bits unless given (default: "
                    f"{' '.join(DEFAULT_POINTS)})")
    ap.add_argument("--tuned", type=parse_point, nargs="*", metavar="RATE[@BITS]", help="the points also "
                    "fine-tuned (default: all of --rates; about 10 minutes each here)")
    ap.add_argument("--work", default="../runs/rate", help="where the .sqz files are kept (reused when present)")
    ap.add_argument("--out", default=default_out("rate_accuracy"), help="output JSON (default: a new file)")
    ap.add_argument("--redraw", metavar="JSON", help="measure nothing: draw this JSON's figure beside it")
    args = ap.parse_args()
    if args.redraw:
        if not Path(args.redraw).is_file():
            ap.error(f"--redraw {args.redraw}: no such file")
        chart(json.loads(Path(args.redraw).read_text()), Path(args.redraw).with_suffix(".png"))
        return
    machine_load = Load()
    shared = shared_dir()
    sets = {s: shared / "data" / s for s in SETS}
    net = shared / "weights" / "deep-compression-squeezenet-v1.0" / "compressed_SqueezeNet.net"
    authors, work, train = load(net), Path(args.work), shared / "data" / "imagenette2" / "train"
    per, logits, labels = measure(authors, sets)
    ref = (logits, labels)
    result = {"recipe": RECIPE, "knob": "rate (and bits: RATE@BITS)", "nncodec_source": "recorded",
              "nncodec": NNCODEC_RECORDED, "fidelity_images": len(labels),
              "reference": {"name": "authors' 8-bit .net", "bytes": net.stat().st_size, "accuracy": per},
              "lossless": point("lossless re-encoding", reencode(authors, log=lambda m: None).data, sets, ref, {}),
              "untuned": [point(f"rate {r:g}, {b} bits, not fine-tuned", ours(authors, r, b, train, work, False),
                                sets, ref, {"rate": r, "bits": b}) for r, b in args.rates],
              "ours": [point(f"rate {r:g}, {b} bits", ours(authors, r, b, train, work), sets, ref,
                             {"rate": r, "bits": b}) for r, b in (args.rates if args.tuned is None else args.tuned)]}
    result["load_average"] = machine_load.record()  # the decode times' conditions
    out = Path(args.out)
    write_text(out, json.dumps(result, indent=1) + "\n")
    chart(result, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
