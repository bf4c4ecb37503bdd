"""Named models, timm-style: `create_model("squeezenet1_1", num_classes=10, sr=0.25)`."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from squeezenet.errors import SqueezeNetError
from squeezenet.models.alexnet import AlexNet
from squeezenet.models.config import SQUEEZENET1_0, SQUEEZENET1_1, SqueezeNetConfig
from squeezenet.models.squeezenet import SqueezeNet

ARCHS = ("squeezenet", "alexnet")  # what a weights file names as its architecture

CONFIGS: dict[str, SqueezeNetConfig] = {
    "squeezenet1_0": SQUEEZENET1_0,
    "squeezenet1_1": SQUEEZENET1_1,
    "squeezenet1_0_caffe": SQUEEZENET1_0.replace(conv10_padding=1, init="paper"),
}


def model_config(name: str, **overrides) -> SqueezeNetConfig:
    """The configuration of a registered SqueezeNet with metaparameters/options overridden."""
    if name not in CONFIGS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
    cfg = CONFIGS[name].to_dict() | {k: v for k, v in overrides.items() if v is not None}
    return SqueezeNetConfig.from_dict(cfg)


def squeezenet1_0(**kw) -> SqueezeNet:
    return SqueezeNet(model_config("squeezenet1_0", **kw))


def squeezenet1_1(**kw) -> SqueezeNet:
    return SqueezeNet(model_config("squeezenet1_1", **kw))


def alexnet(**kw) -> AlexNet:
    return AlexNet(**kw)


_BUILDERS: dict[str, Callable[..., nn.Module]] = {"alexnet": alexnet}


def list_models() -> list[str]:
    return sorted([*CONFIGS, *_BUILDERS])


def create_model(name: str, **kw) -> nn.Module:
    if name in _BUILDERS:
        try:
            return _BUILDERS[name](**kw)
        except TypeError as e:
            raise ValueError(f"{name}: {e}") from None
    return SqueezeNet(model_config(name, **kw))


def describe(model: nn.Module) -> tuple[str, dict]:
    """(arch, config) of a SqueezeNet or AlexNet: what `architecture` rebuilds it from."""
    if isinstance(model, SqueezeNet):
        return "squeezenet", model.config.to_dict()
    if isinstance(model, AlexNet):
        return "alexnet", dict(model.config)
    raise TypeError(f"cannot describe a {type(model).__name__}; expected SqueezeNet or AlexNet")


def architecture(arch: str, config: dict) -> nn.Module:
    """The untrained network `arch` and `config` describe (free under `torch.device("meta")`)."""
    if arch == "squeezenet":
        return SqueezeNet(SqueezeNetConfig.from_dict(config))
    if arch == "alexnet":
        return AlexNet(**config)
    raise SqueezeNetError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHS)}")
