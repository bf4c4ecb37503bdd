"""The decoded-image cache's folder: where it is, its cap, its entries (least recently used first), eviction, and
the temp files killed writers left. `cache` decodes into it."""

from __future__ import annotations

import json
import os
import re
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from squeezenet.atomic import alive
from squeezenet.errors import SqueezeNetError

STALE_TEMP_SECONDS = 3600  # a temp file without its writer's pid is abandoned after this long
_ENTRY = re.compile(r"(?P<stem>[0-9a-f]{16}-(?P<side>\d+)(?P<warp>-warp)?(?:-eval\d+)?)\.(?:npy|json)")
_TEMP = re.compile(r"\.(?:" + _ENTRY.pattern + r")\.(?:(?P<pid>\d+)\.)?[^.]+\.tmp")  # atomic_path's, pid optional


def cache_dir_default() -> Path:
    return Path(os.environ.get("SQUEEZENET_CACHE", Path.home() / ".cache" / "squeezenet"))


def max_cache_bytes() -> int:
    """The cap on the cache's total size: $SQUEEZENET_CACHE_MAX_GB, else 20 GB."""
    text = os.environ.get("SQUEEZENET_CACHE_MAX_GB", "20").strip()
    gb = float(text) if re.fullmatch(r"\d*\.?\d+|\d+\.", text) else 0.0
    if not gb > 0:
        raise SqueezeNetError(f"SQUEEZENET_CACHE_MAX_GB must be a positive number of GB, got {text!r}")
    return int(gb * 1e9)


@dataclass
class CacheEntry:
    """One slot of the cache; `root` and `images` are None when its meta is missing (an interrupted write)."""

    side: int
    warp: bool
    root: str | None
    images: int | None
    bytes: int
    last_used: float
    files: list[Path]


def cache_entries(cache_dir: str | Path | None = None) -> list[CacheEntry]:
    """The cache's entries, least recently used first (a hit touches the .json)."""
    base = Path(cache_dir) if cache_dir else cache_dir_default()
    groups: dict[str, list[Path]] = {}
    for p in sorted(base.iterdir()) if base.is_dir() else []:
        if m := _ENTRY.fullmatch(p.name):
            groups.setdefault(m["stem"], []).append(p)
    entries = []
    for stem, files in groups.items():
        meta: dict = {}
        with suppress(OSError, ValueError):  # no meta: an interrupted write, listed so that it can be evicted
            meta = json.loads((base / f"{stem}.json").read_text())
        try:
            stats = [f.stat() for f in files]
        except OSError:
            continue  # removed meanwhile
        m = _ENTRY.fullmatch(files[0].name)
        entries.append(CacheEntry(int(m["side"]), bool(m["warp"]), meta.get("root"), len(meta["labels"])
                                  if "labels" in meta else None, sum(st.st_size for st in stats),
                                  max(st.st_mtime for st in stats), files))
    return sorted(entries, key=lambda e: e.last_used)


def remove_temps(cache_dir: str | Path | None = None, stale_only: bool = True) -> int:
    """Remove the temp files that killed writers left behind (all of them if not `stale_only`); the bytes freed.

    A temp file naming its writer's pid is stale once that process is gone (however long a live decode takes);
    one without a pid once it is older than `STALE_TEMP_SECONDS`."""
    base = Path(cache_dir) if cache_dir else cache_dir_default()
    freed = 0
    for p in base.glob(".*.tmp") if base.is_dir() else []:
        m = _TEMP.fullmatch(p.name)
        with suppress(OSError):  # another process may remove it first
            st = p.stat()
            if m and (not stale_only or (not alive(int(m["pid"])) if m["pid"] else
                                         time.time() - st.st_mtime > STALE_TEMP_SECONDS)):
                p.unlink()
                freed += st.st_size
    return freed


def clear_cache(cache_dir: str | Path | None = None) -> tuple[int, int]:
    """Remove every entry and temp file of the cache: (entries removed, bytes freed)."""
    entries = cache_entries(cache_dir)
    for f in [f for e in entries for f in e.files]:
        f.unlink(missing_ok=True)
    return len(entries), sum(e.bytes for e in entries) + remove_temps(cache_dir, stale_only=False)


def make_room(base: Path, need: int, max_bytes: int, what: str) -> tuple[int, int]:
    """Evict least recently used entries until `need` more bytes fit under `max_bytes`: (bytes the others
    keep, entries evicted). Raises, before any decoding, when the new entry alone is over the cap."""
    if need > max_bytes:
        raise SqueezeNetError(f"the decoded cache of {what} needs {need / 1e6:,.0f} MB, more than the cache's cap of "
                              f"{max_bytes / 1e6:,.0f} MB: raise it (SQUEEZENET_CACHE_MAX_GB="
                              f"{need / 1e9 + 0.1:.1f}) or use a smaller image size")
    remove_temps(base)
    entries = cache_entries(base)
    total, evicted = sum(e.bytes for e in entries), 0
    for e in entries:
        if total + need <= max_bytes:
            break
        for f in e.files:
            f.unlink(missing_ok=True)
        total, evicted = total - e.bytes, evicted + 1
    return total, evicted
