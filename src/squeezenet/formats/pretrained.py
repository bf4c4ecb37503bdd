"""`create_model(name, pretrained=True)`: the weights the project knows for a registered name, timm-style.

Where the weights come from, in order: `$SQUEEZENET_WEIGHTS_<NAME>` (a path), then the project's own source: the
authors' Deep Compression v1.0 in the shared data for `squeezenet1_0` (their Caffe variant: conv10 padding 1, so
the model gets the weights' configuration), the bundled Imagenette model for `squeezenet1_1`. The model carries
`pretrained_cfg` (source, classes, preprocessing protocol), as timm's do.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from squeezenet.errors import ConfigError, SqueezeNetError
from squeezenet.formats.weights import Weights, bundled_path, load
from squeezenet.models import registry
from squeezenet.paths import authors_model_dir

PRETRAINED = {  # registry name -> (default source, what it is)
    "squeezenet1_0": (lambda: authors_model_dir() / "compressed_SqueezeNet.net",
                      "the authors' Deep Compression SqueezeNet v1.0, ImageNet (../shared)"),
    "squeezenet1_0_caffe": (lambda: authors_model_dir() / "compressed_SqueezeNet.net",
                            "the authors' Deep Compression SqueezeNet v1.0, ImageNet (../shared)"),
    "squeezenet1_1": (lambda: bundled_path("imagenette"), "the bundled Imagenette v1.1 (10 classes)"),
}


def pretrained_weights(name: str) -> Weights:
    """The weights `create_model(name, pretrained=True)` starts from; a one-line error when none are at hand."""
    if name not in PRETRAINED:
        raise ConfigError(f"no pretrained weights for {name!r}; models with them: {', '.join(PRETRAINED)}")
    env = f"SQUEEZENET_WEIGHTS_{name.upper()}"
    path = Path(os.environ[env]) if os.environ.get(env) else PRETRAINED[name][0]()
    if not path.is_file():
        raise SqueezeNetError(f"pretrained weights for {name} not found at {path} (set {env} or SQUEEZENET_SHARED)")
    return load(path)


def create_model(name: str, pretrained: bool = False, num_classes: int | None = None, **kw) -> nn.Module:
    """`models.registry.create_model`, plus `pretrained=True`: the known weights loaded, in eval mode, a new
    classifier when `num_classes` differs (the features kept)."""
    if not pretrained:
        return registry.create_model(name, **kw | ({} if num_classes is None else {"num_classes": num_classes}))
    if kw:
        raise ConfigError(f"pretrained weights fix the architecture: only num_classes may change, not "
                          f"{', '.join(sorted(kw))}")
    if name not in registry.list_models():
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(registry.list_models())}")
    w = pretrained_weights(name)
    model = w.build()
    if num_classes is not None and num_classes != model.num_classes:
        model.reset_classifier(num_classes)
    env = f"SQUEEZENET_WEIGHTS_{name.upper()}"
    model.pretrained_cfg = {"source": os.environ.get(env) or str(PRETRAINED[name][0]()), "about": PRETRAINED[name][1],
                            "num_classes": w.num_classes, "preprocessing": w.preprocessing.to_dict(),
                            "protocol": w.preprocessing.protocol}
    return model


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Registered names matching `pattern`; `pretrained=True`: only those with known weights."""
    return [n for n in registry.list_models(pattern) if not pretrained or n in PRETRAINED]
