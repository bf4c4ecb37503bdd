"""A search's result: the configurations no other beats on both accuracy and the device cost, as a table and a
figure with the paper's v1.0 and v1.1 marked."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from squeezenet.atomic import write_text
from squeezenet.experiments.device import STEMS
from squeezenet.plotting import percent_axis, save, subplots

PAPER = {"base_e": 128, "incr_e": 128, "freq": 2, "pct3x3": 0.5, "sr": 0.125, "bypass": "none"}


def front(rows: list[dict], cost: str) -> list[dict]:
    """The trained rows not dominated (another at least as accurate and as cheap, and better in one), by cost."""
    done = [r for r in rows if r["state"] == "complete"]
    return sorted((r for r in done if not any(
        o["top1"] >= r["top1"] and o[cost] <= r[cost] and (o["top1"] > r["top1"] or o[cost] < r[cost])
        for o in done)), key=lambda r: r[cost])


def reference(row: dict) -> str | None:
    """'v1.0' or 'v1.1' for the paper's own configurations."""
    if row.get("model") in STEMS and all(row.get(k) == v for k, v in PAPER.items()):
        return "v1.0" if row["model"] == STEMS[0] else "v1.1"
    return None


def _csv(rows: list[dict]) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def write(rows: list[dict], out: str | Path, cost: str, title: str, limit: int | None = None) -> list[Path]:
    """OUT/results.{csv,json} (every trial, excluded ones with the figure that excluded them), OUT/pareto.csv
    (the trained ones, the front first: `on_front` 1) and OUT/pareto.png."""
    out = Path(out)
    best = front(rows, cost)
    write_text(out / "results.csv", _csv(rows) if rows else "")
    write_text(out / "results.json", json.dumps(rows, indent=1))
    table = sorted((r for r in rows if r["state"] == "complete"), key=lambda r: (r not in best, r[cost]))
    write_text(out / "pareto.csv", _csv([r | {"on_front": int(r in best), "reference": reference(r) or ""}
                                         for r in table]) if table else "")
    return [out / "results.csv", out / "results.json", out / "pareto.csv", plot(rows, best, cost,
                                                                                out / "pareto.png", title, limit)]


def plot(rows: list[dict], best: list[dict], cost: str, png: Path, title: str, limit: int | None = None) -> Path:
    """Top-1 against the cost: every trained configuration, the front, the excluded ones in a row below the least
    accurate trained one (so that the trained ones keep the height; the paper's marked wherever they fell) and the
    limit on the cost."""
    fig, ax = subplots(1, 1, figsize=(7, 4.5), layout="constrained")
    done = [r for r in rows if r["state"] == "complete"]
    ax.scatter([r[cost] for r in done], [r["top1"] for r in done], s=18, color="C0", alpha=0.6,
               label=f"trained ({len(done)})")
    ax.step([r[cost] for r in best], [r["top1"] for r in best], where="post", color="C1", label="Pareto front")
    ax.scatter([r[cost] for r in best], [r["top1"] for r in best], s=30, color="C1", zorder=3)
    out = [r for r in rows if r["state"] == "pruned" and r[cost] is not None]
    foot = max(0.0, min(r["top1"] for r in done) - 0.04) if done else 0.0
    if out:
        ax.scatter([r[cost] for r in out], [foot] * len(out), marker="x", color="C3",
                   label=f"excluded before training ({len(out)})")
    for r in done + out:
        name = reference(r)
        if name:
            at = (r[cost], r["top1"] if r in done else foot)
            ax.annotate(name if r in done else f"{name} (excluded)", at, xytext=(4, 4), textcoords="offset points",
                        fontsize=9, weight="bold")
    if limit:
        ax.axvline(limit, color="C3", ls="--", lw=1, label=f"limit {limit:,}")
    ax.set(xlabel=cost if cost in ("macs", "params") else f"{cost} (bytes)", ylabel="validation top-1",
           title=title)
    ax.set_xscale("log")
    percent_axis(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, png)
