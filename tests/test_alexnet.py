"""AlexNet (bvlc_alexnet): parameter counts at both resolutions, the two inits, low-rank layers, bad options."""

from __future__ import annotations

import pytest
import torch

from squeezenet import AlexNet, create_model
from squeezenet.models.alexnet import LowRankLinear


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_only_fc6_and_fc8_change_with_resolution_and_classes():
    with torch.device("meta"):
        full, small = create_model("alexnet"), create_model("alexnet", num_classes=10, image_size=128)
    assert n_params(full) == 60_965_224
    assert small.layers()["fc6"].in_features == 256 * 3 * 3
    assert n_params(small) == n_params(full) - 256 * (36 - 9) * 4096 - 990 * 4097
    assert list(full.layers()) == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"]
    assert full.layers()["conv2"].groups == 2 and full.layers()["conv3"].groups == 1


def test_caffe_fillers_and_kaiming():
    torch.manual_seed(0)
    paper = AlexNet(num_classes=3, image_size=67).layers()
    assert paper["conv2"].bias.eq(0.1).all() and paper["conv3"].bias.eq(0).all() and paper["fc7"].bias.eq(0.1).all()
    assert paper["fc7"].weight.std().item() == pytest.approx(0.005, rel=0.01)
    assert paper["fc8"].weight.std().item() == pytest.approx(0.01, rel=0.05)
    he = AlexNet(num_classes=3, image_size=67, init="kaiming").layers()
    assert he["fc7"].weight.std().item() == pytest.approx((2 / 4096) ** 0.5, rel=0.01) and he["fc7"].bias.eq(0).all()
    assert he["conv3"].weight.std().item() == pytest.approx((2 / (256 * 9)) ** 0.5, rel=0.02)
    assert he["fc8"].weight.std().item() == pytest.approx(0.01, rel=0.05) and he["conv2"].bias.eq(0).all()


def test_low_rank_layers_and_bad_options():
    m = AlexNet(num_classes=3, image_size=67, ranks={"fc7": 16})
    fc7 = m.layers()["fc7"]
    assert isinstance(fc7, LowRankLinear) and n_params(fc7) == 16 * (4096 + 4096) + 4096
    assert "classifier.3.first.weight" in m.state_dict() and m(torch.zeros(1, 3, 67, 67)).shape == (1, 3)
    for bad in ({"image_size": 38}, {"init": "xavier"}, {"ranks": {"fc9": 3}}, {"ranks": {"fc6": 0}},
                {"dropout": 1.0}, {"num_classes": 0}):
        with pytest.raises(ValueError):
            AlexNet(**{"image_size": 67} | bad)
    with pytest.raises(TypeError):
        AlexNet(image_size=67.0)
