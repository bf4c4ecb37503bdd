"""`model.save_pretrained(DIR)` and `SqueezeNet.from_pretrained(DIR)`: a model as a Hugging Face Hub folder.

The folder holds `config.json` (timm's: `architecture`, a registered name, `num_classes` and `model_args`, so
`create_model(architecture, num_classes=..., **model_args)` rebuilds the network), `model.safetensors` (the
project's own file, formats.safetensors: tensors plus the weights' classes, preprocessing and provenance, read
without unpickling) and `README.md`, the model card rendered from that description (formats.card). A folder whose
config.json is missing, forged or disagrees with its weights is refused in one line, never guessed at.

The model classes live a tier below, which cannot import a format, so `add_methods` attaches these functions to
them (the formats package does, on import).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch
from torch import nn

from squeezenet.atomic import write_bytes
from squeezenet.errors import ConfigError, SqueezeNetError
from squeezenet.formats.card import model_card
from squeezenet.formats.pretrained import pretrained_cfg
from squeezenet.formats.safetensors import read_safetensors, save
from squeezenet.formats.weights import Weights, check_finite, parse_json
from squeezenet.models import registry
from squeezenet.models.preprocessing import TORCHVISION, Preprocessing

CONFIG, WEIGHTS, CARD = "config.json", "model.safetensors", "README.md"
MAX_CONFIG = 1 << 20  # a config.json is ~1 KB; a larger one is forged


@functools.cache
def _family(name: str) -> str:
    """The architecture ("squeezenet", "alexnet") a registered name builds (on the meta device: free)."""
    with torch.device("meta"):
        return registry.create_model(name).arch


def _check_config(config: object, source: str | Path) -> dict:
    """config.json's fields checked for type and meaning; a bad one is a SqueezeNetError naming `source`."""
    keys = ("architecture", "arch", "num_classes", "model_args")
    if not isinstance(config, dict) or any(k not in config for k in keys):
        raise SqueezeNetError(f"{source}: not a save_pretrained config.json (needs {', '.join(keys)})")
    name, arch, n, args = (config[k] for k in keys)
    if not isinstance(name, str) or name not in registry.list_models():
        raise SqueezeNetError(f"{source}: architecture {name!r:.40} is not a registered model (one of "
                              f"{', '.join(registry.list_models())})")
    if arch != _family(name):
        raise SqueezeNetError(f"{source}: architecture {name} builds a {_family(name)}, but arch is {arch!r:.40}")
    if type(n) is not int or not isinstance(args, dict) or "num_classes" in args:
        raise SqueezeNetError(f"{source}: num_classes must be an integer, model_args an object without it")
    return config


def write_pretrained(weights: Weights, directory: str | Path, name: str | None = None) -> Path:
    """Write `weights` as a Hub folder, each file atomically, config.json last; `name` (the registered model the
    configuration belongs to) defaults to the nearest one."""
    directory = Path(directory)
    name = name or registry.nearest_name(weights.arch, weights.config)[0]
    config = _check_config({"architecture": name, "arch": weights.arch, "num_classes": weights.num_classes,
                            "model_args": {k: v for k, v in weights.config.items() if k != "num_classes"}},
                           f"save_pretrained({name!r})")
    save(weights, directory / WEIGHTS)
    write_bytes(directory / CARD, model_card(weights, name).encode())
    write_bytes(directory / CONFIG, (json.dumps(config, indent=2) + "\n").encode())
    return directory


def save_pretrained(model: nn.Module, directory: str | Path, classes: list[str] | None = None,
                    preprocessing: Preprocessing | None = None, meta: dict | None = None) -> Path:
    """Write this model as a Hub folder (config.json, model.safetensors, README.md) and return the folder.

    Classes, preprocessing and metadata default to those it was loaded with (`pretrained_cfg`); when its
    classifier has been replaced since, the old classes and evaluations no longer apply and are dropped. A model
    with neither gets class names "0".."N-1" and torchvision's preprocessing."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    same = cfg.get("num_classes") == model.num_classes  # the classifier it was loaded with
    if classes is None:
        classes = cfg["classes"] if same and "classes" in cfg else [str(i) for i in range(model.num_classes)]
    if len(classes) != model.num_classes:
        raise ConfigError(f"{len(classes)} class names for a model with {model.num_classes} outputs")
    class_ids = cfg.get("class_ids") if same and classes == cfg.get("classes") else None
    if preprocessing is None:
        preprocessing = Preprocessing.from_dict(cfg["preprocessing"]) if "preprocessing" in cfg else TORCHVISION
    kept = dict(cfg.get("meta") or {})
    if cfg and not same:
        kept.pop("evaluations", None)
        kept["about"] = f"{cfg.get('about')}, with a new {model.num_classes}-class classifier"
    weights = Weights.from_model(model, classes, preprocessing, class_ids, kept | (meta or {}))
    return write_pretrained(weights, directory, cfg.get("architecture"))


def _read(directory: Path) -> tuple[str, Weights]:
    """(registered name, weights) of a Hub folder, config.json checked against the weights' own description."""
    path = directory / CONFIG
    if not path.is_file():
        raise SqueezeNetError(f"{directory}: no {CONFIG} (not a folder written by save_pretrained)")
    if path.stat().st_size > MAX_CONFIG:
        raise SqueezeNetError(f"{path}: {path.stat().st_size:,} bytes, more than a config.json holds")
    config = _check_config(parse_json(path.read_bytes(), path), path)
    if not (directory / WEIGHTS).is_file():
        raise SqueezeNetError(f"{directory}: no {WEIGHTS} beside its {CONFIG}")
    weights = read_safetensors(directory / WEIGHTS)
    described = config["model_args"] | {"num_classes": config["num_classes"]}
    if config["arch"] != weights.arch or described != weights.config:
        field = next((k for k in described.keys() | weights.config.keys()
                      if described.get(k) != weights.config.get(k)), "arch")
        raise SqueezeNetError(f"{path}: describes another network than {WEIGHTS} holds ({field} differs)")
    check_finite(weights.state_dict, directory / WEIGHTS)
    return config["architecture"], weights


def read_pretrained(directory: Path) -> Weights:
    """`squeezenet.load(DIR)` of a Hub folder: its weights, with classes, preprocessing and metadata."""
    return _read(Path(directory))[1]


def from_pretrained(cls: type[nn.Module], directory: str | Path) -> nn.Module:
    """The model a Hub folder holds, in eval mode, with `pretrained_cfg`; a folder of another architecture (an
    AlexNet for `SqueezeNet.from_pretrained`) is refused."""
    name, weights = _read(Path(directory))
    if weights.arch != cls.arch:
        raise SqueezeNetError(f"{directory}: {CONFIG} names {name}, a {weights.arch}; {cls.__name__}.from_pretrained "
                              f"reads a {cls.arch}")
    model = weights.build()
    model.pretrained_cfg = pretrained_cfg(weights, name, str(directory))
    return model


def add_methods() -> None:
    """`save_pretrained` and the class method `from_pretrained` on every model class, as Hugging Face's have."""
    for model_class, _ in registry.ARCHS.values():
        model_class.save_pretrained = save_pretrained
        model_class.from_pretrained = classmethod(from_pretrained)
