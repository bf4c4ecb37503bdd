"""Progress bars: tqdm on stderr with count, rate and time left; hidden when stderr is not a terminal (logs) and
with `squeezenet --quiet` ($SQUEEZENET_QUIET=1)."""

from __future__ import annotations

import os

from tqdm import tqdm


def quiet() -> bool:
    return os.environ.get("SQUEEZENET_QUIET", "") not in ("", "0")


def bar(iterable=None, *, disable: bool | None = None, **kw) -> tqdm:
    """A tqdm bar; `disable=None` means: shown on a terminal only."""
    return tqdm(iterable, disable=True if quiet() else disable, dynamic_ncols=True, **kw)
