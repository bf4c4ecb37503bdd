"""Magnitude pruning: Table 1's and Han et al.'s AlexNet profiles, masks that hold in training, AGP, sensitivity."""

from __future__ import annotations

import pytest
import torch

from squeezenet.compression.prune import (
    Pruner,
    agp,
    alexnet_densities,
    global_densities,
    magnitude_mask,
    paper_names,
    plot_sensitivity,
    sensitivity,
    std_densities,
    table1_densities,
)
from squeezenet.models.registry import create_model


def test_table1_profile_gives_the_papers_parameter_count():
    m = create_model("squeezenet1_0")
    d = table1_densities(m)
    kept = sum(p.numel() for n, p in m.named_parameters() if n not in d)
    kept += sum(round(d[n] * m.get_parameter(n).numel()) for n in d)
    assert abs(kept - 421_098) <= 10  # Table 1's "after pruning" total (biases included)
    assert paper_names(m)["features.9.squeeze.weight"] == "fire7/squeeze1x1" and d["features.9.squeeze.weight"] == .5


def test_mask_keeps_the_largest_and_only_shrinks():
    w = torch.tensor([0.1, -5.0, 3.0, -0.2, 0.05, 2.0])
    m = magnitude_mask(w, 0.5)
    assert m.tolist() == [False, True, True, False, False, True]
    assert magnitude_mask(w, 1 / 3, m).tolist() == [False, True, True, False, False, False]


def test_pruned_weights_stay_zero_through_sgd_with_momentum_and_decay():
    torch.manual_seed(0)
    m = create_model("squeezenet1_1", num_classes=10, base_e=16, incr_e=16)
    pruner = Pruner(m, table1_densities(m))
    pruner.prune(1.0)
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    for _ in range(3):
        opt.zero_grad()
        m(torch.randn(2, 3, 64, 64)).sum().backward()
        opt.step()
        pruner.apply()
    for n, mask in pruner.masks.items():
        assert not m.get_parameter(n)[~mask].any()
    assert pruner.densities()["classifier.1.weight"] == pytest.approx(0.2, abs=1e-3)


def test_agp_schedule_and_global_and_std_targets():
    assert agp(0, 10, 0.2) == 1.0 and agp(10, 10, 0.2) == pytest.approx(0.2) and agp(5, 10, 0.2) < 0.5
    m = create_model("squeezenet1_1", num_classes=10, base_e=16, incr_e=16)
    g = global_densities(m, 0.3)
    total = sum(m.get_parameter(n).numel() for n in g)
    assert sum(d * m.get_parameter(n).numel() for n, d in g.items()) / total == pytest.approx(0.3, abs=1e-3)
    # Han et al.'s rule on Kaiming-uniform weights, U(-b, b) with std b/sqrt(3): a fraction 1 - q/sqrt(3) survives
    dens = std_densities(m, 0.5)
    big = [n for n in dens if m.get_parameter(n).numel() > 1000 and n != "classifier.1.weight"]
    assert len(big) >= 5 and all(abs(dens[n] - (1 - 0.5 / 3 ** 0.5)) < 0.03 for n in big)
    assert all(d == 1.0 for d in std_densities(m, 0.0).values())


def test_sensitivity_table_and_png(tmp_path):
    torch.manual_seed(0)
    m = create_model("squeezenet1_1", num_classes=10, base_e=16, incr_e=16).eval()
    x = torch.randn(2, 3, 64, 64)
    ref = m(x).detach()
    rows = sensitivity(m, lambda mod: float(-((mod(x) - ref) ** 2).mean()), (0.2, 1.0), ["features.0.weight"])
    assert [r["density"] for r in rows] == [0.2, 1.0] and rows[1]["score"] == 0.0 and rows[0]["score"] < 0
    assert torch.equal(m(x), ref)  # weights restored
    png = plot_sensitivity(rows, tmp_path / "s.png", paper_names(m))
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_alexnet_profile_is_han_et_al_9x():
    with torch.device("meta"):
        full = create_model("alexnet")
    d = alexnet_densities(full)
    assert [paper_names(full)[n] for n in d] == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    total = sum(p.numel() for p in full.parameters())
    kept = total - sum(full.get_parameter(n).numel() * (1 - x) for n, x in d.items())
    assert 8.8 < total / kept < 9.3  # Han et al. 2015: 61 M -> 6.7 M, 9x
    torch.manual_seed(0)
    m = create_model("alexnet", num_classes=10, image_size=128)  # the Imagenette AlexNet, pruned for real
    Pruner(m, alexnet_densities(m)).prune(1.0)
    nonzero = sum(int(torch.count_nonzero(p)) for p in m.parameters())
    assert 8.5 < sum(p.numel() for p in m.parameters()) / nonzero < 9.3
