"""The paper's design-space exploration (Section 5 and 6): sweeps of SR, pct3x3 and bypass, on real data.

Every configuration is an ordinary `squeezenet train` run in its own folder (`Trial`), so a sweep is a list of
commands: trained by the workers of a study (`experiments.study`), resumed (a finished run is reused, an unfinished
one continues with --resume), or printed for a cluster scheduler (`dry_run`). Results are one table (CSV + JSON)
and Figure 3-style plots.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from squeezenet.atomic import write_text
from squeezenet.errors import ConfigError, SqueezeNetError
from squeezenet.formats.weights import load
from squeezenet.models.registry import create_model, model_config
from squeezenet.plotting import percent_axis, save, subplots
from squeezenet.signals import Stopped, die_with_parent

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
    image_size: int | None = None  # a search's sampled size; a sweep's comes with the training arguments
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.run_dir / "train.log"

    @property
    def done(self) -> bool:
        return (self.run_dir / DONE_FILE).is_file()

    def argv(self, data: str | Path, train_args: list[str]) -> list[str]:
        """The `squeezenet train` command of this trial: it continues the run if it was interrupted, and starts
        over one that died before its first checkpoint."""
        cmd = [sys.executable, "-m", "squeezenet", "train", "--model", self.model, "--data", str(data)]
        for k, v in self.overrides.items():
            cmd += [f"--{k.replace('_', '-')}", str(v)]
        cmd += [*train_args, *(["--image-size", str(self.image_size)] if self.image_size else []),
                "--out", str(self.run_dir)]
        if (self.run_dir / "checkpoint.pt").exists():
            cmd += ["--resume", str(self.run_dir)]
        elif (self.run_dir / "config.json").exists():
            cmd += ["--overwrite"]
        return cmd


def _number(key: str, v) -> float:
    try:
        return float(v)
    except ValueError:
        raise ConfigError(f"--values: {v!r} is not a number (the {key} sweep takes numbers)") from None


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
        combos = [{key: v if key == "bypass" else _number(key, v), **fixed} for v in (values or defaults)]
    else:
        raise ConfigError(f"unknown sweep {sweep!r}; choose one of sr, pct3x3, bypass, grid")
    trials = []
    for c in combos:
        cfg = model_config(model, **c)
        trials.append(trial_of(model, {"sr": cfg.sr, "pct3x3": cfg.pct3x3, "bypass": cfg.bypass}, runs))
    return trials


def trial_of(model: str, overrides: dict, runs: str | Path, image_size: int | None = None) -> Trial:
    """The trial of a configuration, named by its values (a sweep's: sr, pct3x3, bypass of v1.0, as before);
    an impossible configuration fails here, before anything runs."""
    create_model(model, **overrides)
    name = "_".join(f"{k}-{round(v, 4) if isinstance(v, float) else v}" for k, v in overrides.items())
    if model != "squeezenet1_0" or image_size or set(overrides) - {"sr", "pct3x3", "bypass"}:
        name = f"v{model.removeprefix('squeezenet')}_{name}" + (f"_{image_size}px" if image_size else "")
    return Trial(name, overrides, Path(runs) / name, model, image_size)


def check_reusable(trial: Trial, train_args: list[str]) -> None:
    """A finished run is reused only if it was trained with the same arguments (shared `runs` folders)."""
    done = json.loads((trial.run_dir / DONE_FILE).read_text())
    if done.get("train_args", train_args) != train_args:
        raise SqueezeNetError(f"{trial.run_dir} was trained with {shlex.join(done['train_args'])}, not "
                              f"{shlex.join(train_args)}: use another --runs folder")


def _wait_for_lock(run_dir: Path, timeout: float = 600) -> None:
    """Until no `train` holds the run's folder: the run of a killed worker checkpoints before it exits."""
    deadline = time.time() + timeout
    with open(run_dir / ".lock", "a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(handle, fcntl.LOCK_UN)
                return
            except BlockingIOError:
                if time.time() > deadline:
                    raise SqueezeNetError(f"{run_dir} is still being trained by another process") from None
                time.sleep(1)


def train_trial(trial: Trial, data: str | Path, train_args: list[str], threads: int, compress: bool = False) -> dict:
    """Train the trial (reusing it if finished, resuming it if not). The run stops with this process, even when
    it is killed: SIGTERM reaches it and it checkpoints (so a retry resumes it)."""
    if trial.done:
        check_reusable(trial, train_args)
        return {"name": trial.name, "ok": True, "reused": True}
    trial.run_dir.mkdir(parents=True, exist_ok=True)
    _wait_for_lock(trial.run_dir)
    start = time.time()
    cmds = [trial.argv(data, [*train_args, "--threads", str(threads)])]
    if compress:  # size only: Table 1's pruning profile and 6-bit sharing, no retraining
        cmds.append([sys.executable, "-m", "squeezenet", "compress", "--weights", str(trial.run_dir / MODEL_FILE),
                     "--out", str(trial.run_dir / "model.sqz")])
    with open(trial.log, "a") as log:
        for cmd in cmds:
            log.write("$ " + " ".join(cmd) + "\n")
            log.flush()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
            try:
                rc = proc.wait()
            except BaseException as e:  # a stop signal: the run checkpoints and exits
                if isinstance(e, Stopped):
                    proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=300)
                raise
            if rc != 0:
                return {"name": trial.name, "ok": False, "returncode": rc, "log": str(trial.log)}
    write_text(trial.run_dir / DONE_FILE, json.dumps({"name": trial.name, "overrides": trial.overrides,
                                                       "train_args": train_args,
                                                       "wall_seconds": round(time.time() - start, 1)}))
    return {"name": trial.name, "ok": True}


def dry_run(trials: list[Trial], data: str | Path, train_args: list[str]) -> str:
    """One shell line per unfinished trial, for a scheduler (Slurm array, Ray, a torchrun per job)."""
    return "\n".join(shlex.join(t.argv(data, train_args)) for t in trials if not t.done)


def _last_metrics(run_dir: Path) -> dict:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    rows = [json.loads(x) for x in lines if x.strip()]
    if not rows:
        raise SqueezeNetError(f"{run_dir}/metrics.jsonl is empty")
    return rows[-1] | {"train_seconds": round(sum(r.get("seconds", 0.0) for r in rows), 3), "epochs": len(rows)}


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
    """results.csv, results.json and figure.png (`plot_sweep`)."""
    out = Path(out)
    if not rows:
        raise SqueezeNetError(f"no finished configuration under {out}")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    write_text(out / "results.csv", buf.getvalue())
    write_text(out / "results.json", json.dumps(rows, indent=1))
    return [out / "results.csv", out / "results.json", plot_sweep(rows, out / "figure.png", title)]


def plot_sweep(rows: list[dict], png: Path, title: str) -> Path:
    """Top-1 and top-5 on their own axes (top-5 near 100% would flatten top-1). A numeric sweep (SR, pct3x3) is
    Figure 3: accuracy against model size, a line through points labelled by the swept value; a categorical one
    (bypass) has no order to draw a line along, so one bar per value, in the sweep's order, its size below."""
    varying = [k for k in ("sr", "pct3x3", "bypass") if len({r[k] for r in rows}) > 1]  # label by what is swept
    categorical = any(isinstance(rows[0][k], str) for k in varying)

    def label(r: dict) -> str:
        return ", ".join(str(r[k]) if categorical else f"{k} {r[k]}" for k in varying) or r["name"]

    fig, axes = subplots(1, 2, figsize=(10, 4), layout="constrained")
    for i, (ax, key) in enumerate(zip(axes, ("top1", "top5"), strict=True)):
        pts = [(r["bytes_fp32"] / 1e6, r[key], label(r)) for r in rows if r[key] is not None]
        if categorical:
            bars = ax.bar(range(len(pts)), [y for _, y, _ in pts], color=f"C{i}")
            ax.bar_label(bars, labels=[f"{y:.1%}" for _, y, _ in pts], fontsize=8)
            ax.set_xticks(range(len(pts)), [f"{lab}\n{mb:.2f} MB" for mb, _, lab in pts])
            ax.set(xlabel=f"{', '.join(varying)} (model size, fp32)")
        elif pts:
            pts.sort()
            ax.plot([x for x, _, _ in pts], [y for _, y, _ in pts], marker="o", color=f"C{i}",
                    ls="-" if len(varying) == 1 else "none")  # a grid (SR x pct3x3) has no one line
            for x, y, lab in pts:
                ax.annotate(lab, (x, y), fontsize=7, xytext=(3, -9), textcoords="offset points")
            ax.set(xlabel="model size (MB, fp32)")
            ax.margins(x=0.12)  # room for the last point's label
        ax.set(ylabel=f"validation {key.replace('top', 'top-')} accuracy")
        percent_axis(ax)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return save(fig, png)
