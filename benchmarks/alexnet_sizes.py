"""Why Table 2's AlexNet ratios depend on the input size and the number of classes: the same compression of an
untrained AlexNet at the paper's shape (227 px, 1000 classes) and at ours (128 px, 10 classes), sizes only.

    python benchmarks/alexnet_sizes.py

At 128 px fc6 takes 256*3*3 inputs instead of 256*6*6 and fc8 has 10 outputs, so the fully connected layers, the
ones Han et al. prune to 9-10% and quantize to 5 bits, hold a smaller share of the network: every ratio of
results/table2 is measured against a baseline with less to remove. Writes results/table2/alexnet_sizes.json.
"""

from __future__ import annotations

import argparse
import json

import torch
from fresh import default_out

from squeezenet.atomic import write_text
from squeezenet.compression.options import CompressOptions
from squeezenet.compression.pipeline import compress
from squeezenet.formats.weights import Weights
from squeezenet.models.preprocessing import preset
from squeezenet.models.registry import create_model

SHAPES = ((227, 1000), (128, 10))


def sizes(image_size: int, classes: int) -> dict:
    torch.manual_seed(0)
    model = create_model("alexnet", num_classes=classes, image_size=image_size, init="kaiming")
    names = [str(i) for i in range(classes)]
    w = Weights.from_model(model, names, preset("torchvision", image_size))
    fc = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    total = sum(p.numel() for p in model.parameters())
    row = {"image_size": image_size, "classes": classes, "params": total, "fc_share": fc / total}
    quiet = dict(log=lambda m: None)
    row["fp32"] = 4 * total
    row["svd"] = compress(w, CompressOptions(profile=None, svd="256", quantize=False), **quiet).bytes
    row["pruned"] = compress(w, CompressOptions(profile="alexnet", quantize=False), **quiet).bytes
    row["deep_compression"] = compress(w, CompressOptions(profile="alexnet", bits=8, fc_bits=5, init="optimal"),
                                       **quiet).bytes
    row |= {f"{k}_reduction": row["fp32"] / row[k] for k in ("svd", "pruned", "deep_compression")}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=default_out("alexnet_sizes"),
                    help="output JSON (default: a new file under results/benchmarks/)")
    args = ap.parse_args()
    rows = [sizes(s, c) for s, c in SHAPES]
    for r in rows:
        print(f"{r['image_size']} px, {r['classes']} classes: {r['params']:,} parameters ({100 * r['fc_share']:.0f}% "
              f"in fc); SVD {r['svd_reduction']:.1f}x, pruning {r['pruned_reduction']:.1f}x, Deep Compression "
              f"{r['deep_compression_reduction']:.1f}x")
    ratio = {k: rows[1][f"{k}_reduction"] / rows[0][f"{k}_reduction"] for k in ("svd", "pruned", "deep_compression")}
    print("ours / the paper's shape: " + ", ".join(f"{k} {v:.2f}" for k, v in ratio.items()))
    write_text(args.out, json.dumps({"command": "python benchmarks/alexnet_sizes.py", "rows": rows,
                                     "ratio_ours_to_paper_shape": ratio}, indent=1) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
