"""The model a run starts from: fresh from the registry, or the weights of another run or of the authors
(`--init-from`), with a new classifier when the classes differ."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from squeezenet.errors import SqueezeNetError
from squeezenet.formats.weights import imagenet_classes, load
from squeezenet.models.preprocessing import Preprocessing, preset
from squeezenet.models.registry import architecture, create_model, nearest_name
from squeezenet.training.recipes import TrainConfig


def build_model(cfg: TrainConfig, classes: list[str]) -> tuple[nn.Module, Preprocessing]:
    """A fresh model, or one started from `init_from` with a new classifier (conv10, fc8) when the classes differ.

    When the new classes are among the old ones (Imagenette's wnids in the authors' ImageNet model), the new
    classifier starts from the matching rows of the old one.
    """
    alexnet = {"image_size": cfg.image_size} if cfg.model == "alexnet" else {}
    if not cfg.init_from:
        kw = dict(cfg.model_overrides) | alexnet | {"num_classes": len(classes)}
        try:
            return create_model(cfg.model, **kw), preset("torchvision", cfg.image_size)
        except SqueezeNetError as e:
            raise SqueezeNetError(f"{e} (a recipe or option for another architecture?)") from None
    w = load(cfg.init_from)
    config = w.config | {k: v for k, v in cfg.model_overrides.items() if k == "dropout"}
    if w.arch == "alexnet":
        config |= {"image_size": cfg.image_size}
    model = architecture(w.arch, config)
    state = dict(w.state_dict)
    old_ids = w.class_ids or w.classes
    if old_ids != classes:  # a new head; its rows taken from the old one when the classes are among the old
        model.reset_classifier(len(classes))
        keys = model.head_keys
        if set(classes) <= set(old_ids) and all(k in state and state[k].shape[0] == len(old_ids) for k in keys):
            rows = torch.tensor([old_ids.index(c) for c in classes])
            state = state | {k: state[k][rows] for k in keys}
        else:
            state = {k: v for k, v in state.items() if k not in keys and not k.startswith("classifier.6.")}
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise SqueezeNetError(f"{cfg.init_from} does not fit at {cfg.image_size} px: {str(e).splitlines()[-1]}") \
            from None
    return model, w.preprocessing.at_size(cfg.image_size)


def started_config(cfg: TrainConfig, given: dict) -> TrainConfig:
    """`cfg` naming the architecture `init_from` holds (the nearest registered model and the fields that differ),
    so that the run's config.json records what was trained, not the default `model`; and, unless `given`, the
    resolution its features were trained at."""
    w = load(cfg.init_from)
    name, differs = nearest_name(w.arch, w.config)
    size = given.get("image_size") or w.preprocessing.crop_size
    return replace(cfg, model=name, model_overrides=differs | cfg.model_overrides, image_size=size)


def class_names(ids: list[str]) -> list[str]:
    """Readable names for ImageNet wnids (Imagenette's folders) when the shared class list is at hand."""
    try:
        wnids, names = imagenet_classes()
    except SqueezeNetError:
        return ids
    lookup = dict(zip(wnids, names, strict=True))
    return [lookup.get(c, c) for c in ids]
