"""The design-space exploration: plans, a real two-configuration sweep on a few images, and resuming."""

import json
import subprocess
import sys

import pytest

from squeezenet.errors import SqueezeNetError
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


def test_sweep_runs_and_resumes_without_rerunning(tiny_data, tmp_path):
    out = tmp_path / "sweep"
    trials = explore.plan("sr", out, ["0.125", "0.25"])
    train_args = ["--epochs", "1", "--image-size", "32", "--batch-size", "8", "--cache-dir", str(tmp_path / "c")]
    # an interrupted sweep: only the first configuration finished
    assert [r["ok"] for r in explore.run(trials[:1], tiny_data, train_args, log=lambda s: None)] == [True]
    first = trials[0].run_dir / "metrics.jsonl"
    stamp = first.stat().st_mtime_ns
    logged = []
    results = explore.run(trials, tiny_data, train_args, workers=2, log=logged.append)
    assert [r["name"] for r in results] == [trials[1].name]  # the finished one was not trained again
    assert f"skip {trials[0].name}: finished" in logged and first.stat().st_mtime_ns == stamp
    rows = explore.collect(trials)
    assert [r["sr"] for r in rows] == [0.125, 0.25] and rows[0]["params"] < rows[1]["params"]
    assert rows[0]["params_1000_classes"] == 1_248_424  # v1.0, as in the paper
    assert all(0 <= r["top1"] <= 1 and r["top5"] == 1.0 and r["train_seconds"] > 0 for r in rows)  # 2 classes
    # the bypass sweep's 'none' is v1.0, i.e. SR 0.125: sharing the runs folder, it is not trained again...
    shared = explore.plan("bypass", tmp_path / "bypass", ["none"], runs=out / "runs")
    assert shared[0].run_dir == trials[0].run_dir and explore.run(shared, tiny_data, train_args, log=print) == []
    with pytest.raises(SqueezeNetError, match="trained with"):  # ...unless it was trained otherwise
        explore.run(shared, tiny_data, [*train_args, "--lr", "0.01"], log=print)
    paths = explore.write_results(rows, out, "sr sweep")
    assert json.loads(paths[1].read_text())[1]["bytes_fp32"] == 4 * rows[1]["params"]
    assert paths[2].stat().st_size > 5_000


def test_dry_run_lists_commands(tiny_data, tmp_path):
    r = subprocess.run([sys.executable, "-m", "squeezenet", "explore", "--sweep", "bypass", "--data", str(tiny_data),
                        "--out", str(tmp_path), "--epochs", "3", "--dry-run"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3 and all("train --model squeezenet1_0" in x and "--epochs 3" in x for x in lines)
    assert "--bypass complex" in lines[2]
