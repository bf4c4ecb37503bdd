"""The one matplotlib set-up: a headless backend, figures written atomically as PNG and closed."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

from squeezenet.atomic import atomic_path


def subplots(*args: Any, **kw: Any):
    """`plt.subplots` on the headless Agg backend (imported on first use: commands that draw nothing stay fast)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kw)


def save(fig, path: str | Path, dpi: int = 110) -> Path:
    """Write `fig` to `path` atomically (no half-written PNG after a kill) and free it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def percent_axis(ax, axis: str = "y") -> None:
    """Show fractions (0..1, as every metric is stored) as percentages, the unit the tables and logs print, with
    as many decimals as the tick step needs (61%, 62%... or 93.5%, 94.0%...; matplotlib's own picks 61.0%)."""
    from matplotlib.ticker import FuncFormatter

    scale = getattr(ax, f"{axis}axis")
    scale.set_major_formatter(FuncFormatter(lambda x, pos: f"{100 * x:.{_decimals(scale.get_majorticklocs())}f}%"))


def _decimals(locs) -> int:
    """Decimals that write the step between ticks (in percent points) exactly, at most 3."""
    step = 100 * min((abs(b - a) for a, b in pairwise(locs)), default=1.0)
    d = 0
    while d < 3 and abs(step * 10**d - round(step * 10**d)) > 1e-6:
        d += 1
    return d


def integer_ticks(ax, axis: str = "x") -> None:
    """Ticks on whole numbers only (epochs): no 'epoch 2.5' on a short run. Call it after drawing: an axis spanning
    under 2 units (a 1-epoch run) is widened, else the locator falls back to fractional ticks."""
    from matplotlib.ticker import MaxNLocator

    lo, hi = getattr(ax, f"get_{axis}lim")()
    if hi - lo < 2:
        getattr(ax, f"set_{axis}lim")((lo + hi) / 2 - 1, (lo + hi) / 2 + 1)
    getattr(ax, f"{axis}axis").set_major_locator(MaxNLocator(integer=True))
