"""The model family: Table 1's counts, the metaparameter space, torchvision compatibility, input limits."""

import pytest
import torch

import squeezenet
from squeezenet import Fire, SqueezeNetConfig, create_model
from squeezenet.experiments.paper import TABLE1


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def torchvision_keys(fire_idx: list[int]) -> list[str]:
    keys = ["features.0.weight", "features.0.bias"]
    for i in fire_idx:
        for conv in ("squeeze", "expand1x1", "expand3x3"):
            keys += [f"features.{i}.{conv}.weight", f"features.{i}.{conv}.bias"]
    return keys + ["classifier.1.weight", "classifier.1.bias"]


def test_parameter_counts():
    assert n_params(squeezenet.squeezenet1_0()) == 1_248_424
    assert n_params(squeezenet.squeezenet1_1()) == 1_235_496
    assert n_params(create_model("alexnet")) == 60_965_224


def test_metaparameter_defaults_are_v1_0_layer_for_layer():
    generated = squeezenet.SqueezeNet(SqueezeNetConfig(base_e=128, incr_e=128, freq=2, pct3x3=0.5, sr=0.125))
    v10 = squeezenet.squeezenet1_0()
    assert [(k, v.shape) for k, v in generated.state_dict().items()] == \
           [(k, v.shape) for k, v in v10.state_dict().items()]


@pytest.mark.parametrize("sr,millions", [(0.125, 1.25), (0.25, 1.97), (0.5, 3.40), (0.75, 4.84), (1.0, 6.28)])
def test_squeeze_ratio_sweep(sr, millions):
    assert round(n_params(create_model("squeezenet1_0", sr=sr)) / 1e6, 2) == millions


def test_bypass_parameters():
    base = n_params(squeezenet.squeezenet1_0())
    assert n_params(create_model("squeezenet1_0", bypass="simple")) == base
    assert n_params(create_model("squeezenet1_0", bypass="complex")) == base + 341_248


def test_table1_fire_rows():
    model = squeezenet.squeezenet1_0()
    fires = [m for m in model.features if isinstance(m, Fire)]
    for i, fire in enumerate(fires, start=2):
        assert n_params(fire) == TABLE1[f"fire{i}"][1]
    assert n_params(model.features[0]) == TABLE1["conv1"][1]
    assert n_params(model.final_conv) == TABLE1["conv10"][1]


def test_state_dict_keys_and_output_shape_match_torchvision():
    for model, fires in [(squeezenet.squeezenet1_0(), [3, 4, 5, 7, 8, 9, 10, 12]),
                         (squeezenet.squeezenet1_1(), [3, 4, 6, 7, 9, 10, 11, 12])]:
        assert list(model.state_dict()) == torchvision_keys(fires)
        model.eval()
        with torch.no_grad():
            assert model(torch.zeros(2, 3, 224, 224)).shape == (2, 1000)


@pytest.mark.parametrize("name,minimum", [("squeezenet1_0", 21), ("squeezenet1_1", 17)])
def test_minimum_input_size(name, minimum):
    model = create_model(name, num_classes=10).eval()
    assert model(torch.zeros(1, 3, minimum, minimum)).shape == (1, 10)
    with pytest.raises(ValueError, match=f"minimum input size {minimum}x{minimum}"):
        model(torch.zeros(1, 3, minimum - 1, minimum - 1))


@pytest.mark.parametrize("kw,needle", [
    ({"sr": 0}, "sr"), ({"sr": -0.5}, "sr"), ({"pct3x3": 0.0}, "pct3x3"), ({"pct3x3": 1.0}, "pct3x3"),
    ({"sr": 1.5}, "squeeze"), ({"bypass": "diagonal"}, "diagonal"), ({"init": "random"}, "random"),
])
def test_invalid_configurations_name_the_value(kw, needle):
    with pytest.raises(ValueError, match=needle):
        create_model("squeezenet1_0", **kw)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="resnet50"):
        create_model("resnet50")


def test_fire_rejects_squeeze_wider_than_expand():
    with pytest.raises(ValueError, match="squeeze"):
        Fire(64, 64, 16, 16)


def test_bypass_and_variants_run():
    for kw in ({"bypass": "simple"}, {"bypass": "complex"}, {"batch_norm": True, "final_relu": False},
               {"conv10_padding": 1, "init": "paper"}):
        model = create_model("squeezenet1_1", num_classes=3, **kw).eval()
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 3)


def test_paper_init_is_xavier_with_gaussian_conv10():
    torch.manual_seed(0)
    model = create_model("squeezenet1_0", init="paper")
    w = model.features[0].weight
    assert w.abs().max() <= (3 / (3 * 7 * 7)) ** 0.5
    assert abs(model.final_conv.weight.std().item() - 0.01) < 0.001


def test_config_round_trip():
    cfg = squeezenet.model_config("squeezenet1_1", sr=0.25, bypass="complex")
    assert SqueezeNetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="bogus"):
        SqueezeNetConfig.from_dict(cfg.to_dict() | {"bogus": 1})


def test_bypass_sum_is_normalised_under_batch_norm():
    """With BatchNorm, a bypass fire normalises its sum (else lr 0.1 diverges, results/explore/README.md)."""
    torch.manual_seed(0)
    for bypass in ("simple", "complex"):
        model = create_model("squeezenet1_0", num_classes=3, bypass=bypass, batch_norm=True).train()
        fire = next(m for m in model.features if isinstance(m, Fire) and m.bypass != "none")
        y = fire(torch.rand(8, fire.in_channels, 9, 9) * 5)
        assert y.mean().abs() < 1e-4 and abs(y.std().item() - 1) < 0.01
    plain = create_model("squeezenet1_0", bypass="simple")  # the paper's net: the sum as it is
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())


def test_one_model_interface_for_squeezenet_and_alexnet():
    """timm's: reset_classifier, forward_features + forward_head == forward, the paper's layer names, a registry."""
    from squeezenet.models.alexnet import AlexNetConfig
    from squeezenet.models.registry import architecture, describe, list_models

    assert list_models("squeeze*") == ["squeezenet1_0", "squeezenet1_0_caffe", "squeezenet1_1"]
    assert list_models("alex*") == ["alexnet"]
    torch.manual_seed(0)
    for model, size in ((create_model("squeezenet1_1", num_classes=7), 64),
                        (create_model("alexnet", num_classes=7, image_size=67), 67)):
        model.eval()
        x = torch.randn(2, 3, size, size)
        torch.testing.assert_close(model.forward_head(model.forward_features(x)), model(x))
        before = {k: v.clone() for k, v in model.state_dict().items() if k not in model.head_keys}
        model.reset_classifier(3)
        assert model(x).shape == (2, 3) and model.num_classes == 3 and model.config.num_classes == 3
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items() if k in before)
        arch, config = describe(model)
        assert arch == model.arch and architecture(arch, config).state_dict().keys() == model.state_dict().keys()
        names = model.layer_names()
        assert names[next(iter(names))] == "conv1" and set(names) <= set(model.state_dict())
    assert isinstance(model.config, AlexNetConfig) and names["classifier.6.weight"] == "fc8"
