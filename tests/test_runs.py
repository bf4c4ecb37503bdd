"""Runs that survive faults and refuse what would change them: SIGTERM, a dead launcher, a full disk, a resumed run's
flags, mid-epoch resume metrics, paths kept absolute; a sweep forwards SIGTERM to its runs (fixtures made here)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from squeezenet.atomic import write_text
from squeezenet.cli import main

FAST = ["--image-size", "32", "--batch-size", "6", "--threads", "1", "--warmup-epochs", "0"]


def _cli(args: list[str], cwd: Path | None = None, cache: Path | None = None, **kw) -> subprocess.Popen:
    env = os.environ | {"SQUEEZENET_CACHE": str(cache)} if cache else os.environ
    return subprocess.Popen([sys.executable, "-m", "squeezenet", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 60) -> None:
    end = time.time() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < end, f"{path} never appeared"
        time.sleep(0.1)


def _rows(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("seconds")}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_sigterm_checkpoints_and_resume_from_elsewhere_finishes(tiny, tmp_path):
    run = tmp_path / "run"
    p = _cli(["train", "--data", str(tiny), "--out", "run", "--epochs", "400", *FAST], cwd=tmp_path,
             cache=tmp_path / "cache")
    _wait_for(run / "metrics.jsonl", p)  # an epoch done: training is under way
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + signal.SIGTERM
    assert "checkpoint written" in err and "Traceback" not in err, err
    cfg = json.loads((run / "config.json").read_text())
    assert Path(cfg["data"]).is_absolute()  # --resume works from any working directory
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = _cli(["train", "--resume", str(run), "--max-steps", "30"], cwd=elsewhere, cache=tmp_path / "cache")
    _, err = r.communicate(timeout=120)
    assert r.returncode == 0, err
    assert not list(run.glob(".*.tmp"))


def test_resume_refuses_flags_that_would_change_the_run(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny), "--out", str(run), "--epochs", "2", "--max-steps", "1", *FAST,
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "5", "--lr", "9"]) == 2
    err = capsys.readouterr().err
    assert "--epochs, --lr would change it" in err and len(err.strip().splitlines()) == 1
    assert main(["train", "--resume", str(run), "--sr", "0.5"]) == 2
    assert main(["train", "--resume", str(run), "--max-steps", "2", "--threads", "1"]) == 0  # how, not what


def test_a_mid_epoch_resume_reports_the_whole_epoch(tiny, tmp_path):
    """36 images, batch 6: 6 steps an epoch. Stopped after 2 and resumed, the metrics are an unbroken run's."""
    common = ["--data", str(tiny), "--epochs", "2", *FAST, "--cache-dir", str(tmp_path / "cache")]
    assert main(["train", *common, "--out", str(tmp_path / "a")]) == 0
    assert main(["train", *common, "--out", str(tmp_path / "b"), "--max-steps", "2"]) == 0
    assert main(["train", "--resume", str(tmp_path / "b"), "--max-steps", "12"]) == 0
    assert _rows(tmp_path / "a") == _rows(tmp_path / "b")


def test_training_without_a_val_split_writes_its_model(tiny, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny / "train", data / "train", symlinks=True)
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1", *FAST,
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    assert (tmp_path / "run" / "model.safetensors").is_file() and (tmp_path / "run" / "curves.png").is_file()


def test_labels_csv_splits_train(imagenet_val, tmp_path):
    """train/labels.csv and val/labels.csv (ImageNet indices): a 1000-class run."""
    rows = (imagenet_val / "labels.csv").read_text().splitlines()[1:]
    for split, part in (("train", rows[:12]), ("val", rows[12:16])):
        (tmp_path / "data" / split / "images").mkdir(parents=True)
        for line in part:
            name = line.split(",")[0]
            os.symlink(imagenet_val / "images" / name, tmp_path / "data" / split / "images" / name)
        write_text(tmp_path / "data" / split / "labels.csv", "file,label\n" + "\n".join(part) + "\n")
    assert main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--epochs", "1",
                 *FAST, "--cache-dir", str(tmp_path / "cache")]) == 0
    from squeezenet.formats.weights import load

    assert load(tmp_path / "run" / "model.safetensors").num_classes == 1000


def _pid_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def test_a_worker_stops_when_its_launcher_is_killed(tmp_path):
    """What a torchrun worker does (`init_processes` under TORCHELASTIC_RUN_ID): kill -9 of the launcher stops it."""
    worker = ("import time; from squeezenet.signals import install; install(); "
              "from squeezenet.signals import die_with_parent; die_with_parent(); time.sleep(60)")
    launcher = (f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', {worker!r}]); "
                "print(p.pid, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", launcher], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    time.sleep(1.0)  # the worker has imported and set its parent-death signal
    parent.kill()
    parent.wait()
    end = time.time() + 10
    while not _pid_gone(child) and time.time() < end:
        time.sleep(0.1)
    assert _pid_gone(child)


def test_explore_forwards_sigterm_and_leaves_no_orphan(tiny, tmp_path):
    p = _cli(["explore", "--sweep", "sr", "--values", "0.5", "--data", str(tiny), "--out", str(tmp_path / "ex"),
              "--epochs", "400", "--image-size", "32", "--batch-size", "6", "--threads", "1"],
             cache=tmp_path / "cache")
    run = tmp_path / "ex" / "runs" / "sr-0.5_pct3x3-0.5_bypass-none"
    _wait_for(run / "metrics.jsonl", p, 120)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 128 + signal.SIGTERM, err
    assert (run / "checkpoint.pt").is_file() and not (run / "done.json").exists()
    assert "checkpoint written" in (run / "train.log").read_text()
    alive = [d for d in os.listdir("/proc") if d.isdigit() and not _pid_gone(int(d))
             and str(run).encode() in Path(f"/proc/{d}/cmdline").read_bytes()]
    assert not alive


def _tmpfs(path: Path, size: str) -> None:
    path.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                      capture_output=True).returncode != 0:
        pytest.skip("needs a tmpfs mount (root) to fill a disk")


def test_a_full_disk_is_one_line_naming_the_file(tiny, tmp_path, capsys):
    full = tmp_path / "full"
    _tmpfs(full, "64k")
    try:
        assert main(["convert", "imagenette", "--out", str(full / "x.safetensors")]) == 2
        err = capsys.readouterr().err
        assert "No space left on device" in err and "x.safetensors" in err and len(err.strip().splitlines()) == 1
        assert main(["train", "--data", str(tiny), "--out", str(full / "run"), "--epochs", "1", *FAST,
                     "--cache-dir", str(tmp_path / "cache")]) == 2
        assert "No space left on device" in capsys.readouterr().err
        assert not [p for p in full.rglob("*") if p.name.endswith(".tmp")]
    finally:
        subprocess.run(["umount", str(full)], check=False)


def test_stale_temporary_files_of_a_killed_writer_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f".x.json.{dead}.abc123.tmp"
    live = tmp_path / f".x.json.{os.getpid()}.def456.tmp"  # a writer still at work: kept
    stale.write_text("half")
    live.write_text("half")
    write_text(tmp_path / "x.json", "{}")
    assert not stale.exists() and live.exists() and (tmp_path / "x.json").read_text() == "{}"


def test_a_checkpoint_of_another_architecture_is_one_line(tiny, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny), "--out", str(run), "--epochs", "2", "--max-steps", "1", *FAST,
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    cfg = json.loads((run / "config.json").read_text())
    write_text(run / "config.json", json.dumps(cfg | {"model": "squeezenet1_0"}))  # not what the checkpoint holds
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--max-steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "checkpoint of another architecture" in err and len(err.strip().splitlines()) == 1
