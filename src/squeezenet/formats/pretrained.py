"""`create_model(name, pretrained=True)`: the weights the project knows for a registered name, timm-style.

Where the weights come from, in order: `$SQUEEZENET_WEIGHTS_<NAME>` (a path), then the project's own source: the
authors' Deep Compression v1.0 in the shared data for `squeezenet1_0` (their Caffe variant: conv10 padding 1, so
the model gets the weights' configuration), the bundled Imagenette model for `squeezenet1_1`. The model carries
`pretrained_cfg` (source, classes, preprocessing protocol, the weights' metadata), as timm's do; `hub_entry_points`
gives the same models to `torch.hub` (the repository's hubconf.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from torch import nn

from squeezenet.errors import ConfigError, SqueezeNetError
from squeezenet.formats.weights import Weights, bundled_path, load
from squeezenet.models import registry
from squeezenet.paths import authors_model_dir


def _measured(data: str, images: int, top1: float, top5: float, preprocessing: str) -> dict:
    """A line of results/headline/evaluate.jsonl (`squeezenet evaluate --json`; the data named in words), for the
    weights' model card."""
    return {"data": data, "images": images, "top1": top1, "top5": top5, "preprocessing": preprocessing,
            "record": "results/headline/evaluate.jsonl"}


_CAFFE = "warp to 256x256, centre crop 227 (227x227 images kept as they are), BGR"
_AUTHORS = (lambda: authors_model_dir() / "compressed_SqueezeNet.net",
            "the authors' Deep Compression SqueezeNet v1.0, ImageNet (../shared)",
            [_measured("imagenet-val-1300 (1,300 of ImageNet's 50,000 validation images)", 1300,
                       0.7153846153846154, 0.9084615384615384, _CAFFE),
             _measured("imagenet-sample-750 (ImageNet images at their own aspect ratio)", 750,
                       0.572, 0.7786666666666666, _CAFFE)])
PRETRAINED = {  # registry name -> (default source, what it is, what it measured with its own protocol)
    "squeezenet1_0": _AUTHORS,
    "squeezenet1_0_caffe": _AUTHORS,
    "squeezenet1_1": (lambda: bundled_path("imagenette"), "the bundled Imagenette v1.1 (10 classes)",
                      [_measured("imagenette2/val (all of Imagenette's validation images)", 3925,
                                 0.8570700636942675, 0.9885350318471338, "shorter side to 182, centre crop 160, RGB")]),
}


def pretrained_weights(name: str) -> Weights:
    """The weights `create_model(name, pretrained=True)` starts from; a one-line error when none are at hand.

    From the project's own source, their meta gains `about` and the `evaluations` measured on them (what a model
    card reports); weights named by `$SQUEEZENET_WEIGHTS_<NAME>` are taken as they are."""
    if name not in PRETRAINED:
        raise ConfigError(f"no pretrained weights for {name!r}; models with them: {', '.join(PRETRAINED)}")
    env = f"SQUEEZENET_WEIGHTS_{name.upper()}"
    path = Path(os.environ[env]) if os.environ.get(env) else PRETRAINED[name][0]()
    if not path.is_file():
        raise SqueezeNetError(f"pretrained weights for {name} not found at {path} (set {env} or SQUEEZENET_SHARED)")
    weights = load(path)
    if not os.environ.get(env):
        weights.meta |= {"about": PRETRAINED[name][1], "evaluations": [dict(r) for r in PRETRAINED[name][2]]}
    return weights


def pretrained_cfg(weights: Weights, name: str, source: str) -> dict:
    """What a model built from `weights` carries (timm's `pretrained_cfg`), and what `save_pretrained` writes back:
    the registered `name`, where the weights came from, their classes, preprocessing and metadata."""
    return {"architecture": name, "source": source, "about": weights.meta.get("about", source),
            "num_classes": weights.num_classes, "classes": weights.classes, "class_ids": weights.class_ids,
            "preprocessing": weights.preprocessing.to_dict(), "protocol": weights.preprocessing.protocol,
            "meta": weights.meta}


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
    model.pretrained_cfg = pretrained_cfg(w, name, os.environ.get(env) or str(PRETRAINED[name][0]()))
    return model


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Registered names matching `pattern`; `pretrained=True`: only those with known weights."""
    return [n for n in registry.list_models(pattern) if not pretrained or n in PRETRAINED]


def hub_entry_point(name: str) -> Callable[..., nn.Module]:
    """`name(pretrained=False, num_classes=None, **kw)` for torch.hub, its help saying what it builds and loads."""
    def entry(pretrained: bool = False, num_classes: int | None = None, **kw) -> nn.Module:
        return create_model(name, pretrained=pretrained, num_classes=num_classes, **kw)

    weights = (f"pretrained=True: {PRETRAINED[name][1]}, in eval mode; its classes, preprocessing and metadata in "
               f"`model.pretrained_cfg`, its model card from `model.save_pretrained(DIR)`; num_classes: a new "
               f"classifier, the features kept." if name in PRETRAINED else "No pretrained weights.")
    doc = registry.model_entry(name).__doc__ or name
    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = f"{doc.strip()}\n\n`squeezenet.create_model({name!r}, pretrained, num_classes, **kw)`. {weights}"
    return entry


def hub_entry_points() -> dict[str, Callable[..., nn.Module]]:
    """One torch.hub entry point per registered model: what hubconf.py exports, so a new model needs no line there."""
    return {name: hub_entry_point(name) for name in registry.list_models()}
