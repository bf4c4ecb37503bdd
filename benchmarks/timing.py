"""Speed figures that say how quiet the machine was: the load around a run, and interleaved rounds repeated until
each ratio to the peer is known to a stated precision.

A ratio taken within a round (every backend once, in turn) cancels what slows them all alike; its median over the
rounds comes with a 95% interval from the rounds' order statistics (exact, no resampling), and the rounds go on
until that interval is within --tolerance of the median, or --max-rounds. The 1-minute load average after a run
counts the run itself, so whether the machine was idle is judged from the CPU time other processes took during it.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Callable

import numpy as np

from squeezenet import progress

IDLE = 0.1  # the share of the cores other processes may take during a run that counts as idle
TOLERANCE = 0.03


def _busy_s() -> float | None:
    """CPU seconds the whole machine has been busy (steal included: a neighbour VM's), None without /proc/stat."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
    except OSError:
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


def _own_s() -> float:
    """CPU seconds of this process's threads and of its finished children (a C harness, DataLoader workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Load:
    """Started before a run, `record()` after it: the load averages and the CPU other processes took meanwhile."""

    def __init__(self) -> None:
        self.before, self.start, self.busy, self.own = os.getloadavg(), time.monotonic(), _busy_s(), _own_s()

    def record(self) -> dict:
        cores, busy = os.cpu_count() or 1, _busy_s()
        others = None if busy is None or self.busy is None else max(
            0.0, (busy - self.busy - _own_s() + self.own) / (time.monotonic() - self.start))
        return {"before": [round(v, 2) for v in self.before], "after": [round(v, 2) for v in os.getloadavg()],
                "cores": cores, "others_cores": None if others is None else round(others, 2),
                "idle": others is not None and others <= IDLE * cores,
                "idle_rule": f"other processes took at most {IDLE:g} x cores of CPU during the run (/proc/stat's busy "
                             "time, steal included, less this process's and its children's); load averages are "
                             "1, 5 and 15 min, the one after counts the run itself"}


def median_interval(x) -> list[float] | None:
    """A 95% interval of the median from the order statistics (how many values fall below the median is binomial,
    n and 1/2), None under 6 values, where none exists."""
    x, n = np.sort(np.asarray(x, float)), len(x)
    cdf = np.cumsum([math.comb(n, i) / 2**n for i in range(n + 1)])
    j = int(np.sum(cdf <= 0.025))
    return [float(x[j - 1]), float(x[n - j])] if j else None


def ratio(a, b, tolerance: float = TOLERANCE) -> dict:
    """The median over the rounds of a / b, each taken within its round, its 95% interval, and whether that is
    within `tolerance` of the median."""
    r = np.asarray(a, float) / np.asarray(b, float)
    med, ci = float(np.median(r)), median_interval(r)
    return {"median": med, "ci95": ci, "rounds": len(r),
            "stable": ci is not None and med * (1 - tolerance) <= ci[0] and ci[1] <= med * (1 + tolerance)}


def interleaved(one_round: Callable[[], dict[str, float]], pairs: list[tuple[str, str]], args: argparse.Namespace,
                desc: str, rounds: int | None = None, max_rounds: int | None = None
                ) -> tuple[dict[str, list[float]], dict[str, dict]]:
    """Calls `one_round` (a value per backend, the backends timed in turn) at least --rounds times and until the
    ratio "a / b" of every pair is stable, or --max-rounds (`rounds`, `max_rounds` override them); the values by
    backend and the pairs' ratios."""
    rounds, max_rounds = rounds or args.rounds, max_rounds or args.max_rounds
    values: dict[str, list[float]] = {}
    ratios: dict[str, dict] = {}
    for n in progress.bar(range(1, max(rounds, max_rounds) + 1), desc=desc, unit="round", leave=False):
        for k, v in one_round().items():
            values.setdefault(k, []).append(v)
        ratios = {f"{a} / {b}": ratio(values[a], values[b], args.tolerance) for a, b in pairs}
        if n >= rounds and all(r["stable"] for r in ratios.values()):
            break
    return values, ratios


def add_arguments(ap: argparse.ArgumentParser, rounds: int, max_rounds: int) -> None:
    ap.add_argument("--rounds", type=int, default=rounds,
                    help=f"interleaved timing rounds, at least ({rounds}; 6 at least for a 95%% interval)")
    ap.add_argument("--max-rounds", type=int, default=max_rounds,
                    help=f"rounds at most, while a ratio's 95%% interval is wider than --tolerance ({max_rounds})")
    ap.add_argument("--tolerance", type=float, default=TOLERANCE,
                    help=f"stop once every ratio's 95%% interval is within this fraction of its median ({TOLERANCE})")


def protocol(args: argparse.Namespace) -> dict:
    """The stopping rule of a run, for its JSON."""
    return {"rounds_at_least": args.rounds, "rounds_at_most": args.max_rounds, "tolerance": args.tolerance,
            "ratio": "median over the rounds of the ratio taken within each round; ci95: the 95% interval of that "
                     "median from the rounds' order statistics; stable: ci95 within tolerance of the median"}
