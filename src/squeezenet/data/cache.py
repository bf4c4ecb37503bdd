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
import sys
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from squeezenet.atomic import atomic_path, write_text
from squeezenet.data.cache_store import cache_dir_default, make_room, max_cache_bytes
from squeezenet.data.folders import Samples, load_image, open_image, to_rgb
from squeezenet.errors import SqueezeNetError
from squeezenet.models.preprocessing import Preprocessing, resize_and_crop
from squeezenet.progress import bar as progress_bar

CACHE_VERSION = 1


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


def _fingerprint(samples: Samples, side: int, warp: bool, tag: str) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION} side={side} warp={warp}{tag} classes={samples.classes}".encode())
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


def _decode_exact(pre: Preprocessing, path: Path) -> np.ndarray:
    """What `evaluate` gives the model: the full decode (no JPEG draft), resized and centre-cropped."""
    return np.asarray(pre.resize_crop(load_image(path)), dtype=np.uint8)


def _source_root(samples: Samples) -> str:
    # realpath, not resolve: a link loop stays itself (resolve raises), for its decoding to name it
    return os.path.commonpath([os.path.dirname(os.path.realpath(p)) for p in samples.paths]) if samples.paths else "."


def decoded_cache_paths(samples: Samples, side: int, cache_dir: str | Path | None = None,
                        warp: bool = False, tag: str = "") -> tuple[Path, Path]:
    """One cache slot per (source folder, side, resize mode): a changed source overwrites it instead of piling up."""
    name = hashlib.sha256(_source_root(samples).encode()).hexdigest()[:16] + f"-{side}" + ("-warp" if warp else "")
    name += tag
    base = Path(cache_dir) if cache_dir else cache_dir_default()
    return base / f"{name}.npy", base / f"{name}.json"


def _load_hit(npy: Path, meta_path: Path, fp: str, samples: Samples, skip_bad: bool) -> DecodedImages | None:
    """The cached split if its fingerprint matches, touched as used. An image an earlier `skip_bad` run left
    out is an error without `skip_bad` and named in a warning with it, as when decoding."""
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("fingerprint") != fp or not npy.is_file():
        return None
    skipped = meta["skipped"]
    errors = meta.get("errors") or [f"cannot read image {p}" for p in skipped]
    if skipped and not skip_bad:
        raise SqueezeNetError(f"{_some(errors, 1)}; an earlier run with --skip-bad left it out of the decoded cache: "
                              "pass --skip-bad again, or fix or remove the file")
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable image(s): {_some(errors)}", stacklevel=3)
    with suppress(OSError):  # a read-only cache still works, it only stops recording its use
        os.utime(meta_path)
    return DecodedImages(np.load(npy, mmap_mode="r"), np.asarray(meta["labels"], dtype=np.int64),
                         samples.classes, skipped)


def _some(errors: list[str], shown: int = 5) -> str:
    """The first `shown` errors (each names its image) and how many more: which ones, without a flood."""
    return "; ".join(errors[:shown]) + (f" (and {len(errors) - shown} more)" if len(errors) > shown else "")


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


def _decode_into(tmp: Path, samples: Samples, side: int, decode: Callable[[Path], np.ndarray], skip_bad: bool,
                 progress: bool) -> tuple[list[int], list[str], list[str]]:
    """Decode every image into the .npy at `tmp`: (indices kept, paths skipped, their errors)."""
    n, row = len(samples), side * side * 3
    header = {"descr": "|u1", "fortran_order": False, "shape": (n, side, side, 3)}
    offset = _create(tmp, header)
    out = np.memmap(tmp, dtype=np.uint8, mode="r+", offset=offset, shape=(n, side, side, 3))
    good, skipped, errors = [], [], []

    def work(i: int) -> tuple[int, np.ndarray | None, str | None]:
        try:
            return i, decode(samples.paths[i]), None
        except SqueezeNetError as e:
            if not skip_bad:
                raise
            return i, None, str(e)

    pool = ThreadPoolExecutor(max(1, os.cpu_count() or 1))
    try:  # on the first bad image, stop at once instead of decoding the rest
        for i, arr, err in progress_bar(pool.map(work, range(n)), total=n, desc=f"decoding {n} images at {side}px",
                                        disable=None if progress else True, leave=False):
            if err:
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
                  max_bytes: int | None = None, exact: Preprocessing | None = None) -> DecodedImages:
    """The split decoded at `side` (shorter side, or `warp`ed as Caffe does), from the cache when its
    fingerprint (files, sizes, mtimes, side, mode) matches.

    A corrupt image raises a SqueezeNetError naming it; with `skip_bad` it is left out with a warning and listed
    in `skipped`. `rebuild=False` raises instead of decoding (DDP ranks that wait for rank 0's cache). A new
    entry first evicts the least recently used ones to fit under `max_bytes` (default `max_cache_bytes()`).
    `exact` (validation): `evaluate`'s very pixels with that preprocessing, so that both give one figure."""
    decode = partial(decode_square, side=side, warp=warp) if exact is None else partial(_decode_exact, exact)
    if exact is not None:
        side, warp = exact.crop_size, exact.resize_mode == "warp"
    tag = "" if exact is None else f"-eval{exact.resize_size or 0}"
    npy, meta_path = decoded_cache_paths(samples, side, cache_dir, warp, tag)
    fp = _fingerprint(samples, side, warp, tag)
    if (hit := _load_hit(npy, meta_path, fp, samples, skip_bad)) is not None:
        return hit
    if not rebuild:
        raise SqueezeNetError(f"decoded cache {npy} is missing or stale")
    n = len(samples)
    for f in (meta_path, npy):  # stale (a .npy is valid only with its .json): its space is free for the new one
        f.unlink(missing_ok=True)
    cap = max_cache_bytes() if max_bytes is None else max_bytes
    total, evicted = make_room(npy.parent, n * side * side * 3, cap, f"{n} images at {side}px")
    with atomic_path(npy) as tmp:
        good, skipped, errors = _decode_into(tmp, samples, side, decode, skip_bad, progress)
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable image(s): {_some(errors)}", stacklevel=2)
    labels = [samples.labels[i] for i in good]
    write_text(meta_path, json.dumps({"fingerprint": fp, "side": side, "warp": warp, "root": _source_root(samples),
                                      "labels": labels, "skipped": skipped, "errors": errors}))
    size = npy.stat().st_size
    bad = f" (skipped {len(skipped)} unreadable)" if skipped else ""
    gone = f"; evicted {evicted} least recently used" if evicted else ""
    print(f"cache: wrote {len(good)} images{bad} at {side}px ({size / 1e6:,.0f} MB) to {npy}; total "
          f"{(total + size) / 1e6:,.0f} MB of {cap / 1e6:,.0f} MB{gone} (squeezenet cache [--clear])", file=sys.stderr)
    return DecodedImages(np.load(npy, mmap_mode="r"), np.asarray(labels, dtype=np.int64), samples.classes, skipped)
