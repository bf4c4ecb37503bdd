"""`squeezenet export`: an ONNX file (fp32 or int8) checked against PyTorch on real images."""

from __future__ import annotations

import argparse
import json

from squeezenet.cli.common import add_weights_arg, positive_int, weights_of

HELP = "ONNX model (fp32 or int8) for fast CPU inference, checked against PyTorch"
EXAMPLE = "squeezenet export imagenette --out sq.int8.onnx --int8"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from squeezenet.deploy.int8 import CALIBRATION_IMAGES

    add_weights_arg(p)
    p.add_argument("--format", choices=["onnx"], default="onnx", help="output format")
    p.add_argument("--out", required=True, help="output .onnx file")
    p.add_argument("--int8", action="store_true", help="static int8 quantization (ONNX Runtime, per-channel)")
    p.add_argument("--calibration", metavar="DIR", help="int8 calibration images (default: shared Imagenette train)")
    p.add_argument("--calibration-images", type=positive_int, default=CALIBRATION_IMAGES, metavar="N",
                   help="images used to calibrate int8, a class-balanced sample")
    p.add_argument("--check-images", metavar="DIR", help="images of the parity check (default: Imagenette val)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from squeezenet.deploy.export import export_model
    from squeezenet.errors import SqueezeNetError

    if not args.out.lower().endswith(".onnx"):
        raise SqueezeNetError(f"--out {args.out}: the {args.format} format is written to a .onnx file")
    r = export_model(weights_of(args), args.out, args.int8, args.calibration, args.calibration_images,
                     args.check_images)
    if args.json:
        print(json.dumps(r))
        return 0
    print(f"ONNX opset {r['opset']}: max |logit difference| to PyTorch on {r['check_images']} images "
          f"{r['max_abs_diff']:.2e}")
    if args.int8:
        print(f"int8 (calibrated on {r['calibration_images']} images): top-1 agrees with fp32 on "
              f"{100 * r['int8_top1_agreement']:.1f}% of them, max |logit difference| {r['int8_max_abs_diff']:.3f}")
    print(f"wrote {r['out']} ({r['precision']}, {r['bytes']:,} bytes)")
    return 0
