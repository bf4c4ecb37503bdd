"""Options that describe themselves: a dataclass field carrying its help, choices and range.

The command line is generated from the library's own dataclasses (`cli.generate`), so a flag's default, choices
and help cannot drift from the code that uses them, and the same bounds check a value from Python and from the
shell (`check`).
"""

from __future__ import annotations

import math
from dataclasses import MISSING, field, fields
from typing import Any

from squeezenet.errors import ConfigError


def option(default: Any = MISSING, *, help: str, choices: tuple | None = None, low: float | None = None,
           high: float | None = None, default_factory: Any = MISSING, cli: bool = True, recipe: bool = False):
    """A dataclass field with its description; `low`/`high` bound a number (inclusive), `recipe` marks a value a
    named recipe fills in, `cli=False` keeps it off the command line."""
    meta = {"help": help, "choices": choices, "low": low, "high": high, "cli": cli, "recipe": recipe}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def check_value(name: str, value: Any, meta: dict) -> None:
    """Raise ConfigError naming `name` when `value` is outside the field's choices or range (None passes)."""
    if value is None or not meta:
        return
    if meta.get("choices") is not None and value not in meta["choices"]:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, meta['choices']))}, got {value!r}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = meta.get("low"), meta.get("high")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f"in [{lo}, {hi}]" if lo is not None and hi is not None else (
                f">= {lo}" if lo is not None else f"<= {hi}")
            raise ConfigError(f"{name} must be {bounds}, got {value}")


def check(obj: Any) -> None:
    """Check every described field of a dataclass instance against its choices and range."""
    for f in fields(obj):
        check_value(f.name, getattr(obj, f.name), dict(f.metadata))
