"""Explore's studies: two worker processes share one (a journal file, and a real PostgreSQL server when
$SQUEEZENET_TEST_POSTGRES names one, as .ci/run starts), one is killed mid-trial and nothing is lost or trained
twice; a configuration over the RAM limit is never trained; the one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from squeezenet.deploy.cengine.graph import lower
from squeezenet.deploy.cengine.planner import smallest_plan
from squeezenet.deploy.cengine.targets import firmware_ram
from squeezenet.experiments import study
from squeezenet.experiments.device import costs
from squeezenet.models.registry import create_model

POSTGRES = os.environ.get("SQUEEZENET_TEST_POSTGRES")
TRAIN = ["--epochs", "1", "--batch-size", "8", "--threads", "1", "--heartbeat", "1"]


@pytest.fixture(scope="module")
def data(imagenette, tmp_path_factory) -> Path:
    """3 classes x (8 train, 3 val) real Imagenette images."""
    root = tmp_path_factory.mktemp("three")
    for split, n in (("train", 8), ("val", 3)):
        for wnid in ("n01440764", "n03394916", "n03888257"):
            (root / split / wnid).mkdir(parents=True)
            for p in sorted((imagenette / split / wnid).iterdir())[:n]:
                (root / split / wnid / p.name).symlink_to(p)
    return root


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "squeezenet", "--quiet", "explore", *args]


def test_costs_are_the_engines():
    net = create_model("squeezenet1_1", num_classes=10)
    c = costs("squeezenet1_1", {}, 128, 10)
    assert c["ram"] == firmware_ram(smallest_plan(lower(net, 128)).arena, 10) < 48 << 10
    assert c["params"] == 727_626 and c["macs"] == 80_342_720
    assert 500_000 < c["flash"] < 540_000  # the bundled model's firmware: 517,728 bytes


def _storage(backend: str, tmp_path: Path) -> list[str]:
    if backend == "journal":
        return []
    if not POSTGRES:
        pytest.skip("needs a PostgreSQL server: set SQUEEZENET_TEST_POSTGRES=postgresql://... (.ci/postgres "
                    "starts one; Debian: apt-get install postgresql)")
    return ["--storage", POSTGRES, "--study", f"t{os.getpid()}{time.time_ns() % 10**6}"]


def _running(out: Path, pid: int, storage: list[str]):
    """The trial the worker `pid` is training, once its run has started."""
    try:
        s, _ = study.open_study(study.storage(storage[1] if storage else None, out), storage[3] if storage else
                                "search", None)
    except Exception:
        return None
    for t in s.get_trials(deepcopy=False):
        if t.state.name == "RUNNING" and t.user_attrs.get("worker", "").endswith(f":{pid}") and \
                (Path(t.user_attrs.get("run_dir", "/nonexistent")) / "train.log").exists():
            return t
    return None


@pytest.mark.parametrize("backend", ["journal", "postgres"])
def test_two_workers_one_killed_mid_trial(backend, data, tmp_path):
    storage, out = _storage(backend, tmp_path), tmp_path / "search"
    v10, v11 = (firmware_ram(smallest_plan(lower(create_model(m, num_classes=3), 32)).arena, 3)
                for m in ("squeezenet1_0", "squeezenet1_1"))
    limit = (v10 + v11) // 2  # v1.1 fits, v1.0 does not
    first = subprocess.Popen(_cmd("--search", "--trials", "2", "--sizes", "32", "--max-ram", str(limit),
                                  "--data", str(data), "--out", str(out), *TRAIN, *storage))
    deadline = time.time() + 120
    while (victim := _running(out, first.pid, storage)) is None:
        assert first.poll() is None and time.time() < deadline, "the first worker never started a trial"
        time.sleep(0.5)
    second = subprocess.Popen(_cmd("--worker", "--study", storage[3] if storage else "search", "--data", str(data),
                                   "--out", str(out), *TRAIN, *storage[:2]))
    time.sleep(2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert second.wait(timeout=300) == 0
    s, _ = study.open_study(study.storage(storage[1] if storage else None, out),
                            storage[3] if storage else "search", None)
    trials = s.get_trials(deepcopy=False)
    done = [t for t in trials if t.state.name == "COMPLETE"]
    assert [t.state.name for t in trials if t.number == victim.number] == ["FAIL"]
    assert victim.user_attrs["run_dir"] in {t.user_attrs["run_dir"] for t in done}  # taken over, resumed
    runs = [Path(t.user_attrs["run_dir"]) for t in done]
    assert len(runs) == len(set(runs)) >= 1  # every configuration once
    for run in runs:  # complete, and trained once: one epoch in its metrics
        assert (run / "done.json").is_file() and len((run / "metrics.jsonl").read_text().splitlines()) == 1
    excluded = [t for t in trials if t.state.name == "PRUNED"]
    assert any(t.params["model"] == "squeezenet1_0" and t.user_attrs["excluded"].startswith("ram ") and
               "run_dir" in t.user_attrs and not Path(t.user_attrs["run_dir"]).exists() for t in excluded)
    front = json.loads((out / "results.json").read_text())
    assert {r["state"] for r in front} <= {"complete", "pruned"} and (out / "pareto.png").stat().st_size > 5_000


def _error(*args: str) -> str:
    r = subprocess.run(_cmd(*args), capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    return r.stderr


def test_bad_storage_space_or_limits_are_one_line(data, tmp_path):
    out = str(tmp_path / "x")
    assert "cannot open the study storage postgresql://bob@127.0.0.1:9/db: connection" in _error(
        "--worker", "--study", "s", "--storage", "postgresql://bob:secret@127.0.0.1:9/db", "--data", str(data),
        "--out", out)
    assert "no configuration of the search space meets --max-ram 1,024" in _error(
        "--search", "--max-ram", "1K", "--sizes", "32", "--data", str(data), "--out", out)
    assert "no study 'nope' in this storage" in _error("--worker", "--study", "nope", "--data", str(data), "--out",
                                                       out)
    assert subprocess.run(_cmd("--sweep", "sr", "--values", "0.125", "--dry-run", "--data", str(data), "--out", out),
                          capture_output=True).returncode == 0
    s, _ = study.open_study(study.storage(None, out), "sr", {"kind": "sweep", "sweep": "sr"})
    assert "study 'sr' explores another space" in _error("--sweep", "sr", "--values", "0.25", "--data", str(data),
                                                         "--out", out, "--epochs", "1")
