"""`squeezenet explore`: the paper's sweeps as ordinary training runs."""

from __future__ import annotations

import argparse

from squeezenet.cli.common import positive_int
from squeezenet.errors import SqueezeNetError

HELP = "design-space exploration: SR, pct3x3, bypass sweeps (Figure 3, Table 3)"
EXAMPLE = "squeezenet explore --sweep sr --data ../shared/data/imagenette2 --out results/explore/sr --epochs 5"
PASSED = ("epochs", "image_size", "batch_size", "lr", "seed", "cache_dir")  # TrainConfig fields given to every run


def add_arguments(p: argparse.ArgumentParser) -> None:
    from squeezenet.cli.common import add_fields
    from squeezenet.experiments.explore import SWEEPS
    from squeezenet.models.registry import list_models
    from squeezenet.training.recipes import TrainConfig

    p.add_argument("--sweep", required=True, choices=[*SWEEPS, "grid"])
    p.add_argument("--data", required=True, help="folder with train/<class>/... and val/<class>/...")
    p.add_argument("--out", required=True, help="sweep folder: runs/<config>/, results.csv/json, figure.png")
    p.add_argument("--values", nargs="+", help="values of the swept metaparameter (default: the paper's)")
    p.add_argument("--runs", help="folder of the training runs (default OUT/runs); sweeps sharing it train a "
                   "configuration they have in common once")
    p.add_argument("--model", default="squeezenet1_0", choices=list_models(), metavar="MODEL",
                   help="base configuration, the paper's")
    add_fields(p.add_argument_group("passed to every training run"), TrainConfig, list(PASSED), unset=True)
    p.add_argument("--train-arg", action="append", default=[], metavar="ARGS",
                   help="more `squeezenet train` arguments, e.g. --train-arg '--batch-norm'")
    p.add_argument("--workers", type=positive_int, default=1, help="configurations trained at once")
    p.add_argument("--threads", type=positive_int, help="torch threads per run (default: cores / workers)")
    p.add_argument("--compress", action="store_true", help="also record each model's .sqz size (table1, 6 bit)")
    p.add_argument("--dry-run", action="store_true", help="print the training commands instead of running them")


def run(args: argparse.Namespace) -> int:
    from squeezenet.experiments import explore

    trials = explore.plan(args.sweep, args.out, args.values, args.model, args.runs)
    train_args = [a for k in PASSED if getattr(args, k) is not None
                  for a in (f"--{k.replace('_', '-')}", str(getattr(args, k)))]
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
