"""Shared fixtures: the real data in ../shared (or $SQUEEZENET_SHARED), sliced small."""

from __future__ import annotations

import os
import shutil
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


@pytest.fixture(scope="session")
def tiny(imagenette, tmp_path_factory) -> Path:
    """3 classes: 12 train and 4 val images each, linked from Imagenette."""
    root = tmp_path_factory.mktemp("tiny")
    for split, n in (("train", 12), ("val", 4)):
        for c in sorted(os.listdir(imagenette / split))[:3]:
            (root / split / c).mkdir(parents=True)
            for f in sorted(os.listdir(imagenette / split / c))[:n]:
                os.symlink(imagenette / split / c / f, root / split / c / f)
    return root


@pytest.fixture
def folder(imagenette, tmp_path) -> Path:
    """2 classes x 5 real Imagenette images, copied (so that they can be touched and corrupted)."""
    for c in sorted(os.listdir(imagenette / "val"))[:2]:
        (tmp_path / "d" / c).mkdir(parents=True)
        for f in sorted(os.listdir(imagenette / "val" / c))[:5]:
            shutil.copy(imagenette / "val" / c / f, tmp_path / "d" / c / f)
    return tmp_path / "d"


# Two pytest-xdist processes (pyproject's addopts: -n 2 --dist loadgroup), one queue each: the README's and docs/'
# blocks and the study's worker processes (subprocesses mostly waiting on one another) beside the in-process tests.
SUBPROCESS_FILES = {"test_docs.py", "test_study.py"}
# Once OpenVINO's CPU plugin has run in a process, a later `subprocess` fork of that process was seen to crash it
# (SIGSEGV): OpenVINO's tests run last in the in-process queue, and the fidelity test, whose runtimes run in a process
# it starts, first.
ORDER = {"test_fidelity_formats.py": -1, "test_openvino.py": 1}
if os.environ.get("PYTEST_XDIST_WORKER"):  # one core each: two queues of two threads would spin against each other
    import torch

    torch.set_num_threads(1)


def pytest_collection_modifyitems(items) -> None:
    items.sort(key=lambda item: ORDER.get(item.fspath.basename, 0))
    for item in items:
        queue = "subprocesses" if item.fspath.basename in SUBPROCESS_FILES else "in-process"
        item.add_marker(pytest.mark.xdist_group(queue))
