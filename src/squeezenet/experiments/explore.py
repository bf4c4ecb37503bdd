"""The paper's design-space exploration (Section 5 and 6): sweeps of SR, pct3x3 and bypass, on real data.

Every configuration is an ordinary `squeezenet train` run in its own folder, so a sweep is a list of commands:
run here (`workers` at a time), resumed (finished runs are skipped, unfinished ones continue with --resume), or
printed for a cluster scheduler (`dry_run`). Results are one table (CSV + JSON) and Figure 3-style plots.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from squeezenet.atomic import write_text
from squeezenet.errors import ConfigError, SqueezeNetError
from squeezenet.formats.weights import load
from squeezenet.models.registry import create_model, model_config
from squeezenet.plotting import save, subplots

# sweep -> (metaparameter, the paper's values, the other metaparameters held fixed)
SWEEPS: dict[str, tuple[str, tuple, dict]] = {
    "sr": ("sr", (0.125, 0.25, 0.5, 0.75, 1.0), {"pct3x3": 0.5}),
    "pct3x3": ("pct3x3", (0.01, 0.125, 0.25, 0.5, 0.75, 0.99), {"sr": 0.5}),
    "bypass": ("bypass", ("none", "simple", "complex"), {}),
}


DONE_FILE = "done.json"


MODEL_FILE = "model.safetensors"


@dataclass
class Trial:
    """One configuration of a sweep and the folder of its training run."""

    name: str
    overrides: dict
    run_dir: Path
    model: str = "squeezenet1_0"
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.run_dir / "train.log"

    @property
    def done(self) -> bool:
        return (self.run_dir / DONE_FILE).is_file()

    def argv(self, data: str | Path, train_args: list[str]) -> list[str]:
        """The `squeezenet train` command of this trial (continues the run if it was interrupted)."""
        cmd = [sys.executable, "-m", "squeezenet", "train", "--model", self.model, "--data", str(data)]
        for k, v in self.overrides.items():
            cmd += [f"--{k.replace('_', '-')}", str(v)]
        cmd += [*train_args, "--out", str(self.run_dir)]
        if (self.run_dir / "checkpoint.pt").exists():
            cmd += ["--resume", str(self.run_dir)]
        return cmd


def plan(sweep: str, out: str | Path, values: list | None = None, model: str = "squeezenet1_0",
         runs: str | Path | None = None) -> list[Trial]:
    """The trials of a sweep: 'sr', 'pct3x3', 'bypass' (the paper's values by default) or 'grid' (SR x pct3x3).

    A trial is named by its full (sr, pct3x3, bypass), so sweeps sharing a `runs` folder (default OUT/runs) train
    a configuration they have in common once: v1.0 is SR 0.125 in the SR sweep and 'none' in the bypass sweep.
    """
    runs = Path(runs) if runs else Path(out) / "runs"
    if sweep == "grid":
        srs, pcts = SWEEPS["sr"][1], SWEEPS["pct3x3"][1]
        combos = [{"sr": s, "pct3x3": p} for s in srs for p in pcts]
    elif sweep in SWEEPS:
        key, defaults, fixed = SWEEPS[sweep]
        parse = str if key == "bypass" else float
        combos = [{key: parse(v), **fixed} for v in (values or defaults)]
    else:
        raise ConfigError(f"unknown sweep {sweep!r}; choose one of sr, pct3x3, bypass, grid")
    trials = []
    for c in combos:
        create_model(model, **c)  # an impossible configuration fails here, before anything runs
        cfg = model_config(model, **c)
        full = {"sr": cfg.sr, "pct3x3": cfg.pct3x3, "bypass": cfg.bypass}
        name = "_".join(f"{k}-{v}" for k, v in full.items())
        trials.append(Trial(name, full, runs / name, model))
    return trials


def check_reusable(trial: Trial, train_args: list[str]) -> None:
    """A finished run is reused only if it was trained with the same arguments (shared `runs` folders)."""
    done = json.loads((trial.run_dir / DONE_FILE).read_text())
    if done.get("train_args", train_args) != train_args:
        raise SqueezeNetError(f"{trial.run_dir} was trained with {shlex.join(done['train_args'])}, not "
                              f"{shlex.join(train_args)}: use another --runs folder")


def _run_one(trial: Trial, data: str | Path, train_args: list[str], threads: int, compress: bool) -> dict:
    trial.run_dir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    cmds = [trial.argv(data, [*train_args, "--threads", str(threads)])]
    if compress:  # size only: Table 1's pruning profile and 6-bit sharing, no retraining
        cmds.append([sys.executable, "-m", "squeezenet", "compress", "--weights", str(trial.run_dir / MODEL_FILE),
                     "--out", str(trial.run_dir / "model.sqz")])
    with open(trial.log, "a") as log:
        for cmd in cmds:
            log.write("$ " + " ".join(cmd) + "\n")
            log.flush()
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
            if rc != 0:
                return {"name": trial.name, "ok": False, "returncode": rc, "log": str(trial.log)}
    write_text(trial.run_dir / DONE_FILE, json.dumps({"name": trial.name, "overrides": trial.overrides,
                                                       "train_args": train_args,
                                                       "wall_seconds": round(time.time() - start, 1)}))
    return {"name": trial.name, "ok": True}


def run(trials: list[Trial], data: str | Path, train_args: list[str], workers: int = 1, compress: bool = False,
        log=print, threads: int | None = None) -> list[dict]:
    """Train every unfinished trial, `workers` at a time, splitting the cores between them (or `threads` each)."""
    todo = [t for t in trials if not t.done]
    for t in trials:
        if t.done:
            check_reusable(t, train_args)
            log(f"skip {t.name}: finished")
    threads = threads or max(1, (os.cpu_count() or 1) // max(1, workers))
    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = list(pool.map(lambda t: _run_one(t, data, train_args, threads, compress), todo))
    for r in results:
        log(f"{r['name']}: done" if r["ok"] else f"{r['name']}: FAILED (exit {r['returncode']}), see {r['log']}")
    return results


def dry_run(trials: list[Trial], data: str | Path, train_args: list[str]) -> str:
    """One shell line per unfinished trial, for a scheduler (Slurm array, Ray, a torchrun per job)."""
    return "\n".join(shlex.join(t.argv(data, train_args)) for t in trials if not t.done)


def _last_metrics(run_dir: Path) -> dict:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(x) for x in lines if x.strip()]
    if not rows:
        raise SqueezeNetError(f"{run_dir}/metrics.jsonl is empty")
    return rows[-1] | {"train_seconds": round(sum(r.get("seconds", 0.0) for r in rows), 1), "epochs": len(rows)}


def _params(trial: Trial, classes: int) -> int:
    """The paper's count: convolutions only (not the BatchNorm of the bn recipe)."""
    return sum(p.numel() for p in create_model(trial.model, **trial.overrides, num_classes=classes).parameters())


def collect(trials: list[Trial]) -> list[dict]:
    """One row per finished trial: configuration, parameters (as trained, and with ImageNet's 1000 classes as in
    the paper's figures), fp32 bytes, top-1, top-5, training seconds."""
    rows = []
    for t in trials:
        if not t.done:
            continue
        m = _last_metrics(t.run_dir)
        classes = len(load(t.run_dir / MODEL_FILE).classes)
        params = {n: _params(t, n) for n in (classes, 1000)}
        row = {"name": t.name, "model": t.model, **{k: t.overrides.get(k, "") for k in ("sr", "pct3x3", "bypass")},
               "params": params[classes], "bytes_fp32": 4 * params[classes], "params_1000_classes": params[1000],
               "top1": m.get("val_top1"), "top5": m.get("val_top5"), "epochs": m["epochs"],
               "train_seconds": m["train_seconds"]}
        sqz = t.run_dir / "model.sqz"
        row["bytes_compressed"] = sqz.stat().st_size if sqz.is_file() else ""
        rows.append(row)
    return rows


def write_results(rows: list[dict], out: str | Path, title: str) -> list[Path]:
    """results.csv, results.json and a Figure 3-style plot (size vs accuracy, one labelled point per config)."""
    out = Path(out)
    if not rows:
        raise SqueezeNetError(f"no finished configuration under {out}")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    write_text(out / "results.csv", buf.getvalue())
    write_text(out / "results.json", json.dumps(rows, indent=1))
    fig, ax = subplots(figsize=(6, 4.2))
    xs = [r["bytes_fp32"] / 1e6 for r in rows]
    for key, marker in (("top1", "o"), ("top5", "s")):
        ys = [100 * r[key] for r in rows if r[key] is not None]
        if ys:
            ax.plot(xs[: len(ys)], ys, marker, ls="-", label=key.replace("top", "top-"))
    varying = [k for k in ("sr", "pct3x3", "bypass") if len({r[k] for r in rows}) > 1]  # label by what is swept
    for r, x in zip(rows, xs, strict=True):
        if r["top1"] is not None:
            label = ", ".join(f"{k} {r[k]}" for k in varying) or r["name"]
            ax.annotate(label, (x, 100 * r["top1"]), fontsize=7, xytext=(3, -9), textcoords="offset points")
    ax.set(xlabel="model size (MB, fp32)", ylabel="validation accuracy (%)", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    png = out / "figure.png"
    save(fig, png)
    return [out / "results.csv", out / "results.json", png]
