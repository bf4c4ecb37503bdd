"""Training: loss falls on real images, SIGKILL + resume is bit-exact, 2-process torchrun = 1 process, AlexNet."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from squeezenet.cli import main
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.weights import load
from squeezenet.training.loop import train
from squeezenet.training.recipes import TrainConfig, recipe_config
from squeezenet.training.transfer import build_model

TINY = ["--image-size", "40", "--batch-size", "12", "--threads", "1", "--warmup-epochs", "0.5"]


def _run(args, env_extra=None, **kw):
    env = os.environ | {"SQUEEZENET_CACHE": kw.pop("cache")} | (env_extra or {})
    return subprocess.Popen([sys.executable, "-m", "squeezenet", "train", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)


def test_loss_falls(tiny, tmp_path):
    cfg = TrainConfig(data=str(tiny), out=str(tmp_path / "run"), epochs=6, batch_size=12, lr=0.05, image_size=40,
                      min_scale=1.0, warmup_epochs=0.5, threads=1, cache_dir=str(tmp_path / "cache"),
                      model_overrides={"batch_norm": True, "final_relu": False})
    last = train(cfg)
    hist = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert len(hist) == 6 and last["epoch"] == 6
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] - 0.1
    assert (tmp_path / "run" / "curves.png").stat().st_size > 0
    w = load(tmp_path / "run" / "model.safetensors")  # the trained model with its metadata
    assert w.num_classes == 3 and w.preprocessing.crop_size == 40 and w.config["batch_norm"]
    assert main(["evaluate", "--weights", str(tmp_path / "run" / "model.safetensors"),
                 "--data", str(tiny / "val")]) == 0


def test_sigkill_then_resume_is_bit_exact(tiny, tmp_path):
    args = ["--data", str(tiny), "--epochs", "2", "--checkpoint-every", "1", *TINY]
    cache = str(tmp_path / "cache")
    ref = _run([*args, "--out", str(tmp_path / "ref")], cache=cache)
    assert ref.wait(timeout=300) == 0, ref.stderr.read()
    run = tmp_path / "killed"
    p = _run([*args, "--out", str(run)], cache=cache)
    deadline = time.time() + 300
    while not (run / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.02)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert p.poll() is None, "finished before it could be killed"
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert state["epoch"] == 0 and not (run / "model.safetensors").exists()  # killed during the first epoch
    r = _run(["--resume", str(run)], cache=cache)
    assert r.wait(timeout=300) == 0, r.stderr.read()
    a, b = load_file(tmp_path / "ref" / "model.safetensors"), load_file(run / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_torchrun_two_processes_match_one(tiny, tmp_path):
    args = ["--data", str(tiny), "--epochs", "1", "--recipe", "no-final-relu", "--dropout", "0", "--accum", "2", *TINY]
    cache = str(tmp_path / "cache")
    one = _run([*args, "--out", str(tmp_path / "one")], cache=cache)
    assert one.wait(timeout=300) == 0, one.stderr.read()
    env = os.environ | {"SQUEEZENET_CACHE": cache, "OMP_NUM_THREADS": "1"}
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "squeezenet", "train", *args, "--out", str(tmp_path / "two")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    a, b = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5


def test_bad_input_is_one_line(tiny, tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    assert "data folder not found" in capsys.readouterr().err
    assert main(["train", "--data", str(tiny), "--out", str(tmp_path / "r"), "--batch-size", "10", "--accum",
                 "3"]) == 2
    assert "not divisible" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2


def test_init_from_authors_model(tiny, authors_model, tmp_path):
    """Transfer: a new 3-class conv10 started from the matching ImageNet rows, features frozen."""
    net = authors_model / "compressed_SqueezeNet.net"
    cfg = TrainConfig(data=str(tiny), out=str(tmp_path / "ft"), epochs=1, batch_size=12, lr=0.001, image_size=64,
                      threads=1, init_from=str(net), freeze_features=True, cache_dir=str(tmp_path / "cache"))
    before = load(net).state_dict["features.0.weight"]
    last = train(cfg)
    w = load(tmp_path / "ft" / "model.safetensors")
    assert w.num_classes == 3 and w.config["conv10_padding"] == 1 and w.preprocessing.channel_order == "BGR"
    assert torch.equal(w.state_dict["features.0.weight"], before)  # frozen
    assert last["val_top1"] > 0.8  # the ImageNet rows already know these classes


def test_alexnet_trains_saves_and_evaluates(tiny, tmp_path):
    """`--model alexnet` takes its own recipe (Kaiming init, decay 5e-4); fc6 follows the image size."""
    cfg = recipe_config(None, data=str(tiny), out=str(tmp_path / "run"), model="alexnet", epochs=2, batch_size=12,
                        lr=0.005, image_size=64, warmup_epochs=0.5, threads=1, cache_dir=str(tmp_path / "cache"))
    assert cfg.weight_decay == 5e-4 and cfg.model_overrides == {"init": "kaiming"}
    last = train(cfg)
    assert math.isfinite(last["train_loss"]) and "val_top1" in last and "conv10_nonpositive" not in last
    w = load(tmp_path / "run" / "model.safetensors")
    assert w.arch == "alexnet" and w.config["image_size"] == 64 and w.num_classes == 3
    assert w.build().layers()["fc6"].in_features == 256
    saved = str(tmp_path / "run" / "model.safetensors")
    assert main(["evaluate", "--weights", saved, "--data", str(tiny / "val")]) == 0
    # started from it on two of its classes: fc8 keeps their rows
    two = TrainConfig(data=str(tiny), out=str(tmp_path / "ft"), model="alexnet", image_size=64,
                      init_from=saved)
    model, _ = build_model(two, w.class_ids[1:])
    assert torch.equal(model.layers()["fc8"].weight, w.state_dict["classifier.6.weight"][1:])
    with pytest.raises(SqueezeNetError, match="does not fit"):
        build_model(replace(two, image_size=128), w.class_ids)
    with pytest.raises(SqueezeNetError, match="another architecture"):
        build_model(recipe_config("bn", data=str(tiny), out=str(tmp_path / "x"), model="alexnet"), w.class_ids)


def test_a_run_folder_is_never_silently_replaced(tiny, tmp_path, capsys):
    """A finished run is refused without --overwrite; --resume of nothing is an error; one train per folder."""
    from squeezenet.training.checkpoint import lock_run_folder as _lock

    args = ["train", "--data", str(tiny), "--out", str(tmp_path / "r"), "--epochs", "1", "--batch-size", "12",
            "--image-size", "32", "--threads", "1", "--cache-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    model = (tmp_path / "r" / "model.safetensors").read_bytes()
    capsys.readouterr()
    assert main(args) == 2 and "already holds a run" in capsys.readouterr().err
    assert (tmp_path / "r" / "model.safetensors").read_bytes() == model
    assert main([*args, "--overwrite", "--seed", "1"]) == 0
    assert (tmp_path / "r" / "model.safetensors").read_bytes() != model
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text((tmp_path / "r" / "config.json").read_text())
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "empty")]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    held = _lock(tmp_path / "busy")
    try:
        busy = ["train", "--data", str(tiny), "--out", str(tmp_path / "busy"), "--epochs", "1", "--batch-size", "12"]
        r = subprocess.run([sys.executable, "-m", "squeezenet", *busy], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 2 and "in use by another" in r.stderr
    finally:
        held.close()
