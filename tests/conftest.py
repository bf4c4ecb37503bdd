"""Shared fixtures: the real data in ../shared (or $SQUEEZENET_SHARED), sliced small."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))  # benchmarks-only code (table2_rows) is tested from there
SHARED = Path(os.environ.get("SQUEEZENET_SHARED", REPO.parent / "shared")).resolve()
os.environ["SQUEEZENET_SHARED"] = str(SHARED)


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"needs the shared data, not found at {SHARED} (set SQUEEZENET_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def imagenette(shared) -> Path:
    return shared / "data" / "imagenette2"


@pytest.fixture(scope="session")
def imagenet_val(shared) -> Path:
    return shared / "data" / "imagenet-val-1300"


@pytest.fixture(scope="session")
def authors_model(shared) -> Path:
    return shared / "weights" / "deep-compression-squeezenet-v1.0"
