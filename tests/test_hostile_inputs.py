"""Hostile input to the commands (issue 32, item 8): class indices beyond the model, symbolic-link loops in the
data, --skip-bad naming what it left out, Ctrl-C during `train`, the temporary files a `kill -9` leaves (fixtures
made here from real images)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from squeezenet.cli import main
from squeezenet.data.cache import decode_cached
from squeezenet.data.folders import list_samples
from squeezenet.errors import SqueezeNetError

IMAGENETTE_INDICES = {0, 217, 482, 491, 497, 566, 569, 571, 574, 701}  # its wnids' ImageNet class indices
FAST = ["--image-size", "32", "--batch-size", "8", "--threads", "1", "--warmup-epochs", "0"]


@pytest.fixture
def labelled(imagenet_val, tmp_path) -> Path:
    """A labels.csv folder: 3 imagenet-val-1300 images of Imagenette's classes, with their ImageNet indices."""
    rows = [r.split(",") for r in (imagenet_val / "labels.csv").read_text().splitlines()[1:]]
    rows = [(f, y) for f, y in rows if int(y) in IMAGENETTE_INDICES][:3]
    (tmp_path / "l").mkdir()
    for f, _ in rows:
        shutil.copy(imagenet_val / "images" / f, tmp_path / "l" / f)
    (tmp_path / "l" / "labels.csv").write_text("file,label\n" + "".join(f"{f},{y}\n" for f, y in rows))
    return tmp_path / "l"


@pytest.fixture
def trainable(imagenette, tmp_path) -> Path:
    """DIR/train/<2 classes>/ x 6 real Imagenette images, linked: 12 images, one step of 8 an epoch."""
    for c in sorted(os.listdir(imagenette / "train"))[:2]:
        (tmp_path / "data" / "train" / c).mkdir(parents=True)
        for f in sorted(os.listdir(imagenette / "train" / c))[:6]:
            os.symlink(imagenette / "train" / c / f, tmp_path / "data" / "train" / c / f)
    return tmp_path / "data"


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("squeezenet: error: "), err
    return err[0]


@pytest.mark.parametrize("label", [1003, -1])
def test_a_class_index_beyond_the_model_names_its_line(labelled, label, capsys):
    """Imagenette's model reads ImageNet indices: 1003 or -1 was silently left out, and an accuracy reported."""
    with open(labelled / "labels.csv", "a") as f:
        f.write(f"{next(labelled.glob('*.JPEG')).name},{label}\n")
    assert main(["evaluate", "--weights", "imagenette", "--data", str(labelled), "--limit", "2"]) == 2
    assert f"labels.csv: line 5: class index {label} is out of range 0..999" in _one_line_error(capsys)


def test_a_class_index_beyond_a_model_without_class_names_names_its_line(labelled):
    images = sorted(labelled.glob("*.JPEG"))
    (labelled / "labels.csv").write_text("file,label\n" + "".join(f"{p.name},{i * 5}\n" for i, p in enumerate(images)))
    with pytest.raises(SqueezeNetError, match=r"labels.csv: line 4: class index 10 is out of range 0..9$"):
        list_samples(labelled, num_classes=10)
    assert list_samples(labelled, num_classes=11).labels == [0, 5, 10]


def test_a_symlink_loop_in_the_training_data_is_named_or_skipped(trainable, tmp_path, capsys):
    a, b = sorted((trainable / "train").iterdir())
    os.symlink("self.JPEG", a / "self.JPEG")  # a file linked to itself
    os.symlink("loop", a / "loop")  # the same, without an image suffix
    os.symlink("..", b / "up.JPEG")  # a folder loop
    os.symlink("cycle", trainable / "train" / "cycle")  # a class folder linked to itself
    args = ["train", "--data", str(trainable), "--epochs", "1", *FAST, "--cache-dir", str(tmp_path / "cache")]
    assert main([*args, "--out", str(tmp_path / "run")]) == 2
    assert f"cannot read image {a / 'self.JPEG'}: " in _one_line_error(capsys)
    with pytest.warns(UserWarning) as said:
        assert main([*args, "--out", str(tmp_path / "run"), "--overwrite", "--skip-bad"]) == 0
    text = " ".join(str(w.message) for w in said)
    assert "skipped 2 unreadable image(s)" in text and str(a / "self.JPEG") in text and str(b / "up.JPEG") in text


def test_skip_bad_names_the_first_five_images_it_left_out_and_counts_the_rest(folder, tmp_path):
    bad = sorted(folder.glob("*/*"))[:7]
    for p in bad:
        p.write_bytes(p.read_bytes()[:300])  # truncated JPEGs
    for hit in (False, True):  # decoded, then found in the cache: both say which
        with pytest.warns(UserWarning) as said:
            d = decode_cached(list_samples(folder), 32, tmp_path / "cache", skip_bad=True, progress=False)
        assert len(d) == 3 and len(said) == 1, (hit, [str(w.message) for w in said])
        text = str(said[0].message)
        assert text.startswith("skipped 7 unreadable image(s): ") and text.endswith(" (and 2 more)")
        assert [p.name in text for p in bad] == [True] * 5 + [False] * 2


def _train(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "squeezenet", "train", *args], text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    end = time.time() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < end, f"{path} never appeared"
        time.sleep(0.05)


def test_ctrl_c_during_training_says_where_the_checkpoint_is_and_how_to_resume(trainable, tmp_path):
    run = tmp_path / "run"
    p = _train(["--data", str(trainable), "--out", str(run), "--epochs", "400", *FAST,
                "--cache-dir", str(tmp_path / "cache")])
    _wait_for(run / "metrics.jsonl", p)  # an epoch done
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    last = err.strip().splitlines()[-1]
    assert p.returncode == 130 and "Traceback" not in err, err
    assert f"checkpoint written to {run / 'checkpoint.pt'}; `squeezenet train --resume {run}` continues" in last


def test_ctrl_c_before_the_first_checkpoint_says_there_is_nothing_to_resume(trainable, tmp_path, monkeypatch,
                                                                             capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("squeezenet.training.loop.load_split", interrupted)  # while the images decode
    run = tmp_path / "run"
    assert main(["train", "--data", str(trainable), "--out", str(run), *FAST, "--cache-dir",
                 str(tmp_path / "cache")]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("squeezenet: stopped by SIGINT before the run's first checkpoint: nothing to resume, run the "
                       "same command again")


def test_ctrl_c_between_checkpoints_names_the_last_one(trainable, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(trainable), "--out", str(run), "--epochs", "2", "--max-steps", "1", *FAST,
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    capsys.readouterr()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("squeezenet.training.loop.train", interrupted)  # e.g. while the images decode
    assert main(["train", "--resume", str(run)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"squeezenet: stopped by SIGINT: no checkpoint written since "
                                               f"{run / 'checkpoint.pt'} at "), err
    assert err[0].endswith(f"`squeezenet train --resume {run}` continues from it")


def test_the_next_command_removes_what_a_killed_writer_left_beside_its_output(tmp_path, capsys):
    writer = ("import sys, time\nfrom squeezenet.atomic import atomic_path\n"
              "with atomic_path(sys.argv[1]) as tmp:\n    print(tmp, flush=True)\n    time.sleep(120)\n")
    p = subprocess.Popen([sys.executable, "-c", writer, str(tmp_path / "out" / "small.sqz")], text=True,
                         stdout=subprocess.PIPE)
    left = Path(p.stdout.readline().strip())  # a `compress --out out/small.sqz` killed while writing
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert left.exists() and left.parent == tmp_path / "out"
    impossible = tmp_path / "out" / ".x.bin.99999999999999999999.abcd_123.tmp"  # no process has that pid
    alive = tmp_path / "out" / f".other.sqz.{os.getpid()}.abcd_123.tmp"  # a writer still at work
    mine = tmp_path / "out" / ".notes.2024.tmp"  # not a writer's temporary file
    for f in (impossible, alive, mine):
        f.write_bytes(b"x")
    assert main(["convert", "imagenette", "--out", str(tmp_path / "out" / "m.safetensors")]) == 0
    assert not left.exists() and not impossible.exists() and alive.exists() and mine.exists()
    assert (tmp_path / "out" / "m.safetensors").is_file()
