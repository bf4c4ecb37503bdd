"""Where a benchmark writes by default: a new file under results/benchmarks/, never over a committed result.

The committed figures are refreshed on purpose, by passing their path to --out.
"""

from __future__ import annotations

import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results" / "benchmarks"


def default_out(name: str, suffix: str = ".json") -> str:
    """results/benchmarks/NAME-YYYYmmdd-HHMMSS.json, made unique with a counter if that exists."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path, n = RESULTS / f"{name}-{stamp}{suffix}", 1
    while path.exists():
        n += 1
        path = RESULTS / f"{name}-{stamp}-{n}{suffix}"
    return str(path)
