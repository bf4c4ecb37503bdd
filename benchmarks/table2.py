"""Table 2 measured here: sizes (bytes of real files) and ImageNet-subset accuracy, saved for the report.

    python benchmarks/table2.py --sqz6 MODEL.sqz [--data DIR ...]   (default: imagenet-val-1300, imagenet-sample-750)

writes results/compress/table2.json, which `squeezenet reproduce` lays beside the paper's Table 2.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from fresh import default_out
from table2_rows import authors_rows

from squeezenet.atomic import write_text
from squeezenet.paths import shared_dir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sqz6", help="our 6-bit .sqz (default: re-cluster the authors' model now, no fine-tuning)")
    data = shared_dir() / "data"
    ap.add_argument("--data", nargs="+", default=[str(data / "imagenet-val-1300"), str(data / "imagenet-sample-750")])
    ap.add_argument("--limit", type=int, help="a class-balanced sample of N images of each set")
    ap.add_argument("--out", default=default_out("table2"),
                    help="output JSON (default: a new file under results/benchmarks/)")
    args = ap.parse_args()
    rows = authors_rows(val_dirs=args.data, sqz6=args.sqz6, limit=args.limit)
    for r in rows:
        acc = "  ".join(f"{name} {100 * a['top1']:.2f}% / {100 * a['top5']:.2f}%" for name, a in r["accuracy"].items())
        print(f"{r['network']:<11}{r['compression']:<66}{r['data_type']:<7}{r['bytes']:>12,}"
              f"{r['vs_alexnet']:>7.0f}x  {acc}")
    result = {"command": "python benchmarks/table2.py " + shlex.join(sys.argv[1:]),
              "data": ", ".join(f"{Path(d).name} ({f'{args.limit} images' if args.limit else 'all images'})"
                                for d in args.data), "rows": rows}
    write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
