"""`squeezenet export`: an ONNX file (fp32 or int8) checked against PyTorch on real images, an OpenVINO IR, or the
C engine's library (for a Cortex-M4: a firmware project that `make` links and `make run` runs under QEMU)."""

from __future__ import annotations

import argparse
import json

from squeezenet.cli.common import add_weights_arg, byte_size, flash_line, positive_int, weights_of

HELP = "ONNX model (fp32 or int8) for fast CPU inference, checked against PyTorch"
EXAMPLE = "squeezenet export imagenette --out sq.int8.onnx --int8"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from squeezenet.deploy.int8 import CALIBRATION_IMAGES

    add_weights_arg(p)
    p.add_argument("--format", choices=["onnx", "openvino", "c"], default="onnx",
                   help="output format (openvino: IR; c: a dependency-free C99 library, weights kept compressed)")
    p.add_argument("--out", required=True, help="output .onnx file (openvino: .xml, its .bin beside it; c: a folder)")
    p.add_argument("--image-size", type=positive_int, help="c: the input size the library is built for (default: "
                   "the weights' own)")
    p.add_argument("--int8", action="store_true", help="static int8 quantization (ONNX Runtime, per-channel)")
    p.add_argument("--calibration", metavar="DIR", help="int8 calibration images (default: DATA/train of the "
                   "folder the weights were trained on, when here; else the shared Imagenette train)")
    p.add_argument("--calibration-images", type=positive_int, default=CALIBRATION_IMAGES, metavar="N",
                   help="images used to calibrate int8, a class-balanced sample")
    p.add_argument("--check-images", metavar="DIR", help="images of the parity check (default: DATA/val of the "
                   "folder the weights were trained on, when here; else the shared Imagenette val)")
    c = p.add_argument_group("C engine (--format c)")
    c.add_argument("--target", choices=["host", "cortex-m4"], default="host", help="host: the library; cortex-m4: "
                   "also a harness, startup code, linker script and Makefile (make; make run: QEMU)")
    c.add_argument("--images", nargs="+", default=[], metavar="FILE", help="cortex-m4: the images `make run` reads, "
                   "each already SIZE x SIZE (default: 4 of the check images, resized and cropped)")
    c.add_argument("--flash", type=byte_size, metavar="BYTES", help="cortex-m4: the part's flash (default: 1M)")
    c.add_argument("--ram", type=byte_size, metavar="BYTES", help="the RAM the model may use (cortex-m4 default: "
                   "256K, beside the stack and the scores; host: the arena, no limit)")
    c.add_argument("--plan", choices=["fit", "stream", "layers"], default="fit", help="memory plan: fit: the "
                   "fewest layers streamed row by row that fit --ram; stream: the smallest arena; layers: none")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from squeezenet.deploy.export import export_model
    from squeezenet.errors import SqueezeNetError

    if args.format == "c":
        return _run_c(args)
    if args.target != "host" or args.images or args.flash or args.ram or args.plan != "fit":
        raise SqueezeNetError("--target, --images, --flash, --ram and --plan are options of --format c")
    suffix = {"onnx": ".onnx", "openvino": ".xml"}[args.format]
    if not args.out.lower().endswith(suffix):
        raise SqueezeNetError(f"--out {args.out}: the {args.format} format is written to a {suffix} file")
    r = export_model(weights_of(args), args.out, args.int8, args.calibration, args.calibration_images,
                     args.check_images, args.format)
    if args.json:
        print(json.dumps(r))
        return 0
    print(f"ONNX opset {r['opset']}, checked on {r['check_images']} images of {r['check_folder']}: top-1 agrees "
          f"with PyTorch on {100 * r['top1_agreement']:.1f}%, max |logit difference| {r['max_abs_diff']:.2e}")
    if args.int8:
        print(f"int8, calibrated on {r['calibration_images']} images of {r['calibration_folder']}: top-1 agrees with "
              f"fp32 on {100 * r['int8_top1_agreement']:.1f}% of the check images, max |logit difference| "
              f"{r['int8_max_abs_diff']:.3f}")
    if "openvino_max_abs_diff" in r:
        print(f"OpenVINO: max |logit difference| to ONNX Runtime on the same images {r['openvino_max_abs_diff']:.2e}")
    print(f"wrote {r['out']} ({r['precision']}, {r['bytes']:,} bytes)")
    return 0


def _run_c(args: argparse.Namespace) -> int:
    from squeezenet.deploy.cengine.export import export_c

    r = export_c(weights_of(args), args.out, args.image_size, args.calibration, args.calibration_images,
                 args.check_images, args.target, args.images, args.flash, args.ram, args.plan)
    if args.json:
        print(json.dumps(r))
        return 0
    if r["clustered"]:
        print(f"warning: {len(r['clustered'])} layers had no codebook in the file and were clustered to 8 bits here")
    checked = "; the C's scores equal the reference's bit for bit" if r["c_checked"] else " (no C compiler here)"
    print(f"int8 engine at {r['image_size']} px, calibrated on {r['calibration_folder']}: top-1 agrees with fp32 on "
          f"{100 * r['top1_agreement_fp32']:.1f}% of {r['check_images']} images of {r['check_folder']}{checked}")
    print(f"wrote {r['out']}/: {flash_line(r['c_engine_flash'])} (file {r['file_bytes']:,}), "
          f"arena {r['arena']:,} bytes, fused max pools: {', '.join(r['fused']) or 'none'}")
    streamed = r["streamed"]
    print(f"memory plan: {f'{streamed[0]} to {streamed[-1]} streamed row by row' if streamed else 'layer by layer'}"
          + (", the rest layer by layer" if streamed and r["plan_rest"] else "")
          + (f" (--ram {r['ram_budget']:,})" if r["ram_budget"] else ""))
    if r["target"] == "cortex-m4":
        print(f"firmware: RAM {r['firmware_ram']:,} bytes (arena, scores, 8 KB stack), {r['board_images']} images; "
              f"make -C {r['out']} && make -C {r['out']} run")
    return 0
