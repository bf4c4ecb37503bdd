"""The pipeline end to end on small real inputs: prune + retrain + quantize + fine-tune + encode, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import squeezenet
from squeezenet import sqzformat
from squeezenet.cli import main
from squeezenet.compress import CompressOptions, check_disjoint, compress, format_report, report
from squeezenet.errors import SqueezeNetError
from squeezenet.preprocess import preset
from squeezenet.registry import create_model
from squeezenet.weights import Weights, save


@pytest.fixture(scope="module")
def tiny(imagenette, tmp_path_factory):
    """An (untrained) narrow 10-class SqueezeNet v1.1 at 64 px with Imagenette's classes, saved as safetensors."""
    torch.manual_seed(0)
    classes = sorted(p.name for p in (imagenette / "train").iterdir() if p.is_dir())
    model = create_model("squeezenet1_1", num_classes=10, base_e=32, incr_e=32)
    w = Weights.from_model(model, classes, preset("torchvision", 64), class_ids=classes)
    path = tmp_path_factory.mktemp("tiny") / "tiny.safetensors"
    save(w, path)
    return w, path


def test_full_pipeline_keeps_masks_and_codes(tiny, imagenette, tmp_path, monkeypatch):
    monkeypatch.setenv("SQUEEZENET_CACHE", str(tmp_path / "cache"))
    w, _ = tiny
    opts = CompressOptions(profile="table1", bits=4, retrain_epochs=1, finetune_epochs=1, loss="both",
                           batch_size=8, train_limit=16)
    res = compress(w, opts, imagenette / "train", log=lambda m: None)
    d = sqzformat.decode(res.data)
    conv10 = d.weights.state_dict["classifier.1.weight"]
    assert float((conv10 != 0).float().mean()) == pytest.approx(0.2, abs=0.01)  # Table 1's density held
    assert all(len(np.unique(q.codebook)) <= 16 for q in d.quantized.values())
    rep = report(res)
    assert rep["total_bytes"] == len(res.data) and [r["layer"] for r in rep["layers"]][:2] == ["conv1", "fire2"]
    assert [s["stage"] for s in rep["stages"]][:2] == ["fp32", "pruned"]
    assert "total" in format_report(rep)


def test_cli_compress_json_and_errors(tiny, tmp_path, capsys, imagenette):
    _, path = tiny
    out = tmp_path / "t.sqz"
    assert main(["compress", "--weights", str(path), "--density", "0.3", "--out", str(out), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["total_bytes"] == out.stat().st_size and {"layers", "total_bytes"} <= set(rep)
    assert squeezenet.load(out).build()(torch.zeros(1, 3, 64, 64)).shape == (1, 10)
    assert main(["evaluate", "--weights", str(out), "--data", str(imagenette / "val"), "--limit", "4"]) == 0
    capsys.readouterr()
    assert main(["summary", "--weights", str(out), "--input-size", "64", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["compression"]["total_bytes"] == out.stat().st_size and table["total"]["params"] > 0
    assert main(["compress", "--weights", str(path), "--out", str(out), "--finetune-epochs", "1"]) == 2
    assert "need --data" in capsys.readouterr().err
    assert main(["compress", "--weights", str(path), "--out", str(out), "--data", str(imagenette / "val"),
                 "--eval-data", str(imagenette / "val")]) == 2
    assert "evaluation" in capsys.readouterr().err


def test_check_disjoint(imagenette):
    check_disjoint(imagenette / "train", imagenette / "val")
    with pytest.raises(SqueezeNetError):
        check_disjoint(imagenette, imagenette / "val")
