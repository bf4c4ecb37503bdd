"""The one matplotlib set-up: a headless backend, figures written atomically as PNG and closed."""

from __future__ import annotations

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
