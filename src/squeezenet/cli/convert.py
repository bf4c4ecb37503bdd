"""`squeezenet convert`: any weights the project reads, saved as the project's safetensors."""

from __future__ import annotations

import argparse
from dataclasses import replace

from squeezenet.cli.common import add_weights_arg, positive_int, weights_of

HELP = "save any weights the project reads (e.g. the authors' .net) as safetensors"
EXAMPLE = "squeezenet convert ../shared/weights/deep-compression-squeezenet-v1.0/compressed_SqueezeNet.net " \
          "--out sq.safetensors"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_weights_arg(p, "weights file: the authors' .net (prototxt beside it), .safetensors, .sqz, or imagenette")
    p.add_argument("--out", required=True, help="output .safetensors file")
    p.add_argument("--prototxt", help="the network's prototxt, if not the one beside a .net file")
    p.add_argument("--image-size", type=positive_int, help="store the preprocessing at this input size (see "
                   "evaluate --image-size)")


def run(args: argparse.Namespace) -> int:
    from squeezenet.formats.safetensors import save
    from squeezenet.formats.weights import load

    source = weights_of(args)
    weights = load(source, prototxt=args.prototxt)
    if args.image_size:
        weights = replace(weights, preprocessing=weights.preprocessing.at_size(args.image_size))
    save(weights, args.out)
    print(f"read {source}: {weights.arch}, {weights.num_classes} classes, {weights.num_params:,} parameters")
    if weights.meta.get("format") == "deep-compression":
        m = weights.meta
        print(f"deep compression file: {m['layers']} layers, {m['weights']:,} weights ({m['nonzero']:,} non-zero), "
              f"{m['biases']:,} biases, {m['bytes']:,} bytes consumed exactly")
    print(f"wrote {args.out}")
    return 0
