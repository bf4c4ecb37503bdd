"""SVD of AlexNet's fc layers: exact at full rank, the parameter formula, near-optimal error, files that load."""

from __future__ import annotations

import pytest
import torch

import squeezenet
from squeezenet.compression.lowrank import factorize, lowrank_params, parse_ranks, svd_factors
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.weights import Weights
from squeezenet.models.alexnet import LowRankLinear
from squeezenet.models.preprocessing import preset


@pytest.fixture(scope="module")
def alexnet() -> Weights:
    """A 3-class AlexNet at 67 px (fc6: 256 -> 4096)."""
    torch.manual_seed(0)
    model = squeezenet.create_model("alexnet", num_classes=3, image_size=67, init="kaiming")
    return Weights.from_model(model, ["a", "b", "c"], preset("torchvision", 67))


def test_full_rank_reproduces_the_outputs(alexnet):
    f = factorize(alexnet, {"fc6": 256, "fc8": 3})
    x = torch.randn(2, 3, 67, 67)
    with torch.no_grad():
        torch.testing.assert_close(f.build()(x), alexnet.build()(x), atol=1e-4, rtol=1e-4)
    assert isinstance(f.build().layers()["fc6"], LowRankLinear) and f.meta["svd_ranks"] == {"fc6": 256, "fc8": 3}


def test_parameter_count_follows_the_formula(alexnet):
    model = alexnet.build()
    assert parse_ranks("250", model) == {"fc7": 250}  # fc6 (4096 x 256) shrinks below rank 241, fc8 (3 x 4096) never
    assert parse_ranks("fc7=64, fc8=2", model) == {"fc7": 64, "fc8": 2}
    f = factorize(alexnet, {"fc6": 64, "fc7": 100})
    before = sum(v.numel() for v in alexnet.state_dict.values())
    after = sum(v.numel() for v in f.state_dict.values())
    assert after == before - (4096 * 256 + 4096) - (4096 * 4096 + 4096) + lowrank_params(4096, 256, 64) \
        + lowrank_params(4096, 4096, 100)


def test_truncated_svd_error_is_near_optimal():
    torch.manual_seed(1)
    w = torch.randn(600, 300) * torch.logspace(0, -2, 300)
    first, second = svd_factors(w, 40)
    best = torch.linalg.svdvals(w)[40:].square().sum().sqrt()
    assert first.shape == (40, 300) and second.shape == (600, 40)
    assert (w - second @ first).norm() <= best * 1.01


def test_saved_file_loads_builds_and_refactorising_is_refused(alexnet, tmp_path):
    f = factorize(alexnet, {"fc7": 32})
    back = squeezenet.load(squeezenet.save(f, tmp_path / "svd.safetensors"))
    assert back.config["ranks"] == {"fc7": 32} and "classifier.3.second.bias" in back.state_dict
    x = torch.randn(1, 3, 67, 67)
    with torch.no_grad():
        torch.testing.assert_close(back.build()(x), f.build()(x))
    for ranks in ({"fc7": 8}, {"fc8": 4}):  # already factorised; rank above min(m, n)
        with pytest.raises(SqueezeNetError):
            factorize(back, ranks)
    with pytest.raises(SqueezeNetError, match="fc6=256"):
        parse_ranks("fc6:256", alexnet.build())
    with pytest.raises(SqueezeNetError, match="squeezenet"):
        factorize(Weights.from_model(squeezenet.create_model("squeezenet1_1", num_classes=3), ["a", "b", "c"],
                                     preset("torchvision", 64)), {"fc6": 4})
