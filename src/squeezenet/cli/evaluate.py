"""`squeezenet evaluate`: top-1 / top-5 of any weights or exported file on labelled folders, with its protocol and
backend; with `--reference`, how faithfully it reproduces another model image by image (`training.fidelity`)."""

from __future__ import annotations

import argparse
import json

from squeezenet.cli.common import RUNNABLE, add_backend_args, add_weights_arg, positive_int, typed, weights_of
from squeezenet.errors import SqueezeNetError

HELP = "top-1 / top-5 accuracy of weights on folders of labelled images, and fidelity to a reference model"
EXAMPLE = ("squeezenet evaluate --weights imagenette --data ../shared/data/imagenette2/val --limit 500\n  "
           "squeezenet evaluate --weights small.sqz --reference compressed_SqueezeNet.net --data imagenet-val-1300 "
           "imagenet-sample-750")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_weights_arg(p, RUNNABLE)
    p.add_argument("--data", required=True, nargs="+", metavar="DIR",
                   help="ImageNet-style folders (<wnid>/*.JPEG) or folders with labels.csv; several pool into one "
                   "figure")
    p.add_argument("--reference", metavar="WEIGHTS",
                   help="also run this model (any weights or exported file, on its default runtime) on the same "
                   "images and report agreement, the paired top-1 difference with its exact 95%% interval "
                   "(McNemar, Clopper-Pearson) and the KL divergence of its softmax to the weights'")
    p.add_argument("--limit", type=positive_int, help="evaluate N images of each folder: a seeded class-balanced "
                   "sample")
    p.add_argument("--image-size", type=typed(int, "image_size", {"low": 16, "high": 1024}),
                   help="input size (resize and crop in the weights' ratio) [16..1024]; a net trained on "
                   "random-resized crops is often best tested above its training size (FixRes)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per forward pass")
    p.add_argument("--workers", type=int, default=1, choices=range(0, 17), metavar="N",
                   help="image decoding processes")
    p.add_argument("--json", action="store_true", help="print one JSON object (top1, top5, agreement, "
                   "paired_difference, paired_ci95 as fractions; kl in nats)")
    add_backend_args(p)


def _samples(folders: list[str], class_ids, num_classes: int, limit: int | None):
    """The images of every folder, pooled (labels in the model's class order)."""
    from squeezenet.data.folders import Samples, list_samples

    parts = [list_samples(d, class_ids, num_classes).sample(limit) for d in folders]
    return Samples([p for s in parts for p in s.paths], [y for s in parts for y in s.labels], parts[0].classes)


def _scores(model, samples, size: int | None, args: argparse.Namespace, name: str):
    """(logits, preprocessing) of one model on the pooled images."""
    from squeezenet.training.evaluation import scores

    pre = model.preprocessing
    if size and size != pre.crop_size:
        if model.backend != "torch" or model.arch == "alexnet":  # an exported graph, AlexNet's fc6
            raise SqueezeNetError(f"{name} takes {pre.crop_size} px inputs only, not --image-size {size}")
        pre = pre.at_size(size)
    return scores(model.model, samples, pre, batch_size=args.batch_size, workers=args.workers), pre


def run(args: argparse.Namespace) -> int:
    import time

    from squeezenet.deploy.onnxruntime import open_model
    from squeezenet.training.evaluation import accuracy, figures
    from squeezenet.training.fidelity import compare

    source = weights_of(args)
    weights = open_model(source, args.backend, args.int8, args.calibration, evaluation_data=args.data)
    reference = open_model(args.reference) if args.reference else None
    if reference is not None and reference.class_ids != weights.class_ids:
        raise SqueezeNetError(f"--reference {args.reference} has other classes than {source} "
                              f"({len(reference.classes)} and {len(weights.classes)}): the two cannot be paired")
    samples = _samples(args.data, weights.class_ids, len(weights.classes), args.limit)
    start = time.perf_counter()
    logits, pre = _scores(weights, samples, args.image_size, args, str(source))
    seconds = time.perf_counter() - start
    r = {"weights": str(source), "data": args.data, "backend": weights.backend, "precision": weights.precision,
         **figures(logits, samples, pre, seconds)}
    if reference is not None:
        ref_logits, ref_pre = _scores(reference, samples, args.image_size, args, args.reference)
        r["reference"] = {"weights": args.reference, "backend": reference.backend, "precision": reference.precision,
                          **accuracy(ref_logits, samples.labels), "preprocessing": ref_pre.protocol}
        r |= compare(logits, ref_logits, samples.labels)
    if args.json:
        print(json.dumps(r))
        return 0
    print(_line(r, f"{r['backend']} {r['precision']}") + f" on {r['images']:,} images of {r['classes']} classes "
          f"({r['preprocessing']}; {r['seconds']:.1f} s, {r['images_per_s']:.1f} images/s)")
    if reference is not None:
        ref = r["reference"]
        low, high = r["paired_ci95"]
        print(_line(ref, f"reference {args.reference}, {ref['backend']} {ref['precision']}"))
        print(f"agreement {100 * r['agreement']:.2f}%  paired top-1 difference {100 * r['paired_difference']:+.2f} "
              f"points (95% CI {100 * low:+.2f} to {100 * high:+.2f}; {r['only_weights_right']} images only the "
              f"weights get right, {r['only_reference_right']} only the reference)  KL {r['kl']:.4f} nats")
    return 0


def _line(r: dict, what: str) -> str:
    top5 = f"  top-5 {100 * r['top5']:.2f}%" if r["top5"] is not None else ""
    return f"top-1 {100 * r['top1']:.2f}%{top5}  ({what})"
