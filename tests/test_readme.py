"""The README's commands, run in order in a fresh clone as a new user would, with small limits.

The clone gets a `../shared` beside it that is a small slice of the real one (3 Imagenette classes, a dozen
ImageNet validation images, the authors' weights), a photo or two, and its own decode cache; long commands are
shortened by the rewrites in `SMALL` (fewer epochs and steps, smaller samples), nothing else is changed. The
README's first block (set-up and the tests) is what CI itself runs, so it is not run here.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

README = REPO / "README.md"
BLOCK = re.compile(r"```(bash|python)\n(.*?)```", re.S)
SMALL = [  # (pattern, replacement): what makes a long command short
    (r"--epochs \d+", "--epochs 1"),
    (r"--train-limit \d+", "--train-limit 24"),
    (r"--fisher-batches \d+", "--fisher-batches 2"),
    (r"--retrain-epochs \d+", "--retrain-epochs 1"),
    (r"(squeezenet train (?!--resume).*)", r"\1 --max-steps 3 --batch-size 8"),
    (r"(squeezenet explore .*)", r"\1 --batch-size 8 --train-arg='--max-steps 3'"),
    (r"(squeezenet explore --sweep sr .*)", r"\1 --values 0.125 0.25"),
    (r"(squeezenet explore --sweep bypass .*)", r"\1 --values none"),  # the SR sweep's run: nothing new to train
    (r"--trials \d+", "--trials 1"),
    (r"(squeezenet sensitivity .*)", r"\1 --limit 6 --densities 0.5 1.0"),
    (r"(rate_accuracy\.py) --rates( \d[\d.e@-]*)+", r"\1 --rates 3e-3"),
    (r"(rate_accuracy\.py .*)--tuned( \d[\d.e@-]*)+", r"\1--tuned 3e-3"),
]


def blocks() -> list[tuple[str, str]]:
    return BLOCK.findall(README.read_text())[1:]  # [0]: the two commands, CI's own job


def shell_lines(body: str) -> list[str]:
    """One line per command: continuations joined, comments dropped, the small-limit rewrites applied."""
    lines = []
    for line in body.replace("\\\n", " ").splitlines():
        line = re.sub(r"\s+#\s.*$", "", line).strip()
        if line and not line.startswith("#"):
            for pattern, repl in SMALL:
                line = re.sub(pattern, repl, line)
            lines.append(re.sub(r"\s+", " ", line))
    return lines


def _copy_images(src: Path, dst: Path, n: int) -> list[Path]:
    dst.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(p, dst)) for p in sorted(src.iterdir())[:n]]


def _labels_slice(src: Path, dst: Path, n: int) -> None:
    """A labels.csv folder with `n` of its rows (spread over the file) and their images."""
    with open(src / "labels.csv") as f:
        rows = list(csv.reader(f))[1:]
    keep = rows[:: max(1, len(rows) // n)][:n]
    (dst / "images").mkdir(parents=True)
    base = src / "images" if (src / "images").is_dir() else src
    for name, _ in keep:
        shutil.copy(base / name, dst / "images" / name)
    (dst / "labels.csv").write_text("file,label\n" + "".join(f"{a},{b}\n" for a, b in keep))


@pytest.fixture(scope="module")
def clone(shared, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("readme")
    work = root / "squeezenet"
    if (REPO / ".git").exists():
        subprocess.run(["git", "clone", "-q", str(REPO), str(work)], check=True)
    else:
        work.mkdir()
    mini = root / "shared"
    (mini / "data").mkdir(parents=True)
    (mini / "weights").symlink_to(shared / "weights")
    shutil.copy(shared / "data" / "imagenet_classes.txt", mini / "data")
    src = shared / "data" / "imagenette2"
    for c in sorted(p.name for p in (src / "train").iterdir())[:3]:
        _copy_images(src / "train" / c, mini / "data" / "imagenette2" / "train" / c, 8)
        _copy_images(src / "val" / c, mini / "data" / "imagenette2" / "val" / c, 4)
    for name in ("imagenet-val-1300", "imagenet-sample-750"):
        _labels_slice(shared / "data" / name, mini / "data" / name, 12)
    photos = _copy_images(src / "val" / sorted(p.name for p in (src / "val").iterdir())[0], work / "photos", 2)
    for name, p in zip(("photo.jpg", "photo1.jpg", "photo2.jpg"), photos * 2, strict=False):
        shutil.copy(p, work / name)
    return work


def _env(clone: Path) -> dict:
    return os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                         "SQUEEZENET_SHARED": str(clone.parent / "shared"),
                         "SQUEEZENET_CACHE": str(clone.parent / "cache"), "SQUEEZENET_QUIET": "1"}


@pytest.mark.parametrize("index", range(len(blocks())))
def test_readme_block(clone: Path, index: int) -> None:
    lang, body = blocks()[index]
    if lang == "python":  # the snippets' free names: an input batch and the user's torchvision checkpoint
        prelude = ("import torch, squeezenet\nx = torch.randn(1, 3, 224, 224)\n"
                   "torch.save(squeezenet.squeezenet1_1().state_dict(), 'torchvision_squeezenet1_1.pth')\n")
        cmd = [sys.executable, "-c", prelude + body]
        shown = body
    else:
        lines = shell_lines(body)
        cmd, shown = ["bash", "-ec", "\n".join(lines)], "\n".join(lines)
    r = subprocess.run(cmd, cwd=clone, env=_env(clone), capture_output=True, text=True, timeout=600)
    output = (r.stdout + r.stderr)[-3000:]
    assert r.returncode == 0, f"README block {index + 1} failed:\n{shown}\n--- output ---\n{output}"
