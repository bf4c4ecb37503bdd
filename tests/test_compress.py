"""The pipeline end to end on small real inputs: prune + retrain + quantize + fine-tune + encode, the CLI, AlexNet."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import squeezenet
from squeezenet.cli import main
from squeezenet.compression.finetune import Batches
from squeezenet.compression.lowrank import factorize
from squeezenet.compression.options import CompressOptions
from squeezenet.compression.pipeline import compress
from squeezenet.compression.quantize import layer_bits
from squeezenet.compression.sizes import format_report, report, sparse_fp32_bytes
from squeezenet.data.folders import check_disjoint
from squeezenet.errors import SqueezeNetError
from squeezenet.formats import sqz as sqzformat
from squeezenet.formats.safetensors import save
from squeezenet.formats.weights import Weights
from squeezenet.models.preprocessing import preset
from squeezenet.models.registry import create_model


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
    text = format_report(rep).splitlines()
    total = next(line for line in text if line.startswith("total"))
    assert f"{sum(r['params'] for r in rep['layers']):,}" in total and f"{sum(r['bytes'] for r in rep['layers']):,}" \
        in total
    assert any(line.startswith(f"file: {len(res.data):,} bytes") for line in text)


def test_mixup_blends_two_real_images_and_the_fisher_batches_are_not_blended(tiny, imagenette, tmp_path,
                                                                            monkeypatch):
    monkeypatch.setenv("SQUEEZENET_CACHE", str(tmp_path / "cache"))
    w, _ = tiny
    plain, mixed = (Batches(w, imagenette / "train", CompressOptions(batch_size=8, train_limit=16, mixup=m))
                    for m in (0.0, 0.4))
    assert torch.equal(plain()[0], mixed(mix=False)[0])  # what `fisher` draws: the images as they are
    x, y = plain()
    xm, ym = mixed()
    assert torch.equal(y, ym) and not torch.equal(x, xm)
    means, mixed_means = x.mean((1, 2, 3)), xm.mean((1, 2, 3))  # each blend lies between the batch's images
    assert bool(((mixed_means >= means.min() - 1e-4) & (mixed_means <= means.max() + 1e-4)).all())


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


@pytest.fixture(scope="module")
def alexnet(imagenette, tmp_path_factory):
    """An (untrained) 10-class AlexNet at 64 px with Imagenette's classes, saved as safetensors."""
    torch.manual_seed(0)
    classes = sorted(p.name for p in (imagenette / "train").iterdir() if p.is_dir())
    model = create_model("alexnet", num_classes=10, image_size=64, init="kaiming")
    path = tmp_path_factory.mktemp("alexnet") / "alexnet.safetensors"
    save(Weights.from_model(model, classes, preset("torchvision", 64), class_ids=classes), path)
    return path


def test_alexnet_svd_row(alexnet, imagenette, tmp_path, capsys, monkeypatch):
    """SVD of fc6 and fc7 (fc8 would not shrink), fine-tuned by distillation, kept fp32 as safetensors."""
    monkeypatch.setenv("SQUEEZENET_CACHE", str(tmp_path / "cache"))
    svd = tmp_path / "svd.safetensors"
    assert main(["compress", "--weights", str(alexnet), "--svd", "64", "--retrain-epochs", "1", "--no-quantize",
                 "--data", str(imagenette / "train"), "--train-limit", "16", "--batch-size", "8", "--out", str(svd),
                 "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    w = squeezenet.load(svd)
    assert w.config["ranks"] == {"fc6": 64, "fc7": 64} and rep["format"] == "fp32"
    assert rep["total_bytes"] == 4 * sum(v.numel() for v in w.state_dict.values())
    assert [s["stage"] for s in rep["stages"]] == ["fp32", "SVD (rank fc6 64, fc7 64)", "fine-tuned"]
    assert main(["evaluate", "--weights", str(svd), "--data", str(imagenette / "val"), "--limit", "4"]) == 0


def test_alexnet_pruning_and_deep_compression_rows(alexnet, tmp_path, capsys):
    """Han et al.'s densities (AlexNet's default profile), then per-layer bits; fc7 factorised to keep it fast."""
    small = squeezenet.save(factorize(squeezenet.load(alexnet), {"fc7": 64}), tmp_path / "small.safetensors")
    pruned = tmp_path / "pruned.safetensors"
    assert main(["compress", "--weights", str(small), "--no-quantize", "--out", str(pruned), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    model = squeezenet.load(pruned).build()
    assert rep["total_bytes"] == sparse_fp32_bytes(model) and rep["stages"][-1]["stage"] == "pruned"
    density = {r["layer"]: r["density"] for r in rep["layers"]}
    assert density["fc6"] == pytest.approx(0.09, abs=0.01) and density["conv1"] == pytest.approx(0.84, abs=0.01)

    dc = tmp_path / "dc.sqz"
    assert main(["compress", "--weights", str(small), "--bits", "6", "--fc-bits", "4", "--out", str(dc)]) == 0
    assert "quantized 6/4 (conv/fc)-bit, entropy coded" in capsys.readouterr().out
    d = sqzformat.decode(dc.read_bytes())
    assert {k: q.bits for k, q in d.quantized.items()} == layer_bits(d.weights.build(), 6, 4)

    assert main(["compress", "--weights", str(alexnet), "--no-quantize", "--out", str(tmp_path / "x.sqz")]) == 2
    assert "safetensors" in capsys.readouterr().err
    assert main(["compress", "--weights", str(small), "--profile", "table1", "--out", str(tmp_path / "x.sqz")]) == 2
    assert "does not fit" in capsys.readouterr().err


def test_compress_without_data_keeps_the_authors_accuracy(authors_model, imagenet_val, tmp_path, capsys):
    """No --data: the authors' codebooks re-encoded losslessly, so top-1 on imagenet-val-1300 stays theirs."""
    from squeezenet import load
    from squeezenet.data.folders import list_samples
    from squeezenet.training.evaluation import evaluate

    net, out = authors_model / "compressed_SqueezeNet.net", tmp_path / "authors.sqz"
    assert main(["compress", "--weights", str(net), "--out", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    a, b = load(net), load(out)
    assert out.stat().st_size < 560_000 < net.stat().st_size
    assert all(torch.equal(a.state_dict[k], v) for k, v in b.state_dict.items())
    samples = list_samples(imagenet_val, a.class_ids).sample(200)
    ta, tb = (evaluate(w.build(), samples, w.preprocessing, progress=False)["top1"] for w in (a, b))
    assert abs(ta - tb) <= 0.001 and b.preprocessing == a.preprocessing


def test_a_lossy_setting_without_data_says_so(tiny, tmp_path, capsys):
    _, path = tiny
    assert main(["compress", "--weights", str(path), "--out", str(tmp_path / "x.sqz")]) == 0
    err = capsys.readouterr().err
    assert "warning: accuracy not measured" in err and len(err.strip().splitlines()) == 1
    assert main(["compress", "--weights", str(path), "--lossless", "--out", str(tmp_path / "y.sqz")]) == 2
    assert "weight-shared" in capsys.readouterr().err


def test_with_a_dataset_root_the_accuracy_before_and_after_is_printed(tiny, tmp_path, capsys, imagenette):
    _, path = tiny
    root = tmp_path / "data"
    for split, n in (("train", 3), ("val", 2)):
        for wnid in ("n01440764", "n03888257"):
            (root / split / wnid).mkdir(parents=True)
            for p in sorted((imagenette / split / wnid).iterdir())[:n]:
                (root / split / wnid / p.name).symlink_to(p)
    assert main(["compress", "--weights", str(path), "--data", str(root), "--out", str(tmp_path / "x.sqz"),
                 "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert set(rep["accuracy"]) == {"before", "after", "data"} and "4 images of 2 classes" in rep["accuracy"]["data"]
