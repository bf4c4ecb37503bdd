"""The decoded-image cache: every image of a split decoded once into a memory-mapped uint8 array.

Training then does no JPEG work in its epochs (airbench-style); the cache is keyed by folder, side and resize
mode, and rebuilt when a file, its size or mtime changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from squeezenet.atomic import atomic_path, write_text
from squeezenet.data.folders import Samples, open_image, to_rgb
from squeezenet.errors import SqueezeNetError
from squeezenet.models.preprocessing import resize_and_crop

CACHE_VERSION = 1


def cache_dir_default() -> Path:
    return Path(os.environ.get("SQUEEZENET_CACHE", Path.home() / ".cache" / "squeezenet"))


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


def decoded_cache_paths(samples: Samples, side: int, cache_dir: str | Path | None = None,
                        warp: bool = False) -> tuple[Path, Path]:
    """One cache slot per (source folder, side, resize mode): a changed source overwrites it instead of piling up."""
    root = os.path.commonpath([str(p.resolve().parent) for p in samples.paths]) if samples.paths else "."
    name = hashlib.sha256(root.encode()).hexdigest()[:16] + f"-{side}" + ("-warp" if warp else "")
    base = Path(cache_dir) if cache_dir else cache_dir_default()
    return base / f"{name}.npy", base / f"{name}.json"


def decode_cached(samples: Samples, side: int, cache_dir: str | Path | None = None, skip_bad: bool = False,
                  progress: bool = True, rebuild: bool = True, warp: bool = False) -> DecodedImages:
    """The split decoded at `side` (shorter side, or `warp`ed as Caffe does), from the cache when its
    fingerprint (files, sizes, mtimes, side, mode) matches.

    A corrupt image raises a SqueezeNetError naming it; with `skip_bad` it is left out with a warning and listed
    in `skipped`. `rebuild=False` raises instead of decoding (DDP ranks that wait for rank 0's cache).
    """
    npy, meta_path = decoded_cache_paths(samples, side, cache_dir, warp)
    fp = _fingerprint(samples, side, warp)
    if meta_path.is_file() and npy.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == fp:
            return DecodedImages(np.load(npy, mmap_mode="r"), np.asarray(meta["labels"], dtype=np.int64),
                                 samples.classes, meta["skipped"])
    if not rebuild:
        raise SqueezeNetError(f"decoded cache {npy} is missing or stale")
    npy.parent.mkdir(parents=True, exist_ok=True)
    meta_path.unlink(missing_ok=True)  # the .npy is only valid while a matching .json exists
    good, skipped = [], []

    def work(i: int) -> tuple[int, np.ndarray | None, str | None]:
        try:
            return i, decode_square(samples.paths[i], side, warp), None
        except SqueezeNetError as e:
            if not skip_bad:
                raise
            return i, None, str(e)

    n = len(samples)
    with atomic_path(npy) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, side, side, 3))
        with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
            for i, arr, err in tqdm(pool.map(work, range(n)), total=n, desc=f"decoding {n} images at {side}px",
                                    disable=not progress, leave=False):
                if err:
                    warnings.warn(f"skipped: {err}", stacklevel=2)
                    skipped.append(str(samples.paths[i]))
                else:
                    out[len(good)] = arr  # map() yields in order, so good rows stay packed at the front
                    good.append(i)
        if skipped:  # the header's shape must match: copy the packed rows into a smaller file
            with atomic_path(tmp) as tmp2:
                small = np.lib.format.open_memmap(tmp2, mode="w+", dtype=np.uint8, shape=(len(good), side, side, 3))
                small[:] = out[:len(good)]
                small.flush()
                del small
        del out
    if skipped:
        print(f"warning: skipped {len(skipped)} unreadable image(s) of {len(samples)}", file=sys.stderr)
    labels = [samples.labels[i] for i in good]
    write_text(meta_path, json.dumps({"fingerprint": fp, "side": side, "labels": labels, "skipped": skipped}))
    return DecodedImages(np.load(npy, mmap_mode="r"), np.asarray(labels, dtype=np.int64), samples.classes, skipped)
