"""`squeezenet cache`: what the decoded-image cache holds and how big it is, or clearing it (it grows to GBs)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = "list the decoded-image cache (source folder, size, last use) or clear it"
EXAMPLE = "squeezenet cache\n  squeezenet cache --clear --dir /scratch/cache"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clear", action="store_true", help="remove every entry and every leftover temporary file")
    p.add_argument("--dir", metavar="DIR", help="the cache folder (default: $SQUEEZENET_CACHE or "
                   "~/.cache/squeezenet; train's --cache-dir)")


def run(args: argparse.Namespace) -> int:
    from squeezenet.data.cache_store import cache_dir_default, cache_entries, clear_cache, max_cache_bytes

    base = Path(args.dir) if args.dir else cache_dir_default()
    if args.clear:
        n, freed = clear_cache(base)
        print(f"removed {n} entr{'y' if n == 1 else 'ies'} and leftovers ({freed / 1e6:,.0f} MB) from {base}")
        return 0
    entries = sorted(cache_entries(base), key=lambda e: -e.last_used)
    rows = [(e.root or f"? (incomplete: {e.files[0].name})", e.side, "warp" if e.warp else "shorter",
             "?" if e.images is None else f"{e.images:,}", f"{e.bytes / 1e6:,.1f}",
             time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))) for e in entries]
    width = max([len("source folder"), *(len(r[0]) for r in rows)])
    for r in [("source folder", "side", "mode", "images", "MB", "last used"), *rows] if rows else []:
        print(f"{r[0]:<{width}}  {r[1]:>4}  {r[2]:<7}  {r[3]:>9}  {r[4]:>9}  {r[5]}")
    total = sum(e.bytes for e in entries)
    print(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}, {total / 1e6:,.0f} MB of the "
          f"{max_cache_bytes() / 1e6:,.0f} MB cap ($SQUEEZENET_CACHE_MAX_GB) in {base}; "
          "clear: squeezenet cache --clear")
    return 0
