"""`squeezenet train`: the flags are `TrainConfig`'s fields, the recipes `RECIPES`' names."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from squeezenet.cli.common import add_fields, add_model_args, flag, model_kwargs, values
from squeezenet.errors import ConfigError, SqueezeNetError
from squeezenet.signals import Stopped

HELP = "train on an ImageNet-style folder (DIR/train, DIR/val); torchrun for DDP"
EXAMPLE = ("squeezenet train --model squeezenet1_1 --data ../shared/data/imagenette2 --out runs/v11 --epochs 20\n  "
           "squeezenet train --resume runs/v11")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from squeezenet.models.alexnet import INITS as ALEXNET_INITS
    from squeezenet.models.config import INIT_KINDS
    from squeezenet.training.recipes import RECIPES, TrainConfig

    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run (killed or not) from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="start again in a --out folder that holds a run")
    p.add_argument("--recipe", choices=list(RECIPES), help="named defaults: bn (SqueezeNet's default: BatchNorm, no "
                   "ReLU after conv10, lr 0.1, batch 128, label smoothing 0.1), no-final-relu, paper (as published; "
                   "stalls on Imagenette), alexnet (AlexNet's default), transfer (--init-from's default: lr 0.01, "
                   "warm-up 0.2 epoch, no label smoothing, the weights' own resolution)")
    add_fields(p, TrainConfig, unset=True)  # None = not typed: a recipe or a resumed run's config.json fills it
    p.add_argument("--dropout", type=float, help="dropout before conv10; AlexNet: after fc6 and fc7 (paper: 0.5)")
    p.add_argument("--init", choices=sorted({*INIT_KINDS, *ALEXNET_INITS}),
                   help="weight initialization (SqueezeNet: paper or torchvision; AlexNet: paper or kaiming)")
    add_model_args(p)


# what --resume may change: how the run is executed, not what it computes
RESUME_FREE = ("threads", "cache_dir", "checkpoint_every", "max_steps")


def _check_resume_flags(args: argparse.Namespace, given: dict) -> None:
    """A resumed run is the run its config.json describes: a flag that would change it is refused, not ignored."""
    if given.get("out") not in (None, args.resume):
        raise SqueezeNetError(f"--resume {args.resume} and --out {given['out']}: give one run folder")
    changed = [k for k in given if k not in (*RESUME_FREE, "out")]
    changed += [k for k in ("recipe", "dropout", "init") if getattr(args, k) is not None] + list(model_kwargs(args))
    if changed:
        raise SqueezeNetError(f"--resume continues {args.resume} as its config.json says; "
                              f"{', '.join(flag(k) for k in changed)} would change it (a new run: --out NEW, "
                              f"--init-from {Path(args.resume) / 'model.safetensors'} to start from its weights)")


def run(args: argparse.Namespace) -> int:
    from squeezenet.formats.weights import parse_json
    from squeezenet.training.loop import train
    from squeezenet.training.recipes import TrainConfig, recipe_config
    from squeezenet.training.transfer import started_config

    given = values(args, TrainConfig)
    if args.resume:
        _check_resume_flags(args, given)
        cfg_file = Path(args.resume) / "config.json"
        if not cfg_file.is_file():
            raise SqueezeNetError(f"nothing to resume: {cfg_file} not found")
        saved = parse_json(cfg_file.read_bytes(), cfg_file)
        if not isinstance(saved, dict):
            raise SqueezeNetError(f"{cfg_file}: not a JSON object")
        try:
            cfg = TrainConfig.from_dict(saved | {"out": args.resume} | given)
        except (ConfigError, TypeError) as e:
            raise SqueezeNetError(f"{cfg_file}: {e}") from None
    else:
        if not args.data or not args.out:
            raise SqueezeNetError("train needs --data DIR and --out RUN_DIR (or --resume RUN_DIR)")
        overrides = model_kwargs(args) | {k: getattr(args, k) for k in ("dropout", "init")
                                          if getattr(args, k) is not None}
        overrides.pop("num_classes", None)
        cfg = recipe_config(args.recipe, overrides, **given)
        if cfg.init_from:
            cfg = started_config(cfg, given)
            if not args.recipe:
                print(_transfer_line(cfg), file=sys.stderr)
    started = time.time()
    try:
        last = train(cfg, resume=bool(args.resume), overwrite=args.overwrite)
    except (Stopped, KeyboardInterrupt) as e:
        raise _stopped(cfg, e, started, bool(args.resume)) from None
    print(_closing(cfg, last), file=sys.stderr)  # stdout keeps one JSON line per epoch, each printed once
    return 0


def _stopped(cfg, e: BaseException, started: float, resume: bool) -> BaseException:
    """Ctrl-C or SIGTERM at any point of a run, as one line: which checkpoint `--resume` continues from, if any.
    A stop between steps writes one and says so; one while the images decode, or a second signal, writes none."""
    from squeezenet.training.checkpoint import CHECKPOINT

    if isinstance(e, Stopped) and e.explained:
        return e
    signum = getattr(e, "signum", signal.SIGINT)
    name, ckpt = signal.Signals(signum).name, Path(cfg.out) / CHECKPOINT
    if ckpt.is_file() and (resume or ckpt.stat().st_mtime >= started):  # not one of the run --overwrite replaces
        when = time.strftime("%H:%M:%S", time.localtime(ckpt.stat().st_mtime))
        return Stopped(signum, f"stopped by {name}: no checkpoint written since {ckpt} at {when}; "
                       f"`squeezenet train --resume {cfg.out}` continues from it")
    return Stopped(signum, f"stopped by {name} before the run's first checkpoint: nothing to resume, run the same "
                   "command again")


def _transfer_line(cfg) -> str:
    frozen = ", features frozen" if cfg.freeze_features else ""
    return (f"transfer from {cfg.init_from} ({cfg.model}): recipe transfer, lr {cfg.lr:g}, warm-up "
            f"{cfg.warmup_epochs:g} epoch, batch {cfg.batch_size}, label smoothing {cfg.label_smoothing:g}, "
            f"{cfg.image_size} px crops{frozen} (flags override; --recipe bn for training from scratch's)")


def _closing(cfg, last: dict) -> str:
    """Where the weights are and which figure they carry: the last epoch's, or none when --max-steps stopped
    the run mid-epoch (the weights are then newer than any validation)."""
    weights = Path(cfg.out) / "model.safetensors"
    figure = f"val top-1 {last['val_top1']:.2%}" if "val_top1" in last else "no val/ folder: not validated"
    if cfg.max_steps is not None and (not last or (last["epoch"] < cfg.epochs and last["step"] < cfg.max_steps)):
        seen = f"; epoch {last['epoch']} ended with {figure}" if last else ""
        return (f"stopped at step {cfg.max_steps} (--max-steps) before an epoch ended: {weights} holds that step's "
                f"weights{seen}; `squeezenet train --resume {cfg.out}` continues")
    return f"wrote {weights}: epoch {last['epoch']}, {figure}"
