"""Transfer from the authors' ImageNet model with the defaults, on a few photos per class (issue 32): the recipe is
said at the start, the batch adapts, config.json names the architecture trained, each epoch's line is printed once,
and train's val figure is evaluate's for the same weights and folder."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import REPO
from squeezenet.cli import main

CLASSES = ("n01440764", "n02102040", "n03000684")  # tench, English springer, chain saw: a user's three classes


def measured() -> float:
    """results/train/transfer/runs.jsonl, row "test-few": the command below, 40 photos a class, the full val folders
    of these classes (1,168 images)."""
    rows = [json.loads(x) for x in (REPO / "results" / "train" / "transfer" / "runs.jsonl").read_text().splitlines()]
    return next(r["evaluate"]["top1"] for r in rows if r["name"] == "test-few")


@pytest.fixture(scope="module")
def photos(imagenette, tmp_path_factory) -> Path:
    """40 training photos per class, and 20 val photos, linked from Imagenette."""
    root = tmp_path_factory.mktemp("photos")
    for split, n in (("train", 40), ("val", 20)):
        for c in CLASSES:
            (root / split / c).mkdir(parents=True)
            for f in sorted(os.listdir(imagenette / split / c))[:n]:
                os.symlink(imagenette / split / c / f, root / split / c / f)
    return root


def test_transfer_with_the_defaults_on_a_few_photos(photos, authors_model, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["--quiet", "train", "--init-from", str(authors_model / "compressed_SqueezeNet.net"), "--data",
                 str(photos), "--out", str(run), "--epochs", "3", "--image-size", "128", "--cache-dir",
                 str(tmp_path / "cache")]) == 0
    out, err = capsys.readouterr()
    assert "recipe transfer, lr 0.01, warm-up 0.2 epoch" in err and "features frozen" in err
    assert "120 training images are fewer than one batch of 128: batch 16 and lr 0.00125 instead" in err
    config = json.loads((run / "config.json").read_text())
    assert (config["model"], config["batch_size"]) == ("squeezenet1_0_caffe", 16)  # the authors' v1.0, as trained
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert [r["epoch"] for r in lines] == [1, 2, 3] and "{}" not in out  # each epoch's line once
    last = lines[-1]
    assert "val_top5" not in last  # 3 classes: top-5 would always be 100%
    assert f"epoch 3, val top-1 {last['val_top1']:.2%}" in err
    assert main(["evaluate", "--weights", str(run / "model.safetensors"), "--data", str(photos / "val"),
                 "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["top1"] == pytest.approx(last["val_top1"], abs=1e-6)  # one figure for the same weights
    assert last["val_top1"] >= measured() - 0.1  # 60 of those val images: a few points of standard error
