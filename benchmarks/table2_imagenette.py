"""Table 2 on Imagenette: sizes (as the paper counts them) and top-1/top-5 of the AlexNet and SqueezeNet rows.

    python benchmarks/table2_imagenette.py --alexnet RUN/model.safetensors --svd alexnet-svd.safetensors \
        --pruned alexnet-pruned.safetensors --deep-compression alexnet-dc.sqz \
        --squeezenet RUN/model.safetensors --squeezenet-dc8 squeezenet-dc8.sqz --squeezenet-dc6 squeezenet-dc6.sqz

writes results/table2/table2.json, which `squeezenet reproduce` lays beside the paper's Table 2 (the commands
that make each file, in order, are results/table2/command.sh). Rows whose file is not given are left out.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from fresh import default_out
from table2_rows import measure

from squeezenet.atomic import write_text
from squeezenet.paths import shared_dir

ROWS = (("alexnet", "AlexNet", "none"), ("svd", "AlexNet", "SVD"), ("pruned", "AlexNet", "network pruning"),
        ("deep_compression", "AlexNet", "Deep Compression"), ("squeezenet", "SqueezeNet", "none"),
        ("squeezenet_dc8", "SqueezeNet", "Deep Compression"), ("squeezenet_dc6", "SqueezeNet", "Deep Compression"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for key, network, compression in ROWS:
        ap.add_argument(f"--{key.replace('_', '-')}", required=key == "alexnet", metavar="FILE",
                        help=f"{network}, compression {compression}")
    ap.add_argument("--data", default=str(shared_dir() / "data" / "imagenette2" / "val"))
    ap.add_argument("--limit", type=int, help="a random N of the images only")
    ap.add_argument("--out", default=default_out("table2_imagenette"),
                    help="output JSON (default: a new file under results/benchmarks/)")
    args = ap.parse_args()
    rows = measure([(n, c, getattr(args, k)) for k, n, c in ROWS if getattr(args, k)], args.data, args.limit)
    for r in rows:
        print(f"{r['network']:<11}{r['compression']:<18}{r['data_type']:<9}{r['bytes']:>13,}{r['vs_alexnet']:>7.1f}x"
              f"  {100 * r['top1']:.2f}% / {100 * r['top5']:.2f}%{r['nonzero']:>13,} non-zero "
              f"({r['nonzero_vs_alexnet']:.1f}x)")
    result = {"command": "python benchmarks/table2_imagenette.py " + shlex.join(sys.argv[1:]),
              "data": f"{'/'.join(Path(args.data).parts[-2:])} ({f'random {args.limit}' if args.limit else 'all'} "
                      "images)",
              "rows": rows}
    write_text(args.out, json.dumps(result, indent=1) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
