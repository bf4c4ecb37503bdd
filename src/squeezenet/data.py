"""Image data: listing a folder or labels.csv, decoding with a named error, the uint8 decoded cache and augmentation.

Training decodes every JPEG once into a memory-mapped uint8 array at the training resolution, so epochs do no
JPEG work (airbench-style); augmentation then runs batched on those uint8 tensors.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from .atomic import atomic_path, write_text
from .errors import SqueezeNetError
from .preprocess import resize_and_crop

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".bmp", ".webp"}


@dataclass
class Samples:
    """Image paths with integer labels; `classes[i]` is the name (e.g. wnid) of label i when known."""

    paths: list[Path]
    labels: list[int]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def num_classes_present(self) -> int:
        return len(set(self.labels))

    def sample(self, limit: int | None, seed: int = 0) -> Samples:
        """A seeded, class-balanced sample of `limit` images (all of them when `limit` is None or too large).

        Every class gets `limit // C` images, the remainder going to randomly chosen classes; a class with too few
        gives all it has and the rest is spread over the others. The one sampler of every `--limit`-style option
        and of int8 calibration: taking the first N files would read the first classes only.
        """
        if limit is None or limit >= len(self):
            return self
        rng = np.random.default_rng(seed)
        groups = [rng.permutation(idx) for idx in _by_label(self.labels)]
        take = [0] * len(groups)
        left = limit
        while left > 0:  # round-robin over the classes that still have images, in a seeded order
            open_ = [g for g in rng.permutation(len(groups)) if take[g] < len(groups[g])]
            for g in open_[:left]:
                take[g] += 1
            left -= min(left, len(open_))
        idx = np.sort(np.concatenate([g[:t] for g, t in zip(groups, take, strict=True)]))
        return Samples([self.paths[i] for i in idx], [self.labels[i] for i in idx], self.classes)


def _by_label(labels: list[int]) -> list[np.ndarray]:
    y = np.asarray(labels)
    return [np.flatnonzero(y == c) for c in np.unique(y)]


def list_samples(root: str | Path, classes: list[str] | None = None) -> Samples:
    """An ImageNet-style folder (`<class>/*.JPEG`) or a folder with `labels.csv` (file,label) and images.

    For a class folder, `classes` fixes the label order (e.g. the 1000 ImageNet wnids); by default the sorted
    sub-folder names. A folder with labels.csv looks for images beside it or in `images/`.
    """
    root = Path(root)
    if not root.is_dir():
        raise SqueezeNetError(f"data folder not found: {root}")
    labels_csv = root / "labels.csv"
    if labels_csv.is_file():
        base = root / "images" if (root / "images").is_dir() else root
        paths, labels = [], []
        with open(labels_csv, newline="") as f:
            for i, row in enumerate(csv.reader(f)):
                if i == 0 and row and not row[-1].strip().lstrip("-").isdigit():
                    continue  # header
                if len(row) < 2 or not row[1].strip().lstrip("-").isdigit():
                    raise SqueezeNetError(f"{labels_csv}: line {i + 1} is not 'file,label': {row}")
                paths.append(base / row[0].strip())
                labels.append(int(row[1]))
        return _imagenet_labels(Samples(paths, labels, classes or []), labels_csv)
    found = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not found:
        raise SqueezeNetError(f"{root} has neither class sub-folders nor a labels.csv")
    classes = classes or found
    index = {c: i for i, c in enumerate(classes)}
    unknown = [c for c in found if c not in index]
    if unknown:
        raise SqueezeNetError(f"{root}: class folder {unknown[0]!r} is not among the model's classes")
    paths, labels = [], []
    for c in found:
        for p in sorted((root / c).iterdir()):
            if p.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(p)
                labels.append(index[c])
    if not paths:
        raise SqueezeNetError(f"no images found under {root}")
    return Samples(paths, labels, classes)


def _imagenet_labels(samples: Samples, labels_csv: Path) -> Samples:
    """labels.csv indexes ImageNet's 1000 classes; a model of some of them (Imagenette's 10 wnids, say) is
    evaluated on the images of its classes, relabelled to its own order."""
    from .weights import imagenet_classes

    if not samples.classes or len(samples.classes) == 1000:
        return samples
    wnids = imagenet_classes()[0]
    index = {c: i for i, c in enumerate(samples.classes)}
    if not set(index) <= set(wnids):
        raise SqueezeNetError(f"{labels_csv} labels ImageNet classes, but the model's classes are not ImageNet wnids")
    keep = [(p, index[wnids[y]]) for p, y in zip(samples.paths, samples.labels, strict=True)
            if 0 <= y < 1000 and wnids[y] in index]
    if not keep:
        raise SqueezeNetError(f"{labels_csv}: no image of the model's {len(index)} classes")
    return Samples([p for p, _ in keep], [y for _, y in keep], samples.classes)


def load_image(path: str | Path) -> Image.Image:
    """Decode an image to RGB; a missing, corrupt or truncated file is a SqueezeNetError naming the file."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
        raise SqueezeNetError(f"cannot read image {path}: {e}") from None


def image_array(path: str | Path) -> np.ndarray:
    """HxWx3 uint8 RGB array of an image."""
    return np.asarray(load_image(path), dtype=np.uint8)


# --- decoded cache and uint8 augmentation (training) ---------------------------------------------------------------

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
    try:
        with Image.open(path) as im:
            im.draft("RGB", (side, side))
            return np.asarray(resize_and_crop(im.convert("RGB"), side, side, warp), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
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


def to_nchw(batch: np.ndarray) -> torch.Tensor:
    """NHWC uint8 numpy -> NCHW uint8 tensor in channels_last memory (a view, no copy)."""
    return torch.from_numpy(np.require(batch, requirements=["C", "W"])).permute(0, 3, 1, 2)


def random_resized_crop_params(n: int, generator: torch.Generator, scale: tuple[float, float],
                               ratio: tuple[float, float] = (3 / 4, 4 / 3), flip: bool = True) -> torch.Tensor:
    """n affine maps (n, 2, 3), each a random crop box (area fraction in `scale`, aspect in `ratio`, clipped to
    the image) with a random horizontal flip, in grid_sample's normalised coordinates."""
    u = torch.rand(n, 5, generator=generator)
    area = scale[0] + (scale[1] - scale[0]) * u[:, 0]
    r = torch.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1])
    w, h = torch.sqrt(area * r).clamp(max=1.0), torch.sqrt(area / r).clamp(max=1.0)
    sign = torch.where(u[:, 4] < 0.5, -1.0, 1.0) if flip else torch.ones(n)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = w * sign, (1 - w) * (2 * u[:, 2] - 1)
    theta[:, 1, 1], theta[:, 1, 2] = h, (1 - h) * (2 * u[:, 3] - 1)
    return theta


def random_resized_crop(x: torch.Tensor, size: int, theta: torch.Tensor) -> torch.Tensor:
    """Crop, resize and flip a uint8 NCHW batch by per-image affine maps in one batched grid_sample.

    Returns float32 in 0..255; `theta` comes from `random_resized_crop_params`.
    """
    grid = F.affine_grid(theta, [x.shape[0], x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre `size`x`size` crop of an NCHW batch (evaluation: the cache already did the resize)."""
    top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
    return x[..., top:top + size, left:left + size]
