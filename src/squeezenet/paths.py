"""Where the shared, read-only data lives: $SQUEEZENET_SHARED, else `../shared` beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path


def shared_dir() -> Path:
    return Path(os.environ.get("SQUEEZENET_SHARED", "../shared"))


def imagenet_classes_file() -> Path:
    return shared_dir() / "data" / "imagenet_classes.txt"


def authors_model_dir() -> Path:
    return shared_dir() / "weights" / "deep-compression-squeezenet-v1.0"
