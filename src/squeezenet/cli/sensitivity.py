"""`squeezenet sensitivity`: accuracy against density, one layer pruned at a time (Deep Compression's Fig. 5)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from squeezenet.cli.common import add_weights_arg, positive_int, weights_of

HELP = "pruning sensitivity: accuracy against density, one layer at a time"
EXAMPLE = "squeezenet sensitivity --weights imagenette --data ../shared/data/imagenette2/val --limit 300 --out sens"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_weights_arg(p)
    p.add_argument("--data", required=True, help="held-out labelled images (folder or labels.csv)")
    p.add_argument("--limit", type=positive_int, default=500,
                   help="images scored per point, a seeded class-balanced sample")
    p.add_argument("--densities", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.5, 0.7, 1.0],
                   help="densities tried per layer")
    p.add_argument("--out", required=True, help="folder for sensitivity.json and sensitivity.png")


def run(args: argparse.Namespace) -> int:
    from squeezenet.atomic import write_text
    from squeezenet.compression.prune import plot_sensitivity, sensitivity
    from squeezenet.data.folders import list_samples
    from squeezenet.formats.weights import load
    from squeezenet.training.evaluation import scorer

    weights = load(weights_of(args))
    model = weights.build()
    score = scorer(list_samples(args.data, weights.class_ids), weights, args.limit)
    rows = sensitivity(model, score, tuple(args.densities))
    names = model.layer_names()
    for r in rows:
        r["name"] = names.get(r["layer"], r["layer"])
        print(f"{r['name']:<22}density {r['density']:.2f}  top-1 {r['score']:.2%}")
    out = Path(args.out)
    write_text(out / "sensitivity.json", json.dumps(rows, indent=1))
    print(f"written: {out / 'sensitivity.json'}, {plot_sensitivity(rows, out / 'sensitivity.png', names)}")
    return 0
