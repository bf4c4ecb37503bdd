"""`squeezenet explore`: the paper's sweeps and a search for what fits a device, as Optuna studies that workers on
any number of machines share."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

from squeezenet.cli.common import byte_size, positive_int
from squeezenet.errors import SqueezeNetError

HELP = "design-space exploration: the paper's sweeps (Figure 3, Table 3) and searches for a device's budget"
EXAMPLE = ("squeezenet explore --sweep sr --data ../shared/data/imagenette2 --out results/explore/sr --epochs 5\n  "
           "squeezenet explore --search --objective ram --max-ram 64K --trials 16 --data DIR --out runs/search\n  "
           "squeezenet explore --worker --storage postgresql://me@db/explore --study search --data DIR --out runs")
PASSED = ("epochs", "image_size", "batch_size", "lr", "seed", "cache_dir")  # TrainConfig fields given to every run


def add_arguments(p: argparse.ArgumentParser) -> None:
    from squeezenet.cli.common import add_fields
    from squeezenet.experiments.device import OBJECTIVES, STEMS, Space
    from squeezenet.experiments.explore import SWEEPS
    from squeezenet.models.registry import list_models
    from squeezenet.training.recipes import TrainConfig

    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--sweep", choices=[*SWEEPS, "grid"], help="one of the paper's sweeps, enqueued")
    what.add_argument("--search", action="store_true", help="sample the space below for accuracy against --objective")
    what.add_argument("--worker", action="store_true", help="join the --study in --storage and train its next "
                      "configurations")
    p.add_argument("--data", required=True, help="folder with train/<class>/... and val/<class>/...")
    p.add_argument("--out", required=True, help="folder: runs/<config>/, results.csv/json, figures (and the "
                   "study's journal unless --storage)")
    p.add_argument("--storage", metavar="URL", help="where the study lives: postgresql://user@host/db (or "
                   "mysql://...) for many machines, or a journal file (default: OUT/study.journal)")
    p.add_argument("--study", help="the study's name (default: the sweep's, or 'search')")
    p.add_argument("--heartbeat", type=positive_int, default=20, metavar="SECONDS", help="database storage: a "
                   "trial's worker beats this often; after three missed beats another worker takes the trial over")
    p.add_argument("--trials", type=positive_int, help="search: configurations trained in all (default 16; those "
                   "over a limit are recorded, not counted); worker: at most this many")
    p.add_argument("--values", nargs="+", help="sweep: values of the swept metaparameter (default: the paper's)")
    p.add_argument("--runs", help="folder of the training runs (default OUT/runs); sweeps sharing it train a "
                   "configuration they have in common once")
    p.add_argument("--model", default="squeezenet1_0", choices=list_models(), metavar="MODEL",
                   help="sweep: the base configuration, the paper's")
    s = p.add_argument_group("search: the objective, the device's limits (checked before training) and the space")
    s.add_argument("--objective", choices=OBJECTIVES, default="ram", help="the cost minimised beside top-1")
    s.add_argument("--max-ram", type=byte_size, metavar="BYTES", help="firmware RAM (arena, scores, stack)")
    s.add_argument("--max-flash", type=byte_size, metavar="BYTES", help="firmware flash (estimate)")
    s.add_argument("--max-macs", type=positive_int, metavar="N", help="multiply-accumulates per image")
    d = Space()
    for name in ("base_e", "incr_e", "freq", "pct3x3", "sr"):
        kind = float if name in ("pct3x3", "sr") else int
        s.add_argument(f"--{name.replace('_', '-')}", nargs=2, type=kind, metavar=("LO", "HI"),
                       default=getattr(d, name), help=f"range of {name}")
    s.add_argument("--stems", nargs="+", choices=STEMS, default=list(d.stems), help="conv1 and pools of v1.0, v1.1")
    s.add_argument("--bypass", nargs="+", choices=["none", "simple", "complex"], default=list(d.bypass))
    s.add_argument("--sizes", nargs="+", type=positive_int, default=list(d.sizes), help="input sizes")
    add_fields(p.add_argument_group("passed to every training run"), TrainConfig, list(PASSED), unset=True)
    p.add_argument("--train-arg", action="append", default=[], metavar="ARGS",
                   help="more `squeezenet train` arguments, e.g. --train-arg '--batch-norm'")
    p.add_argument("--workers", type=positive_int, default=1, help="workers on this machine")
    p.add_argument("--threads", type=positive_int, help="torch threads per run (default: cores / workers)")
    p.add_argument("--compress", action="store_true", help="sweep: also record each model's .sqz size")
    p.add_argument("--dry-run", action="store_true", help="sweep: print the training commands instead")


def _space(args: argparse.Namespace, train_args: list[str]) -> dict:
    from dataclasses import fields

    from squeezenet.experiments import explore
    from squeezenet.experiments.device import Space
    from squeezenet.training.recipes import TrainConfig

    size = args.image_size or next(f.default for f in fields(TrainConfig) if f.name == "image_size")
    if args.sweep:
        trials = explore.plan(args.sweep, args.out, args.values, args.model, args.runs)
        return {"kind": "sweep", "sweep": args.sweep, "configurations": [{"model": t.model, **t.overrides}
                                                                         for t in trials],
                "objective": "params", "train_args": train_args, "image_size": size, "compress": args.compress}
    space = Space(**{k: tuple(getattr(args, k)) for k in ("base_e", "incr_e", "freq", "pct3x3", "sr", "stems",
                                                          "bypass", "sizes")})
    space.check()
    limits = {"ram": args.max_ram, "flash": args.max_flash, "macs": args.max_macs}
    return {"kind": "search", "space": space.as_dict(), "objective": args.objective, "trials": args.trials or 16,
            "limits": {k: v for k, v in limits.items() if v is not None}, "train_args": train_args,
            "image_size": space.sizes[0], "compress": False}


def run(args: argparse.Namespace) -> int:
    from squeezenet.experiments import explore, study

    train_args = [a for k in PASSED if getattr(args, k) is not None
                  for a in (f"--{k.replace('_', '-')}", str(getattr(args, k)))]
    train_args += [a for extra in args.train_arg for a in extra.split()]
    if args.worker and not args.study:
        raise SqueezeNetError("--worker needs --study NAME (and --storage, unless the study is OUT's journal)")
    space = None if args.worker else _space(args, train_args)
    if args.dry_run:
        if not args.sweep:
            raise SqueezeNetError("--dry-run prints a sweep's commands; a search decides as it goes")
        print(explore.dry_run(explore.plan(args.sweep, args.out, args.values, args.model, args.runs), args.data,
                              train_args))
        return 0
    store = study.storage(args.storage, args.out, args.heartbeat)
    name = args.study or (args.sweep or "search")
    s, space = study.open_study(store, name, space, args.seed or 0)
    if not args.worker:
        if space["kind"] == "search":
            study.check_limits(space, args.data)
        study.enqueue(s, space.get("configurations") or study.references(space))
    runs = args.runs or os.path.join(args.out, "runs")
    threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
    if args.workers > 1 and not args.worker:
        _workers(args, name, threads)
    else:
        study.work(s, space, args.data, runs, threads, args.trials if args.worker else None)
    for path in study.write_results(s, space, args.out, runs, name):
        print(f"wrote {path}")
    return 0


def _workers(args: argparse.Namespace, name: str, threads: int) -> None:
    """`--workers N`: N worker processes on this machine; a stop signal is passed on to them."""
    from squeezenet.signals import die_with_parent

    cmd = [sys.executable, "-m", "squeezenet", "explore", "--worker", "--study", name, "--data", args.data,
           "--out", args.out, "--threads", str(threads), "--heartbeat", str(args.heartbeat),
           *(["--storage", args.storage] if args.storage else []),
           *(["--runs", args.runs] if args.runs else [])]
    procs = [subprocess.Popen(cmd, preexec_fn=die_with_parent) for _ in range(args.workers)]
    try:
        codes = [p.wait() for p in procs]
    except BaseException:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=300)
        raise
    if any(codes):
        raise SqueezeNetError(f"{sum(1 for c in codes if c)} of {len(codes)} workers failed (exit {max(codes)})")
