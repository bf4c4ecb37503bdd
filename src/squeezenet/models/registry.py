"""Named models, timm-style: `create_model("squeezenet1_1", num_classes=10, sr=0.25)`, `list_models("squeeze*")`.

The registry is the only factory: a name is registered with `@register_model`, a weights file's (arch, config)
is rebuilt by `architecture`, and `describe` is its inverse.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

from torch import nn

from squeezenet.errors import ConfigError, SqueezeNetError
from squeezenet.models.alexnet import AlexNet, AlexNetConfig
from squeezenet.models.config import SQUEEZENET1_0, SQUEEZENET1_1, SqueezeNetConfig
from squeezenet.models.squeezenet import SqueezeNet

ARCHS = {"squeezenet": (SqueezeNet, SqueezeNetConfig), "alexnet": (AlexNet, AlexNetConfig)}  # a file's "arch"
_MODELS: dict[str, Callable[..., nn.Module]] = {}
CONFIGS: dict[str, SqueezeNetConfig] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Make `fn(**options)` available as `create_model(fn.__name__, **options)`."""
    _MODELS[fn.__name__] = fn
    return fn


def _squeezenet(name: str, config: SqueezeNetConfig) -> None:
    CONFIGS[name] = config

    def build(**kw) -> SqueezeNet:
        return SqueezeNet(model_config(name, **kw))

    c = config
    build.__name__ = name
    build.__doc__ = (f"SqueezeNet {name}: conv1 {c.stem_filters} filters {c.stem_kernel}x{c.stem_kernel} stride "
                     f"{c.stem_stride}, eight fire modules (base_e {c.base_e}, incr_e {c.incr_e}, freq {c.freq}, "
                     f"pct3x3 {c.pct3x3}, sr {c.sr}), max-pools after layers {', '.join(map(str, c.pool_after))}, "
                     f"conv10 padding {c.conv10_padding}, {c.init} init; keyword arguments override its fields.")
    register_model(build)


def model_config(name: str, **overrides) -> SqueezeNetConfig:
    """A named SqueezeNet configuration with some fields replaced (None values are ignored)."""
    if name not in CONFIGS:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
    cfg = CONFIGS[name].to_dict() | {k: v for k, v in overrides.items() if v is not None}
    return SqueezeNetConfig.from_dict(cfg)


_squeezenet("squeezenet1_0", SQUEEZENET1_0)
_squeezenet("squeezenet1_1", SQUEEZENET1_1)
_squeezenet("squeezenet1_0_caffe", SQUEEZENET1_0.replace(conv10_padding=1, init="paper"))
squeezenet1_0, squeezenet1_1 = _MODELS["squeezenet1_0"], _MODELS["squeezenet1_1"]


@register_model
def alexnet(**kw) -> AlexNet:
    """Caffe's bvlc_alexnet (the paper's baseline)."""
    return AlexNet(**kw)


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style `pattern` (`list_models("squeeze*")`)."""
    return sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))


def model_entry(name: str) -> Callable[..., nn.Module]:
    """The function registered as `name` (its docstring says what it builds)."""
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
    return _MODELS[name]


def create_model(name: str, **kw) -> nn.Module:
    entry = model_entry(name)
    try:
        return entry(**kw)
    except TypeError as e:
        raise ConfigError(f"{name}: {e}") from None


def describe(model: nn.Module) -> tuple[str, dict]:
    """(arch, config) of a SqueezeNet or AlexNet: what `architecture` rebuilds it from."""
    if isinstance(model, (SqueezeNet, AlexNet)):
        return model.arch, model.config.to_dict()
    raise TypeError(f"cannot describe a {type(model).__name__}; expected SqueezeNet or AlexNet")


def architecture(arch: str, config: dict) -> nn.Module:
    """The untrained network `arch` and `config` describe (free under `torch.device("meta")`)."""
    if arch not in ARCHS:
        raise SqueezeNetError(f"unknown architecture {arch!r}; expected one of {', '.join(ARCHS)}")
    model, config_class = ARCHS[arch]
    return model(config_class.from_dict(config))


def nearest_name(arch: str, config: dict) -> tuple[str, dict]:
    """The registered name closest to a weights file's (arch, config) and the fields that differ from it (class
    count aside): what a run started from those weights records as its model."""
    if arch != "squeezenet":
        return arch, {}

    def diff(name: str) -> dict:
        named = CONFIGS[name].to_dict()
        return {k: v for k, v in config.items() if k != "num_classes" and named.get(k) != v}
    name = min(CONFIGS, key=lambda n: len(diff(n)))
    return name, diff(name)
