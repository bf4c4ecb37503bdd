"""`squeezenet predict`: the most probable classes of images."""

from __future__ import annotations

import argparse
import json

from squeezenet.cli.common import add_backend_args, positive_int

HELP = "the most probable classes of images"
EXAMPLE = "squeezenet predict imagenette photo.jpg --top 3"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("weights_pos", metavar="WEIGHTS", nargs="?",
                   help="weights file (.net, .safetensors, .sqz, .onnx) or a bundled model: imagenette")
    p.add_argument("images", nargs="*", metavar="IMAGE", help="image files")
    p.add_argument("--weights", help="the weights, as a flag (then every positional argument is an image)")
    p.add_argument("--top", type=positive_int, default=5, help="classes to show per image")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_backend_args(p)


def run(args: argparse.Namespace) -> int:
    from squeezenet.deploy.onnxruntime import open_model
    from squeezenet.errors import SqueezeNetError
    from squeezenet.training.evaluation import predict

    images = list(args.images)
    if args.weights:
        source, images = args.weights, ([args.weights_pos] if args.weights_pos else []) + images
    else:
        source = args.weights_pos
    if not source or not images:
        raise SqueezeNetError("predict needs WEIGHTS (or --weights FILE) and at least one IMAGE")
    weights = open_model(source, args.backend, args.int8, args.calibration)
    results = predict(weights.model, images, weights.preprocessing, weights.classes, top=args.top)
    if args.json:
        print(json.dumps({"weights": str(source), "predictions": results}))
        return 0
    for r in results:
        print(r["file"])
        for t in r["top"]:
            print(f"  {100 * t['probability']:6.2f}%  {t['name']} ({t['index']})")
    return 0
