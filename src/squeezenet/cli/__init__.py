"""The `squeezenet` command: parses arguments and calls the library, nothing more.

Every subcommand is a `_cmd_*` function; errors in the user's input (SqueezeNetError, ValueError, OSError)
become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from squeezenet.errors import SqueezeNetError


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump): 'squeezenet: error: ...', exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"squeezenet: error: {message} (see '{self.prog} --help')\n")


def add_model_args(p: argparse.ArgumentParser) -> None:
    """Metaparameter and variant overrides shared by summary, train and explore."""
    g = p.add_argument_group("architecture overrides (the paper's metaparameters and variants)")
    g.add_argument("--sr", type=float, help="squeeze ratio SR (v1.0: 0.125)")
    g.add_argument("--pct3x3", type=float, help="share of 3x3 filters in the expand layers (v1.0: 0.5)")
    g.add_argument("--base-e", type=int, help="expand filters of the first fire module (v1.0: 128)")
    g.add_argument("--incr-e", type=int, help="expand filters added every FREQ fire modules (v1.0: 128)")
    g.add_argument("--freq", type=int, help="fire modules between increments (v1.0: 2)")
    g.add_argument("--bypass", choices=["none", "simple", "complex"], help="bypass connections (Table 3)")
    g.add_argument("--num-classes", type=int, help="number of output classes")
    g.add_argument("--batch-norm", action="store_true", default=None, help="BatchNorm after every convolution")
    g.add_argument("--no-final-relu", dest="final_relu", action="store_false", default=None,
                   help="drop the ReLU after conv10")


def model_kwargs(args: argparse.Namespace) -> dict:
    keys = ("sr", "pct3x3", "base_e", "incr_e", "freq", "bypass", "num_classes", "batch_norm", "final_relu")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def _cmd_summary(args: argparse.Namespace) -> int:
    from squeezenet.models.registry import create_model
    from squeezenet.models.summary import format_table, summarize

    if args.weights:  # the architecture of a weights file; a .sqz file adds its compression table
        from squeezenet.compression.sizes import file_report, format_report
        from squeezenet.formats.sqz import is_sqz
        from squeezenet.formats.weights import load, resolve

        weights = load(args.weights)
        table = summarize(weights.build(), args.input_size)
        data = resolve(args.weights).read_bytes()
        if is_sqz(data):
            table["compression"] = file_report(data)
        print(json.dumps(table) if args.json else format_table(table) + (
            "\n\n" + format_report(table["compression"]) if "compression" in table else ""))
        return 0
    if args.model is None:
        raise SqueezeNetError("summary needs a MODEL name or --weights FILE")
    kw = model_kwargs(args)
    if args.model == "alexnet":
        kw = {k: v for k, v in kw.items() if k == "num_classes"} | {"image_size": args.input_size}
    table = summarize(create_model(args.model, **kw), args.input_size)
    print(json.dumps(table) if args.json else format_table(table))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import json as _json
    from pathlib import Path

    from squeezenet.training.loop import train
    from squeezenet.training.recipes import TrainConfig, recipe_config

    if args.resume:
        cfg_file = Path(args.resume) / "config.json"
        if not cfg_file.is_file():
            raise SqueezeNetError(f"nothing to resume: {cfg_file} not found")
        cfg = TrainConfig.from_dict(_json.loads(cfg_file.read_text()) | {"out": args.resume})
    else:
        if not args.data or not args.out:
            raise SqueezeNetError("train needs --data DIR and --out RUN_DIR (or --resume RUN_DIR)")
        overrides = model_kwargs(args) | {k: getattr(args, k) for k in ("dropout", "init") if getattr(args, k)
                                          is not None}
        overrides.pop("num_classes", None)
        keys = ("data", "out", "model", "epochs", "batch_size", "accum", "lr", "momentum", "weight_decay",
                "warmup_epochs", "label_smoothing", "image_size", "min_scale", "seed", "checkpoint_every",
                "cache_dir", "skip_bad", "init_from", "freeze_features", "threads", "max_steps")
        cfg = recipe_config(args.recipe, overrides, **{k: getattr(args, k) for k in keys})
    print(_json.dumps(train(cfg, resume=bool(args.resume))))
    return 0


def _cmd_explore(args: argparse.Namespace) -> int:
    from squeezenet.experiments import explore

    trials = explore.plan(args.sweep, args.out, args.values, args.model, args.runs)
    train_args = [a for k in ("epochs", "image_size", "batch_size", "lr", "seed", "cache_dir")
                  if getattr(args, k) is not None for a in (f"--{k.replace('_', '-')}", str(getattr(args, k)))]
    train_args += [a for extra in args.train_arg for a in extra.split()]
    if args.dry_run:
        print(explore.dry_run(trials, args.data, train_args))
        return 0
    failed = [r for r in explore.run(trials, args.data, train_args, args.workers, args.compress,
                                                threads=args.threads) if not r["ok"]]
    rows = explore.collect(trials)
    if rows:
        paths = explore.write_results(rows, args.out, f"{args.sweep} sweep ({args.model})")
        print(f"results: {', '.join(str(p) for p in paths)}")
    if failed:
        raise SqueezeNetError(f"{len(failed)} configuration(s) failed, first: {failed[0]['name']} "
                              f"(see {failed[0]['log']})")
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from squeezenet.experiments.report import write_report

    path = write_report(args.out, args.results)
    print(f"report written to {path}")
    return 0


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _cmd_convert(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from squeezenet.formats.safetensors import save
    from squeezenet.formats.weights import load

    weights = load(args.input, prototxt=args.prototxt)
    if args.image_size:
        weights = replace(weights, preprocessing=weights.preprocessing.at_size(args.image_size))
    save(weights, args.out)
    n = sum(t.numel() for t in weights.state_dict.values())
    print(f"read {args.input}: {weights.arch}, {weights.num_classes} classes, {n:,} parameters")
    if weights.meta.get("format") == "deep-compression":
        m = weights.meta
        print(f"deep compression file: {m['layers']} layers, {m['weights']:,} weights ({m['nonzero']:,} non-zero), "
              f"{m['biases']:,} biases, {m['bytes']:,} bytes consumed exactly")
    print(f"wrote {args.out}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from squeezenet.data.folders import list_samples
    from squeezenet.deploy.onnxruntime import open_model
    from squeezenet.training.evaluation import evaluate

    weights = open_model(args.weights, args.backend, args.int8, args.calibration, evaluation_data=args.data)
    samples = list_samples(args.data, classes=weights.class_ids).sample(args.limit)
    pre = weights.preprocessing
    if args.image_size and args.image_size != pre.crop_size:
        if weights.backend == "onnxruntime" or hasattr(weights.model, "image_size"):  # ONNX graph, AlexNet's fc6
            raise SqueezeNetError(f"{args.weights} takes {pre.crop_size} px inputs only, not --image-size "
                                  f"{args.image_size}")
        pre = pre.at_size(args.image_size)
    r = evaluate(weights.model, samples, pre, batch_size=args.batch_size,
                 workers=args.workers)
    if args.json:
        print(json.dumps({"weights": str(args.weights), "data": str(args.data), **r}))
    else:
        print(f"top-1 {100 * r['top1']:.2f}%  top-5 {100 * r['top5']:.2f}%  on {r['images']:,} images of "
              f"{r['classes']} classes ({r['preprocessing']}; {r['seconds']:.1f} s, {r['images_per_s']:.1f} images/s)")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from squeezenet.deploy.onnxruntime import open_model
    from squeezenet.training.evaluation import predict

    weights = open_model(args.weights, args.backend, args.int8, args.calibration)
    results = predict(weights.model, args.images, weights.preprocessing, weights.classes, top=args.top)
    if args.json:
        print(json.dumps({"weights": str(args.weights), "predictions": results}))
        return 0
    for r in results:
        print(r["file"])
        for t in r["top"]:
            print(f"  {100 * t['probability']:6.2f}%  {t['name']} ({t['index']})")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from squeezenet.deploy.export import export_model

    r = export_model(args.weights, args.out, args.int8, args.calibration, args.calibration_images, args.check_images)
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


def _add_backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["torch", "onnxruntime"],
                   help="runtime (default: torch for weights, onnxruntime for .onnx files)")
    p.add_argument("--int8", action="store_true", help="int8 on ONNX Runtime (calibrated now unless already int8)")
    p.add_argument("--calibration", metavar="DIR", help="int8 calibration images (default: shared Imagenette train)")


def _cmd_sensitivity(args: argparse.Namespace) -> int:
    from pathlib import Path

    from squeezenet.atomic import write_text
    from squeezenet.compression.prune import paper_names, plot_sensitivity, sensitivity
    from squeezenet.data.folders import list_samples
    from squeezenet.formats.weights import load
    from squeezenet.training.evaluation import scorer

    weights = load(args.weights)
    model = weights.build()
    score = scorer(list_samples(args.data, weights.class_ids), weights, args.limit)
    rows = sensitivity(model, score, tuple(args.densities))
    names = paper_names(model)
    for r in rows:
        r["name"] = names.get(r["layer"], r["layer"])
        print(f"{r['name']:<22}density {r['density']:.2f}  top-1 {r['score']:.2%}")
    out = Path(args.out)
    write_text(out / "sensitivity.json", json.dumps(rows, indent=1))
    print(f"written: {out / 'sensitivity.json'}, {plot_sensitivity(rows, out / 'sensitivity.png', names)}")
    return 0


def _cmd_compress(args: argparse.Namespace) -> int:
    from pathlib import Path

    from squeezenet.atomic import write_bytes
    from squeezenet.compression.options import CompressOptions
    from squeezenet.compression.pipeline import compress, default_profile, reencode
    from squeezenet.compression.sizes import format_report, report
    from squeezenet.data.folders import check_disjoint, list_samples, training_images
    from squeezenet.formats.safetensors import save
    from squeezenet.formats.weights import load
    from squeezenet.training.evaluation import scorer

    if args.no_quantize != args.out.endswith(".safetensors"):
        raise SqueezeNetError("--out: fp32 results (--no-quantize) are written as .safetensors, quantized ones as .sqz")
    eval_data = args.eval_data
    if eval_data is None and args.data and (Path(args.data) / "train").is_dir() and (Path(args.data) / "val").is_dir():
        eval_data = str(Path(args.data) / "val")  # a dataset root: learn from train/, measure on val/
    check_disjoint(training_images(args.data), eval_data)
    weights = load(args.weights)
    explicit = args.profile is not None or args.density or args.quality
    lossy = explicit or args.svd or args.no_quantize or args.bits is not None or args.data
    log = (lambda m: print(m, file=sys.stderr)) if args.json else print
    score = None
    if eval_data:
        samples = list_samples(eval_data, classes=weights.class_ids or weights.classes).sample(args.eval_limit)
        score = scorer(samples, weights)
        scored_on = f"{len(samples):,} images of {samples.num_classes_present} classes of {eval_data}"
    if args.lossless and lossy:
        raise SqueezeNetError("--lossless keeps every value: it takes no --data, pruning, --bits, --svd or "
                              "--no-quantize")
    if args.lossless or (not lossy and weights.codebooks):
        result = reencode(weights, score=score, log=log)
    else:
        profile = args.profile if explicit else default_profile(weights, args.svd)
        opts = CompressOptions(profile=None if profile == "none" else profile, density=args.density,
                               quality=args.quality, svd=args.svd, quantize=not args.no_quantize,
                               bits=args.bits or CompressOptions.bits, fc_bits=args.fc_bits, init=args.init,
                               rate=args.rate, retrain_epochs=args.retrain_epochs,
                               finetune_epochs=args.finetune_epochs, loss=args.loss, batch_size=args.batch_size,
                               train_limit=args.train_limit, gap_bits=args.gap_bits, lr_retrain=args.lr_retrain,
                               lr_finetune=args.lr_finetune, fisher_batches=args.fisher_batches)
        if score is None:
            print(f"warning: accuracy not measured: {'no --data, so ' if not args.data else ''}this setting loses "
                  "accuracy unseen (pass --data DIR with DIR/train and DIR/val, or --eval-data)", file=sys.stderr)
        result = compress(weights, opts, args.data, score=score, log=log)
    if result.data is None:
        save(result.weights, args.out)
    else:
        write_bytes(args.out, result.data)
    rep = report(result) | {"out": str(args.out)}
    scores = [s["score"] for s in result.stages if s.get("score") is not None]
    if scores:
        rep["accuracy"] = {"before": scores[0], "after": scores[-1], "data": scored_on}
    text = format_report(rep) + f"\nwritten to {args.out}"
    if scores:
        text += f"\ntop-1 before {scores[0]:.2%}, after {scores[-1]:.2%} ({scored_on})"
    print(json.dumps(rep) if args.json else text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from squeezenet import __version__
    from squeezenet.models.registry import list_models

    parser = _Parser(prog="squeezenet", description="SqueezeNet end to end: the model family, training, "
                     "Deep Compression, design-space exploration and deployment.")
    parser.add_argument("--version", action="version", version=f"squeezenet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("summary", help="per-layer table (Table 1) of any configuration")
    p.add_argument("model", nargs="?", choices=list_models(), metavar="MODEL",
                   help=f"one of: {', '.join(list_models())}")
    p.add_argument("--weights", help="summarize a weights file instead (.sqz: with its compression table)")
    p.add_argument("--input-size", type=int, default=224, help="square input side in pixels (default 224)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    add_model_args(p)
    p.set_defaults(func=_cmd_summary)

    p = sub.add_parser("train", help="train on an ImageNet-style folder (DIR/train, DIR/val); torchrun for DDP")
    p.add_argument("--model", default="squeezenet1_1", choices=list_models(), metavar="MODEL")
    p.add_argument("--data", help="folder with train/<class>/*.JPEG and val/<class>/*.JPEG")
    p.add_argument("--out", help="run folder: config.json, checkpoint.pt, metrics.jsonl, curves.png, model")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run (killed or not) from its last checkpoint")
    p.add_argument("--recipe", choices=["bn", "no-final-relu", "paper", "alexnet"],
                   help="bn (SqueezeNet's default): BatchNorm, no ReLU after conv10, lr 0.1, batch 128, label "
                   "smoothing 0.1; no-final-relu: the paper's net minus that ReLU; paper: as published (stalls on "
                   "Imagenette); alexnet (AlexNet's default): Kaiming init, lr 0.01, weight decay 5e-4")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, help="global batch per step, any number of processes")
    p.add_argument("--accum", type=int, help="gradient accumulation micro-batches (paper: 512 = 32 x 16)")
    p.add_argument("--lr", type=float)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, help="default 2e-4 (recipe alexnet: 5e-4)")
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--image-size", type=int, default=128, help="training crop side in pixels")
    p.add_argument("--min-scale", type=float, default=0.35, help="random resized crop: smallest area fraction")
    p.add_argument("--dropout", type=float, help="dropout before conv10, AlexNet: after fc6 and fc7 (paper: 0.5)")
    p.add_argument("--init", choices=["paper", "torchvision", "kaiming"],
                   help="weight initialization (SqueezeNet: paper or torchvision; AlexNet: paper or kaiming)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=0, help="also checkpoint every N steps")
    p.add_argument("--cache-dir", help="decoded-image cache (default $SQUEEZENET_CACHE or ~/.cache/squeezenet)")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable images with a warning")
    p.add_argument("--init-from", metavar="WEIGHTS", help="start from weights squeezenet.load reads")
    p.add_argument("--freeze-features", action="store_true", help="train conv10 only (with --init-from)")
    p.add_argument("--threads", type=int, help="torch threads per process (default: cores / processes)")
    p.add_argument("--max-steps", type=int, help="stop after this many steps (probes)")
    add_model_args(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("explore", help="design-space exploration: SR, pct3x3, bypass sweeps (Figure 3, Table 3)")
    p.add_argument("--sweep", required=True, choices=["sr", "pct3x3", "bypass", "grid"])
    p.add_argument("--data", required=True, help="folder with train/<class>/... and val/<class>/...")
    p.add_argument("--out", required=True, help="sweep folder: runs/<config>/, results.csv/json, figure.png")
    p.add_argument("--values", nargs="+", help="values of the swept metaparameter (default: the paper's)")
    p.add_argument("--runs", help="folder of the training runs (default OUT/runs); sweeps sharing it train a "
                   "configuration they have in common once")
    p.add_argument("--model", default="squeezenet1_0", choices=list_models(), metavar="MODEL",
                   help="base configuration (default squeezenet1_0, the paper's)")
    for flag, typ in (("--epochs", int), ("--image-size", int), ("--batch-size", int), ("--lr", float),
                      ("--seed", int)):
        p.add_argument(flag, type=typ, help="passed to every training run")
    p.add_argument("--cache-dir", help="decoded-image cache shared by the runs")
    p.add_argument("--train-arg", action="append", default=[], metavar="ARGS",
                   help="more `squeezenet train` arguments, e.g. --train-arg '--batch-norm'")
    p.add_argument("--workers", type=_positive_int, default=1, help="configurations trained at once (default 1)")
    p.add_argument("--threads", type=_positive_int, help="torch threads per run (default: cores / workers)")
    p.add_argument("--compress", action="store_true", help="also record each model's .sqz size (table1, 6 bit)")
    p.add_argument("--dry-run", action="store_true", help="print the training commands instead of running them")
    p.set_defaults(func=_cmd_explore)

    p = sub.add_parser("reproduce", help="write the report that reproduces the paper (the main job)")
    p.add_argument("--out", default="report", help="output folder (default ./report)")
    p.add_argument("--results", default="results", help="measured results to include (default ./results)")
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser("convert", help="save any weights the project reads (e.g. the authors' .net) as safetensors")
    p.add_argument("input", help="weights file: the authors' .net (prototxt beside it), .safetensors, ...")
    p.add_argument("--out", required=True, help="output .safetensors file")
    p.add_argument("--prototxt", help="the network's prototxt, if not the one beside a .net file")
    p.add_argument("--image-size", type=_positive_int, help="store the preprocessing at this input size (see "
                   "evaluate --image-size)")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("evaluate", help="top-1 / top-5 accuracy of weights on a folder of labelled images")
    p.add_argument("--weights", required=True, help="weights file (.net, .safetensors, ...)")
    p.add_argument("--data", required=True, help="ImageNet-style folder (<wnid>/*.JPEG) or a folder with labels.csv")
    p.add_argument("--limit", type=_positive_int, help="evaluate N images only: a seeded class-balanced sample")
    p.add_argument("--image-size", type=_positive_int, help="input size (resize and crop in the weights' ratio); a "
                   "net trained on random-resized crops is often best tested above its training size (FixRes)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="images per forward pass (default 32)")
    p.add_argument("--workers", type=int, default=1, choices=range(0, 17), metavar="N",
                   help="image decoding processes (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object (top1, top5 as fractions)")
    _add_backend_args(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("predict", help="the most probable classes of images")
    p.add_argument("weights", help="weights file (.net, .safetensors, .sqz, .onnx) or a bundled model: imagenette")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--top", type=_positive_int, default=5, help="classes to show per image (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_backend_args(p)
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("export", help="ONNX model (fp32 or int8) for fast CPU inference, checked against PyTorch")
    p.add_argument("weights", help="weights file (.net, .safetensors, .sqz, ...)")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="output format (onnx)")
    p.add_argument("--out", required=True, help="output .onnx file")
    p.add_argument("--int8", action="store_true", help="static int8 quantization (ONNX Runtime, per-channel)")
    p.add_argument("--calibration", metavar="DIR", help="int8 calibration images (default: shared Imagenette train)")
    p.add_argument("--calibration-images", type=_positive_int, default=300, metavar="N",
                   help="images used to calibrate int8 (default 300)")
    p.add_argument("--check-images", metavar="DIR", help="images of the parity check (default: Imagenette val)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("sensitivity", help="pruning sensitivity: accuracy against density, one layer at a time")
    p.add_argument("--weights", required=True, help="weights file (.net, .safetensors, .sqz) or bundled name")
    p.add_argument("--data", required=True, help="held-out labelled images (folder or labels.csv)")
    p.add_argument("--limit", type=_positive_int, default=500,
                   help="images scored per point, a seeded class-balanced sample (500)")
    p.add_argument("--densities", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.5, 0.7, 1.0])
    p.add_argument("--out", required=True, help="folder for sensitivity.json and sensitivity.png")
    p.set_defaults(func=_cmd_sensitivity)

    p = sub.add_parser("compress", help="Deep Compression: prune, retrain, quantize, entropy-code into a .sqz file "
                       "(AlexNet too; also SVD and pruning alone, as fp32)")
    p.add_argument("--weights", required=True, help="weights file (.net, .safetensors, .sqz)")
    p.add_argument("--data", help="training images for retraining/fine-tuning, or a dataset root (DIR/train is "
                   "learnt from, DIR/val measured on); never the evaluation images")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--profile", choices=["table1", "alexnet", "none"],
                   help="per-layer densities: table1 (SqueezeNet's default), alexnet (Han et al. 2015, AlexNet's "
                   "default), none (the default with --svd)")
    g.add_argument("--density", type=float, help="one global magnitude threshold keeping this fraction")
    g.add_argument("--quality", type=float, help="prune |w| < QUALITY x std(w) per layer (Han et al.)")
    p.add_argument("--svd", metavar="RANKS", help="factorise AlexNet's fc layers first: one rank for every fc layer "
                   "it shrinks (e.g. 256) or per layer (fc6=256,fc7=128); --retrain-epochs fine-tunes them")
    p.add_argument("--no-quantize", action="store_true",
                   help="stop before quantization: fp32 weights (pruned and/or factorised) to a .safetensors --out")
    p.add_argument("--bits", type=int, choices=range(1, 9), metavar="B", help="bits per weight (default 6)")
    p.add_argument("--lossless", action="store_true", help="re-encode the weights' own codebooks, every value kept "
                   "(the default for a Deep Compression .net or a .sqz when no --data and no setting is given)")
    p.add_argument("--fc-bits", type=int, choices=range(1, 9), metavar="B",
                   help="bits of the fully connected layers (default: --bits; Deep Compression's AlexNet: 8 and 5)")
    p.add_argument("--init", choices=["linear", "kmeans++", "density", "optimal"], default="linear",
                   help="k-means initialization (default linear; optimal: exact least squares by dynamic programming)")
    p.add_argument("--rate", type=float, default=0.0,
                   help="with --init optimal: entropy-constrained clustering, squared error traded for bits")
    p.add_argument("--retrain-epochs", type=float, default=0.0,
                   help="retraining after pruning (gradual, AGP) and/or SVD")
    p.add_argument("--finetune-epochs", type=float, default=0.0, help="centroid fine-tuning after quantization")
    p.add_argument("--fisher-batches", type=int, default=0,
                   help="weight the clustering by the Fisher information measured on N batches of --data")
    p.add_argument("--lr-retrain", type=float, default=1e-4, help="Adam learning rate of retraining (1e-4)")
    p.add_argument("--lr-finetune", type=float, default=3e-5, help="Adam learning rate of the centroids (3e-5)")
    p.add_argument("--loss", choices=["distill", "labels", "both"], default="distill",
                   help="soft targets from the uncompressed model (default), labels, or both")
    p.add_argument("--batch-size", type=_positive_int, default=32)
    p.add_argument("--train-limit", type=_positive_int, default=4000,
                   help="training images used, a seeded class-balanced sample (4000)")
    p.add_argument("--eval-data", help="held-out labelled images: top-1 is reported after every stage (default: "
                   "DIR/val when --data is a dataset root)")
    p.add_argument("--eval-limit", type=_positive_int, help="N evaluation images only (seeded, class-balanced)")
    p.add_argument("--gap-bits", type=int, choices=[0, 2, 3, 4, 5, 6, 7, 8],
                   help="relative index width (0: dense); default: the smallest per layer")
    p.add_argument("--out", required=True, help="output .sqz file (.safetensors with --no-quantize)")
    p.add_argument("--json", action="store_true", help="print one JSON object (keys layers, total_bytes, ...)")
    p.set_defaults(func=_cmd_compress)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SqueezeNetError, ValueError, OSError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"squeezenet: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("squeezenet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
