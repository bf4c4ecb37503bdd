"""Every shell and Python block of the README and of docs/, run in order in a fresh clone as a new user would, with
small limits.

The order is the README's, then the pages of docs/ in mkdocs.yml's nav (a page reads what the pages before it
made: the quick start's run, the training tutorial's `runs/v11`). The clone gets a `../shared` beside it that is a
small slice of the real one (3 Imagenette classes, a dozen ImageNet validation images, the authors' weights), a
user's files (`photo.jpg`, `photos/`, `mydata/`: three classes of photos in train/ and val/) and its own decode
cache; long commands are shortened by the rewrites in `SMALL` (fewer epochs and steps, smaller samples), nothing
else is changed.

Blocks not run:
- the README's first block (set-up and tests) is what CI itself runs; the quick start page repeats it;
- a block identical to one run before it (the README's quick start is the quick start page's) runs once;
- ```sh blocks are shown, not run, and there are only the two in `NOT_RUN`, each beside a run block of the same
  command path: the authors' 1000-class model as Cortex-M4 firmware (the bundled model's firmware block runs
  `export --format c --target cortex-m4` and `make run`; this one takes minutes under QEMU) and explore's workers
  on PostgreSQL and Slurm (a server and a scheduler; the search block runs the same command, tests/test_study.py
  runs workers on a journal and on PostgreSQL). A new ```sh block fails `test_only_the_listed_blocks_are_not_run`;
- ```text blocks are not commands (a folder's layout).

The clone is of the committed HEAD; with `SQUEEZENET_DOCS_WORKTREE=1` it is a copy of the working tree (the files
`git ls-files` lists, committed or not, ignored ones left out), to test pages before they are committed.
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
DOCS = REPO / "docs"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
RUN = {"bash", "python"}
KNOWN = RUN | {"sh", "text"}
NOT_RUN = {"docs/tutorials/deploy-mcu.md": 1, "docs/tutorials/explore.md": 1}  # page -> its ```sh blocks
USER_CLASSES = {"tench": "n01440764", "springer": "n02102040", "cassette": "n02979186"}  # mydata/: a user's folder
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
    # the point without its fine-tuning only: the tutorial's first compress command runs the fine-tuning
    (r"(rate_accuracy\.py (?!.*--tuned).*)", r"\1 --tuned"),
    (r"--finetune-epochs \d+", "--finetune-epochs 1"),
]


def pages() -> list[Path]:
    """The README, then the pages of mkdocs.yml's nav in order."""
    nav = (REPO / "mkdocs.yml").read_text().split("\nnav:", 1)[1]
    return [README, *(DOCS / p for p in re.findall(r"^\s*-\s*(?:[^\n]*?:\s+)?([\w/.-]+\.md)\s*$", nav, re.M))]


def fences(page: Path) -> list[tuple[str, str]]:
    return FENCE.findall(page.read_text())


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


def blocks() -> list[tuple[str, str, str]]:
    """(id, language, body) of every block to run, in order: CI's own block and repeats left out."""
    ci = fences(README)[0]
    seen, out = {ci}, []
    for page in pages():
        for i, (lang, body) in enumerate(fences(page), 1):
            if lang in RUN and (lang, body) not in seen:
                seen.add((lang, body))
                out.append((f"{page.relative_to(REPO)}:{i}", lang, body))
    return out


def test_every_page_is_in_the_nav_and_every_block_has_a_known_language():
    listed = set(pages())
    unlisted = [str(p.relative_to(REPO)) for p in DOCS.rglob("*.md") if p not in listed]
    assert not unlisted, f"pages outside mkdocs.yml's nav (their blocks would not run): {unlisted}"
    odd = [(str(p.relative_to(REPO)), lang) for p in listed for lang, _ in fences(p) if lang not in KNOWN]
    assert not odd, f"blocks of another language than {sorted(KNOWN)}: {odd}"


def test_the_quick_start_installs_as_ci_does():
    """The quick start page shows the README's first block (CI's set-up and tests) as it is, so neither runs here."""
    assert fences(DOCS / "quickstart.md")[0] == fences(README)[0]


def test_only_the_listed_blocks_are_not_run():
    shown = {str(p.relative_to(REPO)): n for p in pages() if (n := sum(lang == "sh" for lang, _ in fences(p)))}
    assert shown == NOT_RUN, "a ```sh block is not run: make it ```bash, or list it in NOT_RUN with its reason"


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


def _checkout(work: Path) -> None:
    """A clone of HEAD, or with SQUEEZENET_DOCS_WORKTREE=1 a copy of the working tree's files."""
    if not (REPO / ".git").exists():
        work.mkdir()
    elif os.environ.get("SQUEEZENET_DOCS_WORKTREE") == "1":
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                                check=True, capture_output=True).stdout.decode().split("\0")
        for name in filter(None, listed):
            if (REPO / name).is_file():
                (work / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, work / name)
    else:
        subprocess.run(["git", "clone", "-q", str(REPO), str(work)], check=True)


@pytest.fixture(scope="module")
def clone(shared, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("docs")
    work = root / "squeezenet"
    _checkout(work)
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
    for name, wnid in USER_CLASSES.items():  # a user's own folder: class names of their choosing
        for split, n in (("train", 8), ("val", 4)):
            _copy_images(src / split / wnid, work / "mydata" / split / name, n)
    return work


def _env(clone: Path) -> dict:
    return os.environ | {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
                         "SQUEEZENET_SHARED": str(clone.parent / "shared"),
                         "SQUEEZENET_CACHE": str(clone.parent / "cache"), "SQUEEZENET_QUIET": "1"}


@pytest.mark.parametrize(("where", "lang", "body"), blocks(), ids=[b[0] for b in blocks()])
def test_block(clone: Path, where: str, lang: str, body: str) -> None:
    if lang == "python":  # the snippets' free names: an input batch and the user's torchvision checkpoint
        prelude = ("import torch, squeezenet\nx = torch.randn(1, 3, 224, 224)\n"
                   "torch.save(squeezenet.squeezenet1_1().state_dict(), 'torchvision_squeezenet1_1.pth')\n")
        cmd, shown = [sys.executable, "-c", prelude + body], body
    else:
        lines = shell_lines(body)
        cmd, shown = ["bash", "-ec", "\n".join(lines)], "\n".join(lines)
    r = subprocess.run(cmd, cwd=clone, env=_env(clone), capture_output=True, text=True, timeout=600)
    output = (r.stdout + r.stderr)[-3000:]
    assert r.returncode == 0, f"{where} failed:\n{shown}\n--- output ---\n{output}"
