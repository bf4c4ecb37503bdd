"""The design-space exploration: plans, a real two-configuration sweep on a few images, and resuming."""

import json
import subprocess
import sys

import pytest

from squeezenet.cli import main
from squeezenet.experiments import explore


@pytest.fixture(scope="module")
def tiny_data(imagenette, tmp_path_factory):
    """2 classes x (8 train, 4 val) real Imagenette images, linked into a temporary folder."""
    root = tmp_path_factory.mktemp("tiny")
    for split, n in (("train", 8), ("val", 4)):
        for wnid in ("n01440764", "n03394916"):
            d = root / split / wnid
            d.mkdir(parents=True)
            for p in sorted((imagenette / split / wnid).iterdir())[:n]:
                (d / p.name).symlink_to(p)
    return root


def test_plans_follow_the_paper(tmp_path):
    assert [t.overrides["sr"] for t in explore.plan("sr", tmp_path)] == [0.125, 0.25, 0.5, 0.75, 1.0]
    assert {t.overrides["sr"] for t in explore.plan("pct3x3", tmp_path)} == {0.5}
    assert [t.overrides["bypass"] for t in explore.plan("bypass", tmp_path)] == ["none", "simple", "complex"]
    assert len(explore.plan("grid", tmp_path)) == 30
    with pytest.raises(ValueError, match="pct3x3"):
        explore.plan("pct3x3", tmp_path, ["1.5"])
    with pytest.raises(ValueError, match="spiral"):
        explore.plan("spiral", tmp_path)


def test_sweep_runs_and_resumes_without_rerunning(tiny_data, tmp_path, capsys):
    """A sweep is a study of enqueued configurations (OUT's journal): run again, it trains nothing; a sweep sharing
    the runs folder reuses a configuration trained with the same arguments and refuses one trained otherwise."""
    out = tmp_path / "sweep"
    args = ["--data", str(tiny_data), "--epochs", "1", "--image-size", "32", "--batch-size", "8", "--cache-dir",
            str(tmp_path / "c")]
    assert main(["--quiet", "explore", "--sweep", "sr", "--values", "0.125", "0.25", "--out", str(out),
                 "--workers", "2", *args]) == 0
    trials = explore.plan("sr", out, ["0.125", "0.25"])
    stamps = [(t.run_dir / "metrics.jsonl").stat().st_mtime_ns for t in trials]
    capsys.readouterr()
    assert main(["--quiet", "explore", "--sweep", "sr", "--values", "0.125", "0.25", "--out", str(out), *args]) == 0
    assert "top-1" not in capsys.readouterr().out  # nothing trained again
    assert [(t.run_dir / "metrics.jsonl").stat().st_mtime_ns for t in trials] == stamps
    rows = json.loads((out / "results.json").read_text())
    assert [r["sr"] for r in rows] == [0.125, 0.25] and rows[0]["params"] < rows[1]["params"]
    assert rows[0]["params_1000_classes"] == 1_248_424  # v1.0, as in the paper
    assert all(0 <= r["top1"] <= 1 and r["train_seconds"] >= 0 and r["epochs"] == 1 for r in rows)
    assert (out / "figure.png").is_file()
    # the bypass sweep's 'none' is v1.0, i.e. SR 0.125: sharing the runs folder, it is not trained again...
    shared = ["--sweep", "bypass", "--values", "none", "--runs", str(out / "runs")]
    assert main(["--quiet", "explore", *shared, "--out", str(tmp_path / "b"), *args]) == 0
    assert (trials[0].run_dir / "metrics.jsonl").stat().st_mtime_ns == stamps[0]
    capsys.readouterr()  # ...unless it was trained otherwise
    assert main(["--quiet", "explore", *shared, "--out", str(tmp_path / "b2"), *args, "--lr", "0.01"]) == 2
    assert "was trained with" in capsys.readouterr().err


def test_dry_run_lists_commands(tiny_data, tmp_path):
    r = subprocess.run([sys.executable, "-m", "squeezenet", "explore", "--sweep", "bypass", "--data", str(tiny_data),
                        "--out", str(tmp_path), "--epochs", "3", "--dry-run"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3 and all("train --model squeezenet1_0" in x and "--epochs 3" in x for x in lines)
    assert "--bypass complex" in lines[2]
