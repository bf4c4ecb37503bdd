"""`squeezenet train`: the flags are `TrainConfig`'s fields, the recipes `RECIPES`' names."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from squeezenet.cli.common import add_fields, add_model_args, model_kwargs, values
from squeezenet.errors import SqueezeNetError

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
    add_fields(p, TrainConfig, unset=False)
    for a in p._actions:  # --data/--out are not needed with --resume: checked in run()
        a.required = False
    p.add_argument("--dropout", type=float, help="dropout before conv10; AlexNet: after fc6 and fc7 (paper: 0.5)")
    p.add_argument("--init", choices=sorted({*INIT_KINDS, *ALEXNET_INITS}),
                   help="weight initialization (SqueezeNet: paper or torchvision; AlexNet: paper or kaiming)")
    add_model_args(p)


def run(args: argparse.Namespace) -> int:
    from squeezenet.training.loop import train
    from squeezenet.training.recipes import TrainConfig, recipe_config

    if args.resume:
        cfg_file = Path(args.resume) / "config.json"
        if not cfg_file.is_file():
            raise SqueezeNetError(f"nothing to resume: {cfg_file} not found")
        cfg = TrainConfig.from_dict(json.loads(cfg_file.read_text()) | {"out": args.resume})
    else:
        if not args.data or not args.out:
            raise SqueezeNetError("train needs --data DIR and --out RUN_DIR (or --resume RUN_DIR)")
        overrides = model_kwargs(args) | {k: getattr(args, k) for k in ("dropout", "init")
                                          if getattr(args, k) is not None}
        overrides.pop("num_classes", None)
        options = values(args, TrainConfig)
        cfg = recipe_config(args.recipe, overrides, **options)
    print(json.dumps(train(cfg, resume=bool(args.resume), overwrite=args.overwrite)))
    return 0
