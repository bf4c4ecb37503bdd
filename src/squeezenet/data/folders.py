"""Image folders: listing a class tree or a labels.csv, the one seeded class-balanced sampler, decoding with a
named error, and the check that training and evaluation images never overlap."""

from __future__ import annotations

import csv
import glob
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from squeezenet.errors import SqueezeNetError

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


def list_samples(root: str | Path, classes: list[str] | None = None, num_classes: int | None = None) -> Samples:
    """An ImageNet-style folder (`<class>/*.JPEG`) or a folder with `labels.csv` (file,label) and images.

    For a class folder, `classes` fixes the label order (e.g. the 1000 ImageNet wnids); by default the sorted
    sub-folder names. A folder with labels.csv looks for images beside it or in `images/`; its class indices are
    ImageNet's when `classes` are given, else the model's `num_classes` outputs': one beyond them is an error naming
    its line (a model of some ImageNet classes would silently leave its image out).
    """
    root = Path(root)
    if not root.is_dir():
        raise SqueezeNetError(f"data folder not found: {root}")
    labels_csv = root / "labels.csv"
    if labels_csv.is_file():
        base = root / "images" if (root / "images").is_dir() else root
        paths, labels = _read_labels_csv(labels_csv, base, 1000 if classes else num_classes)
        return _imagenet_labels(Samples(paths, labels, classes or _csv_classes(labels)), labels_csv)
    found = sorted(d.name for d in root.iterdir() if d.is_dir())
    if not found:
        raise SqueezeNetError(f"{root} has neither class sub-folders nor a labels.csv")
    classes = classes or found
    index = {c: i for i, c in enumerate(classes)}
    unknown = [c for c in found if c not in index]
    if unknown:
        hint = f": pass the split, e.g. {root / 'val'}" if unknown[0] in ("train", "val") else ""
        raise SqueezeNetError(f"{root}: class folder {unknown[0]!r} is not among the model's classes{hint}")
    paths, labels = [], []
    for c in found:
        images = [p for p in sorted((root / c).iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            warnings.warn(f"class folder {root / c} has no images", stacklevel=2)
        paths += images
        labels += [index[c]] * len(images)
    if not paths:
        raise SqueezeNetError(f"no images found under {root}")
    return Samples(paths, labels, classes)


def _is_int(text: str) -> bool:
    t = text.strip().removeprefix("-")
    return t.isascii() and t.isdigit()


def _read_labels_csv(labels_csv: Path, base: Path, bound: int | None) -> tuple[list[Path], list[int]]:
    """(paths, labels) of a `file,label` CSV (an optional header line), labels in 0..bound-1 (or >= 0); a bad line
    is named with its number."""
    paths, labels = [], []
    try:
        with open(labels_csv, newline="", encoding="utf-8") as f:
            for i, row in enumerate(reader := csv.reader(f)):
                if i == 0 and row and not _is_int(row[-1]):
                    continue  # header
                if len(row) < 2 or not _is_int(row[1]):
                    raise SqueezeNetError(f"{labels_csv}: line {reader.line_num} is not 'file,label' with an integer "
                                          f"label: {','.join(row)[:80]!r}")
                y = int(row[1])
                if y < 0 or (bound is not None and y >= bound):
                    rule = f"out of range 0..{bound - 1}" if bound is not None else "negative"
                    raise SqueezeNetError(f"{labels_csv}: line {reader.line_num}: class index {y} is {rule}")
                paths.append(base / row[0].strip())
                labels.append(y)
    except (UnicodeDecodeError, csv.Error) as e:
        raise SqueezeNetError(f"{labels_csv}: not a UTF-8 CSV file ({e})") from None
    if not paths:
        raise SqueezeNetError(f"{labels_csv} lists no images")
    return paths, labels


def _csv_classes(labels: list[int]) -> list[str]:
    """The classes a labels.csv indexes: ImageNet's 1000 wnids when the shared class list is at hand, else '0'..'N'."""
    from squeezenet.formats.weights import imagenet_classes

    try:
        wnids = imagenet_classes()[0]
    except SqueezeNetError:
        wnids = []
    return list(wnids) if max(labels) < len(wnids) else [str(i) for i in range(max(labels) + 1)]


def find_images(specs: list[str | Path]) -> list[Path]:
    """Image files from paths, folders (searched recursively, links not followed) and glob patterns."""
    found: list[Path] = []
    for spec in map(str, specs):
        p = Path(spec)
        if p.is_dir():
            hits = [Path(d) / f for d, _, files in os.walk(p) for f in files
                    if Path(f).suffix.lower() in IMAGE_SUFFIXES]
            if not hits:
                raise SqueezeNetError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {p}")
        elif not p.exists() and any(c in spec for c in "*?["):
            hits = [Path(h) for h in glob.glob(spec, recursive=True) if Path(h).suffix.lower() in IMAGE_SUFFIXES]
            if not hits:
                raise SqueezeNetError(f"no images match {spec}")
        elif not p.exists() and not p.is_symlink():
            raise SqueezeNetError(f"no such image: {p}")
        else:
            hits = [p]
        found += sorted(hits)
    return found


def _imagenet_labels(samples: Samples, labels_csv: Path) -> Samples:
    """labels.csv indexes ImageNet's 1000 classes; a model of some of them (Imagenette's 10 wnids, say) is
    evaluated on the images of its classes, relabelled to its own order."""
    from squeezenet.formats.weights import imagenet_classes

    if not samples.classes or len(samples.classes) == 1000:
        return samples
    wnids = imagenet_classes()[0]
    index = {c: i for i, c in enumerate(samples.classes)}
    if not set(index) <= set(wnids):
        raise SqueezeNetError(f"{labels_csv} labels ImageNet classes, but the model's classes are not ImageNet wnids")
    keep = [(p, index[wnids[y]]) for p, y in zip(samples.paths, samples.labels, strict=True) if wnids[y] in index]
    if not keep:
        raise SqueezeNetError(f"{labels_csv}: no image of the model's {len(index)} classes")
    return Samples([p for p, _ in keep], [y for _, y in keep], samples.classes)


MAX_PIXELS = 64_000_000  # 8000 x 8000: above it, decoding one image costs gigabytes
MAX_ASPECT = 20  # a 1 x 100000 strip would become 256 x 25.6 M pixels at the shorter-side resize


def open_image(path: str | Path) -> Image.Image:
    """Open (not yet decode) an image, refusing what would hang or exhaust memory: anything but a regular file
    (a FIFO, a broken link or a link loop), more than `MAX_PIXELS` pixels, an aspect ratio beyond `MAX_ASPECT`."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise SqueezeNetError(f"cannot read image {path}: not a regular file")
        im = Image.open(path)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as e:
        raise SqueezeNetError(f"cannot read image {path}: {e}") from None
    w, h = im.size
    if w * h > MAX_PIXELS or max(w, h) > MAX_ASPECT * max(1, min(w, h)):
        im.close()
        raise SqueezeNetError(f"cannot read image {path}: {w}x{h} pixels is beyond the limits "
                              f"({MAX_PIXELS:,} pixels, aspect ratio {MAX_ASPECT}:1)")
    return im


def to_rgb(im: Image.Image) -> Image.Image:
    """RGB; 16- and 32-bit greyscale scaled to 8 bits (PIL's convert would clip them at 255)."""
    if im.mode.startswith("I"):
        a = np.asarray(im, dtype=np.float64)
        a = a / 257 if a.max(initial=0) > 255 else a
        im = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")
    return im.convert("RGB")


def load_image(path: str | Path) -> Image.Image:
    """Decode an image to RGB; a missing, corrupt, truncated or oversized file is a SqueezeNetError naming it."""
    with open_image(path) as im:
        try:
            im.load()
            return to_rgb(im)
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise SqueezeNetError(f"cannot read image {path}: {e}") from None


def image_array(path: str | Path) -> np.ndarray:
    """HxWx3 uint8 RGB array of an image."""
    return np.asarray(load_image(path), dtype=np.uint8)


def dataset(data: str | Path) -> Path:
    """A dataset root (`DIR/train/<class>/...`, `DIR/val/...`), or a one-line error that says what to pass instead:
    a missing path is "not found", a split folder (DIR/train itself) points to its parent."""
    root = Path(data)
    if not root.exists():
        raise SqueezeNetError(f"data folder not found: {root}")
    if not (root / "train").is_dir():
        hint = (f"; it looks like a split: pass its parent, --data {root.parent}" if root.name in ("train", "val")
                and (root.parent / "train").is_dir() else " (expected DIR/train/<class>/*.JPEG and DIR/val/...)")
        raise SqueezeNetError(f"{root} has no train/ folder{hint}")
    return root


def training_images(data_dir: str | Path | None) -> Path | None:
    """The folder to learn from: a dataset root (`DIR/train`, `DIR/val`, as `train --data` takes) means its train/."""
    if data_dir is None:
        return None
    return Path(data_dir) / "train" if (Path(data_dir) / "train").is_dir() else Path(data_dir)


def check_disjoint(train_dir: str | Path | None, eval_dir: str | Path | None, what: str = "training data") -> None:
    """Refuse to learn from (train, fine-tune, calibrate on) the evaluation images: the same folder, or one inside
    the other, would flatter every figure measured on them."""
    if train_dir is None or eval_dir is None:
        return
    a, b = Path(train_dir).resolve(), Path(eval_dir).resolve()
    if a == b or a in b.parents or b in a.parents:
        raise SqueezeNetError(f"{what} {a} overlaps the evaluation data {b}: never learn from evaluation images")
