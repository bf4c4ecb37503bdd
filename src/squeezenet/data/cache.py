"""The decoded-image cache: every image of a split decoded once into a memory-mapped uint8 array.

Training then does no JPEG work in its epochs (airbench-style); the cache is keyed by folder, side and resize
mode, and rebuilt when a file, its size or mtime changes. It grows to gigabytes: every write says where and how
big, the least recently used entries go to stay under $SQUEEZENET_CACHE_MAX_GB, `squeezenet cache` lists it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from squeezenet.atomic import atomic_path, write_text
from squeezenet.data.folders import Samples, open_image, to_rgb
from squeezenet.errors import SqueezeNetError
from squeezenet.models.preprocessing import resize_and_crop
from squeezenet.progress import bar as progress_bar

CACHE_VERSION = 1
STALE_TEMP_SECONDS = 3600  # a temp file without its writer's pid is abandoned after this long
_ENTRY = re.compile(r"(?P<stem>[0-9a-f]{16}-(?P<side>\d+)(?P<warp>-warp)?)\.(?:npy|json)")
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


def cache_side(image_size: int) -> int:
    """Side of the cached square: the crop size / 0.875, the usual resize-then-centre-crop ratio."""
    return int(round(image_size / 0.875))


@dataclass
class DecodedImages:
    """All images of a split decoded once to `side`x`side` uint8 RGB (NHWC), memory-mapped from the cache."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    skipped: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def side(self) -> int:
        return self.images.shape[1]


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


def _fingerprint(samples: Samples, side: int, warp: bool) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION} side={side} warp={warp} classes={samples.classes}".encode())
    for p, y in zip(samples.paths, samples.labels, strict=True):
        try:
            st = p.stat()
            h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}|{y}\n".encode())
        except OSError:
            h.update(f"{p}|missing|{y}\n".encode())
    return h.hexdigest()


def decode_square(path: str | Path, side: int, warp: bool = False) -> np.ndarray:
    """Resize the shorter side to `side` and centre-crop a square (`warp`: the whole image to `side` x `side`,
    Caffe's protocol); JPEG draft mode skips most of the work."""
    with open_image(path) as im:
        try:
            im.draft("RGB", (side, side))
            return np.asarray(resize_and_crop(to_rgb(im), side, side, warp), dtype=np.uint8)
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise SqueezeNetError(f"cannot read image {path}: {e}") from None


def _source_root(samples: Samples) -> str:
    return os.path.commonpath([str(p.resolve().parent) for p in samples.paths]) if samples.paths else "."


def decoded_cache_paths(samples: Samples, side: int, cache_dir: str | Path | None = None,
                        warp: bool = False) -> tuple[Path, Path]:
    """One cache slot per (source folder, side, resize mode): a changed source overwrites it instead of piling up."""
    name = hashlib.sha256(_source_root(samples).encode()).hexdigest()[:16] + f"-{side}" + ("-warp" if warp else "")
    base = Path(cache_dir) if cache_dir else cache_dir_default()
    return base / f"{name}.npy", base / f"{name}.json"


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


def _pid_alive(pid: int) -> bool:
    try:
        return os.kill(pid, 0) is None  # a PermissionError: another user's process, alive
    except ProcessLookupError:
        return False


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
            if m and (not stale_only or (not _pid_alive(int(m["pid"])) if m["pid"] else
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


def _make_room(base: Path, need: int, max_bytes: int, what: str) -> tuple[int, int]:
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


def _load_hit(npy: Path, meta_path: Path, fp: str, samples: Samples, skip_bad: bool) -> DecodedImages | None:
    """The cached split if its fingerprint matches, touched as used. An image an earlier `skip_bad` run left
    out is an error without `skip_bad`, as it would be when decoding."""
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("fingerprint") != fp or not npy.is_file():
        return None
    skipped = meta["skipped"]
    if skipped and not skip_bad:
        err = (meta.get("errors") or [f"cannot read image {skipped[0]}"])[0]
        more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
        raise SqueezeNetError(f"{err}{more}; an earlier run with --skip-bad left it out of the decoded cache: "
                              "pass --skip-bad again, or fix or remove the file")
    with suppress(OSError):  # a read-only cache still works, it only stops recording its use
        os.utime(meta_path)
    return DecodedImages(np.load(npy, mmap_mode="r"), np.asarray(meta["labels"], dtype=np.int64),
                         samples.classes, skipped)


def _create(tmp: Path, header: dict) -> int:
    """Write the .npy header and allocate the whole file before it is memory-mapped, so that a full disk is an
    error here and not a SIGBUS at the first row that finds no block: the data's offset."""
    size = int(np.prod(header["shape"]))
    try:
        with open(tmp, "r+b") as f:
            np.lib.format.write_array_header_1_0(f, header)
            if hasattr(os, "posix_fallocate"):  # not on macOS
                os.posix_fallocate(f.fileno(), 0, f.tell() + size)
            return f.tell()
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise SqueezeNetError(f"no space left in {tmp.parent} for the decoded cache's {size / 1e6:,.0f} MB: free "
                                  "some, choose another --cache-dir, or lower SQUEEZENET_CACHE_MAX_GB") from None
        raise


def _decode_into(tmp: Path, samples: Samples, side: int, warp: bool, skip_bad: bool,
                 progress: bool) -> tuple[list[int], list[str], list[str]]:
    """Decode every image into the .npy at `tmp`: (indices kept, paths skipped, their errors)."""
    n, row = len(samples), side * side * 3
    header = {"descr": "|u1", "fortran_order": False, "shape": (n, side, side, 3)}
    offset = _create(tmp, header)
    out = np.memmap(tmp, dtype=np.uint8, mode="r+", offset=offset, shape=(n, side, side, 3))
    good, skipped, errors = [], [], []

    def work(i: int) -> tuple[int, np.ndarray | None, str | None]:
        try:
            return i, decode_square(samples.paths[i], side, warp), None
        except SqueezeNetError as e:
            if not skip_bad:
                raise
            return i, None, str(e)

    pool = ThreadPoolExecutor(max(1, os.cpu_count() or 1))
    try:  # on the first bad image, stop at once instead of decoding the rest
        for i, arr, err in progress_bar(pool.map(work, range(n)), total=n, desc=f"decoding {n} images at {side}px",
                                        disable=None if progress else True, leave=False):
            if err:
                warnings.warn(f"skipped: {err}", stacklevel=3)
                skipped.append(str(samples.paths[i]))
                errors.append(err)
            else:
                out[len(good)] = arr  # map() yields in order, so good rows stay packed at the front
                good.append(i)
    finally:
        pool.shutdown(cancel_futures=True)
    del out
    if skipped:  # numpy pads the header for its shape to change in place: rewrite it, cut the unused rows
        _create(tmp, header | {"shape": (len(good), side, side, 3)})
        os.truncate(tmp, offset + len(good) * row)
    return good, skipped, errors


def decode_cached(samples: Samples, side: int, cache_dir: str | Path | None = None, skip_bad: bool = False,
                  progress: bool = True, rebuild: bool = True, warp: bool = False,
                  max_bytes: int | None = None) -> DecodedImages:
    """The split decoded at `side` (shorter side, or `warp`ed as Caffe does), from the cache when its
    fingerprint (files, sizes, mtimes, side, mode) matches.

    A corrupt image raises a SqueezeNetError naming it; with `skip_bad` it is left out with a warning and listed
    in `skipped`. `rebuild=False` raises instead of decoding (DDP ranks that wait for rank 0's cache). A new
    entry first evicts the least recently used ones to fit under `max_bytes` (default `max_cache_bytes()`)."""
    npy, meta_path = decoded_cache_paths(samples, side, cache_dir, warp)
    fp = _fingerprint(samples, side, warp)
    if (hit := _load_hit(npy, meta_path, fp, samples, skip_bad)) is not None:
        return hit
    if not rebuild:
        raise SqueezeNetError(f"decoded cache {npy} is missing or stale")
    n = len(samples)
    for f in (meta_path, npy):  # stale (a .npy is valid only with its .json): its space is free for the new one
        f.unlink(missing_ok=True)
    cap = max_cache_bytes() if max_bytes is None else max_bytes
    total, evicted = _make_room(npy.parent, n * side * side * 3, cap, f"{n} images at {side}px")
    with atomic_path(npy) as tmp:
        good, skipped, errors = _decode_into(tmp, samples, side, warp, skip_bad, progress)
    labels = [samples.labels[i] for i in good]
    write_text(meta_path, json.dumps({"fingerprint": fp, "side": side, "warp": warp, "root": _source_root(samples),
                                      "labels": labels, "skipped": skipped, "errors": errors}))
    size = npy.stat().st_size
    bad = f" (skipped {len(skipped)} unreadable)" if skipped else ""
    gone = f"; evicted {evicted} least recently used" if evicted else ""
    print(f"cache: wrote {len(good)} images{bad} at {side}px ({size / 1e6:,.0f} MB) to {npy}; total "
          f"{(total + size) / 1e6:,.0f} MB of {cap / 1e6:,.0f} MB{gone} (squeezenet cache [--clear])", file=sys.stderr)
    return DecodedImages(np.load(npy, mmap_mode="r"), np.asarray(labels, dtype=np.int64), samples.classes, skipped)
