"""Image data: listing an ImageNet-style folder or a labels.csv, and decoding one image with a named error."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import SqueezeNetError

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".bmp", ".webp"}


@dataclass
class Samples:
    """Image paths with integer labels; `classes[i]` is the name (e.g. wnid) of label i when known."""

    paths: list[Path]
    labels: list[int]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, limit: int | None) -> Samples:
        if limit is None or limit >= len(self):
            return self
        return Samples(self.paths[:limit], self.labels[:limit], self.classes)


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
        return Samples(paths, labels, classes or [])
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
