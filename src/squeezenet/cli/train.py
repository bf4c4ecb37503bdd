"""`squeezenet train`: the flags are `TrainConfig`'s fields, the recipes `RECIPES`' names."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from squeezenet.cli.common import add_fields, add_model_args, flag, model_kwargs, values
from squeezenet.errors import ConfigError, SqueezeNetError

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
                   "stalls on Imagenette), alexnet (AlexNet's default)")
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
    print(json.dumps(train(cfg, resume=bool(args.resume), overwrite=args.overwrite)))
    return 0
