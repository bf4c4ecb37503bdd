"""Block reconstruction and the wider transfer set, on the bundled Imagenette model and real Imagenette images."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

import squeezenet
from squeezenet.compression.finetune import Batches
from squeezenet.compression.options import CompressOptions
from squeezenet.compression.pipeline import compress
from squeezenet.compression.quantize import quantizable, quantize_model, rd_lambdas
from squeezenet.compression.reconstruct import blocks, reconstruct
from squeezenet.compression.sharing import WeightSharing
from squeezenet.formats import sqz as sqzformat


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SQUEEZENET_CACHE", str(tmp_path / "cache"))


def _small():
    """The bundled model fed 64 px crops: the same network, a quarter of the work."""
    w = squeezenet.load("imagenette")
    return replace(w, preprocessing=w.preprocessing.at_size(64))


def test_blocks_are_conv1_the_fire_modules_and_the_head():
    model = squeezenet.load("imagenette").build()
    names = [n for n, _ in blocks(model)]
    assert names[0] == "features.0" and names[-1] == "classifier" and len(names) == 10  # conv1, 8 Fires, head
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        h = x
        for _, b in blocks(model):
            h = b(h)
        assert torch.equal(h, model.eval()(x))  # the blocks in a row are the network


def test_reconstruction_lowers_every_blocks_error(imagenette, cache):
    w = _small()
    teacher, student = w.build(), w.build()
    latent = {n: student.get_parameter(n).detach().clone() for n in quantizable(student)}
    q = quantize_model(student, 3, "optimal")  # coarse on purpose: a large error to win back
    sharing = WeightSharing(student, q, latent, rd_lambdas(student, 0.0))
    batches = Batches(w, imagenette / "train", CompressOptions(batch_size=16, train_limit=64))
    images = [batches()[0] for _ in range(2)]
    rows = reconstruct(student, teacher, sharing, images, steps=12, joint_steps=0, lr=1e-3, log=lambda m: None)
    assert [r["block"] for r in rows] == [n for n, _ in blocks(student)]
    assert all(r["error_after"] < r["error_before"] for r in rows), rows
    assert sum(r["error_after"] for r in rows) < 0.9 * sum(r["error_before"] for r in rows), rows
    q2 = sharing.quantized()  # still weight-shared: at most 7 levels and zero per layer, pruned zeros kept
    assert all(len(torch.unique(student.get_parameter(n))) <= 8 for n in q2)


def test_compress_with_reconstruction_and_a_balanced_wider_transfer_set(imagenette, cache):
    w = _small()
    opts = CompressOptions(profile=None, bits=4, reconstruct_steps=2,
                           reconstruct_images=32, batch_size=16, train_limit=48, balance=True, crop_scale=0.08)
    logs: list[str] = []
    res = compress(w, opts, imagenette / "train", log=logs.append)
    assert any(m.startswith("balanced transfer set") for m in logs)
    assert sum(m.startswith("reconstruction features.") for m in logs) == 9 and any("joint" in m for m in logs)
    assert sqzformat.decode(res.data).weights.classes == w.classes


def test_balance_spreads_the_teachers_classes(imagenette, cache):
    w = _small()
    b = Batches(w, imagenette / "train", CompressOptions(batch_size=8, train_limit=40))
    reached = b.balance(w.build())
    assert 2 <= reached <= 10
    assert float(b.odds.sum()) == pytest.approx(reached)  # every class the teacher sees weighs the same: 1
    assert float(b.odds.max()) <= 1 and len(b.odds) == 40
