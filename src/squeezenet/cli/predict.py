"""`squeezenet predict`: the most probable classes of images, files, folders or glob patterns."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

from squeezenet.cli.common import RUNNABLE, add_backend_args, positive_int

HELP = "the most probable classes of images (files, folders, glob patterns)"
EXAMPLE = ("squeezenet predict imagenette photo.jpg --top 3\n  "
           "squeezenet predict imagenette 'photos/**/*.jpg' --out preds.csv")
FORMATS = ("text", "json", "csv")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("weights_pos", metavar="WEIGHTS", nargs="?",
                   help=RUNNABLE)
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files, folders (searched recursively) or "
                   "glob patterns (quoted: 'dir/**/*.jpg')")
    p.add_argument("--weights", help="the weights, as a flag (then every positional argument is an image)")
    p.add_argument("--top", type=positive_int, default=5, help="classes to show per image")
    p.add_argument("--format", choices=FORMATS, help="output format (default: from --out's suffix, else text)")
    p.add_argument("--json", action="store_true", help="the same as --format json")
    p.add_argument("--out", metavar="FILE", help="write the predictions to FILE (.csv or .json) instead of stdout")
    add_backend_args(p)


def _csv(results: list[dict]) -> str:
    """One row per (image, rank): file, rank, index, name, probability."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "rank", "index", "name", "probability"])
    for r in results:
        for k, t in enumerate(r["top"], 1):
            w.writerow([r["file"], k, t["index"], t["name"], f"{t['probability']:.6f}"])
    return buf.getvalue()


def _text(results: list[dict]) -> str:
    return "".join(f"{r['file']}\n" + "".join(f"  {100 * t['probability']:6.2f}%  {t['name']} ({t['index']})\n"
                                              for t in r["top"]) for r in results)


def _format(args: argparse.Namespace) -> str:
    from squeezenet.errors import SqueezeNetError

    fmt = "json" if args.json else args.format
    if args.out:
        suffix = Path(args.out).suffix.lower().lstrip(".")
        if suffix not in ("csv", "json"):
            raise SqueezeNetError(f"--out {args.out}: the suffix must be .csv or .json")
        if fmt and fmt != suffix:
            raise SqueezeNetError(f"--out {args.out} does not match --format {fmt}")
        return suffix
    return fmt or "text"


def run(args: argparse.Namespace) -> int:
    from squeezenet.atomic import write_text
    from squeezenet.data.folders import find_images
    from squeezenet.deploy.onnxruntime import open_model
    from squeezenet.errors import SqueezeNetError
    from squeezenet.training.evaluation import predict

    specs = list(args.images)
    if args.weights:
        source, specs = args.weights, ([args.weights_pos] if args.weights_pos else []) + specs
    else:
        source = args.weights_pos
    if not source or not specs:
        raise SqueezeNetError("predict needs WEIGHTS (or --weights FILE) and at least one IMAGE")
    fmt = _format(args)
    images = find_images(specs)
    weights = open_model(source, args.backend, args.int8, args.calibration)
    results = predict(weights.model, images, weights.preprocessing, weights.classes, top=args.top)
    text = {"json": lambda r: json.dumps({"weights": str(source), "predictions": r}) + "\n", "csv": _csv,
            "text": _text}[fmt](results)
    if args.out:
        write_text(args.out, text)
        print(f"wrote {len(results)} predictions to {args.out}")
    else:
        print(text, end="")
    return 0
