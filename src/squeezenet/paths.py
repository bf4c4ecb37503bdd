"""Where the shared, read-only data lives: $SQUEEZENET_SHARED, else `shared/` beside the checkout.

The default does not depend on the working directory: for an install from a checkout (`pip install -e .`) it is
the checkout's sibling `../shared`; otherwise `../shared` from the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parents[2]  # src/squeezenet/paths.py -> the repository root


def shared_dir() -> Path:
    if "SQUEEZENET_SHARED" in os.environ:
        return Path(os.environ["SQUEEZENET_SHARED"])
    beside = _CHECKOUT.parent / "shared"
    return beside if (_CHECKOUT / "pyproject.toml").is_file() else Path("../shared")


def imagenet_classes_file() -> Path:
    return shared_dir() / "data" / "imagenet_classes.txt"


def authors_model_dir() -> Path:
    return shared_dir() / "weights" / "deep-compression-squeezenet-v1.0"
