"""`squeezenet evaluate`: top-1 / top-5 of any weights or ONNX file on a labelled folder, with its protocol."""

from __future__ import annotations

import argparse
import json

from squeezenet.cli.common import add_backend_args, add_weights_arg, positive_int, typed, weights_of
from squeezenet.errors import SqueezeNetError

HELP = "top-1 / top-5 accuracy of weights on a folder of labelled images"
EXAMPLE = "squeezenet evaluate --weights imagenette --data ../shared/data/imagenette2/val --limit 500"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_weights_arg(p)
    p.add_argument("--data", required=True, help="ImageNet-style folder (<wnid>/*.JPEG) or a folder with labels.csv")
    p.add_argument("--limit", type=positive_int, help="evaluate N images only: a seeded class-balanced sample")
    p.add_argument("--image-size", type=typed(int, "image_size", {"low": 16, "high": 1024}),
                   help="input size (resize and crop in the weights' ratio) [16..1024]; a net trained on "
                   "random-resized crops is often best tested above its training size (FixRes)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per forward pass")
    p.add_argument("--workers", type=int, default=1, choices=range(0, 17), metavar="N",
                   help="image decoding processes")
    p.add_argument("--json", action="store_true", help="print one JSON object (top1, top5 as fractions)")
    add_backend_args(p)


def run(args: argparse.Namespace) -> int:
    from squeezenet.data.folders import list_samples
    from squeezenet.deploy.onnxruntime import open_model
    from squeezenet.training.evaluation import evaluate

    source = weights_of(args)
    weights = open_model(source, args.backend, args.int8, args.calibration, evaluation_data=args.data)
    samples = list_samples(args.data, classes=weights.class_ids).sample(args.limit)
    pre = weights.preprocessing
    if args.image_size and args.image_size != pre.crop_size:
        if weights.backend != "torch" or weights.arch == "alexnet":  # an exported graph, AlexNet's fc6
            raise SqueezeNetError(f"{source} takes {pre.crop_size} px inputs only, not --image-size "
                                  f"{args.image_size}")
        pre = pre.at_size(args.image_size)
    r = evaluate(weights.model, samples, pre, batch_size=args.batch_size, workers=args.workers)
    if args.json:
        print(json.dumps({"weights": str(source), "data": str(args.data), **r}))
    else:
        print(f"top-1 {100 * r['top1']:.2f}%  top-5 {100 * r['top5']:.2f}%  on {r['images']:,} images of "
              f"{r['classes']} classes ({r['preprocessing']}; {r['seconds']:.1f} s, {r['images_per_s']:.1f} images/s)")
    return 0
