"""A plain PyTorch state_dict (`.pth`, `.pt`): torchvision's SqueezeNet checkpoints, read without unpickling code.

`torch.load(weights_only=True)` admits tensors and containers only, so a planted pickle runs nothing and is a
one-line error. The architecture is recognised from the tensors: conv1's shape says v1.0 or v1.1, conv10's the
number of classes. torchvision's conv10 has no padding, so the configuration is `squeezenet1_0` / `squeezenet1_1`
(not the authors' Caffe variant `squeezenet1_0_caffe`), with torchvision's preprocessing.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from squeezenet.errors import SqueezeNetError
from squeezenet.formats.weights import MAX_PARAMS, Weights, imagenet_classes
from squeezenet.models.preprocessing import TORCHVISION
from squeezenet.models.registry import model_config
from squeezenet.models.squeezenet import SqueezeNet

CONV1 = {(96, 3, 7, 7): "squeezenet1_0", (64, 3, 3, 3): "squeezenet1_1"}


def _state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a state_dict, or of a checkpoint that holds one under 'state_dict' or 'model'."""
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                       for k, v in obj.items()):
        raise SqueezeNetError(f"{path}: not a state_dict (a mapping of names to tensors)")
    return {k.removeprefix("module."): v for k, v in obj.items()}  # DDP-saved keys too


MAX_STATE_DICT_BYTES = 8 * MAX_PARAMS + (1 << 24)  # a state_dict of the largest model the project reads, in float64


def safe_load(path: Path, what: str, max_bytes: int = MAX_STATE_DICT_BYTES) -> object:
    """`torch.load` that runs no code (tensors and containers only) of a file no larger than `max_bytes`; anything
    else is one line naming `what`. Only the exception's type is told, since torch's message advises the unsafe
    `weights_only=False`; its warnings (e.g. an unusual pickle protocol) are silenced, to keep the error one line."""
    size = path.stat().st_size
    if size > max_bytes:
        raise SqueezeNetError(f"{path}: {size:,} bytes is more than any {what} holds ({max_bytes:,})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a damaged pickle fails anywhere in the unpickler (KeyError, IndexError, EOFError...)
        raise SqueezeNetError(f"{path}: not a readable {what}, refused without running it "
                              f"({type(e).__name__})") from None


def read_state_dict(path: Path) -> Weights:
    state = _state_dict(safe_load(path, "PyTorch state_dict"), path)
    conv1, conv10 = state.get("features.0.weight"), state.get("classifier.1.weight")
    if conv1 is None or conv10 is None or tuple(conv1.shape) not in CONV1 or conv10.dim() != 4:
        raise SqueezeNetError(f"{path}: not a torchvision SqueezeNet state_dict (features.0 / classifier.1 missing "
                              "or of another shape)")
    name, n = CONV1[tuple(conv1.shape)], conv10.shape[0]
    config = model_config(name, num_classes=n)
    with torch.device("meta"):
        expected = SqueezeNet(config).state_dict()
    if set(expected) != set(state):
        diff = sorted(set(expected) ^ set(state))[0]
        raise SqueezeNetError(f"{path}: keys do not match torchvision's {name} (first difference: {diff})")
    if n == 1000:
        try:
            class_ids, classes = imagenet_classes()
        except SqueezeNetError:
            class_ids, classes = None, [f"class {i}" for i in range(n)]
    else:
        class_ids, classes = None, [f"class {i}" for i in range(n)]
    state = {k: state[k].float().contiguous() for k in expected}
    meta = {"source": path.name, "format": "torch state_dict", "config_needed": f"{name} (conv10 without padding)"}
    w = Weights("squeezenet", config.to_dict(), state, classes, TORCHVISION, class_ids, meta)
    w.build()  # shapes checked
    return w
