"""`squeezenet compress`: the flags are `CompressOptions`' fields; without data a weight-shared model is re-encoded
losslessly, and any setting that would lose accuracy unmeasured says so."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from squeezenet.cli.common import (
    add_fields,
    add_weights_arg,
    c_engine_flash,
    flash_line,
    positive_int,
    values,
    weights_of,
)
from squeezenet.errors import SqueezeNetError

HELP = "Deep Compression: prune, retrain, quantize, entropy-code into a .sqz file (AlexNet too; SVD, pruning alone)"
EXAMPLE = ("squeezenet compress --weights ../shared/weights/deep-compression-squeezenet-v1.0/compressed_SqueezeNet.net "
           "--out sq8.sqz\n  squeezenet compress --weights my.safetensors --profile table1 --data DIR "
           "--retrain-epochs 6 --finetune-epochs 2 --loss both --out my.sqz")
TARGETS = ["profile", "density", "quality"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from squeezenet.compression.options import CompressOptions

    add_weights_arg(p, "weights file (.net, .safetensors, .sqz) or a bundled model: imagenette")
    p.add_argument("--data", help="training images for retraining/fine-tuning, or a dataset root (DIR/train is "
                   "learnt from, DIR/val measured on); never the evaluation images")
    add_fields(p.add_mutually_exclusive_group(), CompressOptions, TARGETS, unset=True)
    others = [n for n in CompressOptions.__dataclass_fields__ if n not in TARGETS]
    add_fields(p.add_argument_group("compression options (defaults: the library's CompressOptions)"),
               CompressOptions, others, unset=True)
    p.add_argument("--lossless", action="store_true", help="re-encode the weights' own codebooks, every value kept "
                   "(the default for a Deep Compression .net or a .sqz when no --data and no setting is given)")
    p.add_argument("--eval-data", help="held-out labelled images: top-1 is reported after every stage (default: "
                   "DIR/val when --data is a dataset root)")
    p.add_argument("--eval-limit", type=positive_int, help="N evaluation images only (seeded, class-balanced)")
    p.add_argument("--out", required=True, help="output .sqz file (.safetensors with --no-quantize)")
    p.add_argument("--json", action="store_true", help="print one JSON object (keys layers, total_bytes, ...)")


def _options(args: argparse.Namespace, weights):
    from squeezenet.compression.options import CompressOptions
    from squeezenet.compression.pipeline import default_profile

    given = values(args, CompressOptions)
    explicit = any(k in given for k in TARGETS)
    profile = given.pop("profile", None) if explicit else default_profile(weights, given.get("svd"))
    return CompressOptions(**given | {"profile": None if profile == "none" else profile})


def run(args: argparse.Namespace) -> int:
    from squeezenet.atomic import write_bytes
    from squeezenet.compression.options import CompressOptions
    from squeezenet.compression.pipeline import compress, reencode
    from squeezenet.compression.sizes import format_report, report
    from squeezenet.data.folders import check_disjoint, list_samples, training_images
    from squeezenet.formats.safetensors import save
    from squeezenet.formats.weights import load
    from squeezenet.training.evaluation import scorer

    fp32 = args.quantize is False
    if not args.out.endswith(".safetensors" if fp32 else ".sqz"):
        raise SqueezeNetError(f"--out {args.out}: fp32 results (--no-quantize) are written as .safetensors, "
                              "quantized ones as .sqz")
    eval_data = args.eval_data
    if eval_data is None and args.data and (Path(args.data) / "train").is_dir() and (Path(args.data) / "val").is_dir():
        eval_data = str(Path(args.data) / "val")  # a dataset root: learn from train/, measure on val/
    check_disjoint(training_images(args.data), eval_data)
    weights = load(weights_of(args))
    lossy = bool(values(args, CompressOptions)) or args.data
    log = (lambda m: print(m, file=sys.stderr)) if args.json else print
    score = scored_on = None
    if eval_data:
        samples = list_samples(eval_data, classes=weights.class_ids or weights.classes).sample(args.eval_limit)
        score = scorer(samples, weights)
        scored_on = f"{len(samples):,} images of {samples.num_classes_present} classes of {eval_data}"
    if args.lossless and lossy:
        raise SqueezeNetError("--lossless keeps every value: it takes no --data and no compression option")
    if args.lossless or (not lossy and weights.codebooks):
        result = reencode(weights, score=score, log=log)
    else:
        opts = _options(args, weights)
        opts.validate()  # a bad combination fails before the warning below
        if score is None:
            print(f"warning: accuracy not measured: {'no --data, so ' if not args.data else ''}this setting loses "
                  "accuracy unseen (pass --data DIR with DIR/train and DIR/val, or --eval-data)", file=sys.stderr)
        result = compress(weights, opts, args.data, score=score, log=log)
    if result.data is None:
        save(result.weights, args.out)
    else:
        write_bytes(args.out, result.data)
    rep = report(result) | {"out": str(args.out)}
    flash = c_engine_flash(result.weights) if result.data is not None else None
    if flash is not None:
        rep["c_engine_flash"] = flash
    scores = [s["score"] for s in result.stages if s.get("score") is not None]
    if scores:
        rep["accuracy"] = {"before": scores[0], "after": scores[-1], "data": scored_on}
    text = format_report(rep) + (f"\n{flash_line(flash)}" if flash is not None else "") + f"\nwritten to {args.out}"
    if scores:
        text += f"\ntop-1 before {scores[0]:.2%}, after {scores[-1]:.2%} ({scored_on})"
    print(json.dumps(rep) if args.json else text)
    return 0
