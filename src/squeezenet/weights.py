"""Weights that know what they are, as torchvision's do: architecture, classes, preprocessing, provenance.

`load(path)` reads every format the project knows, dispatching on the file's first bytes or its suffix:
the authors' Deep Compression `.net` (its prototxt found beside it) and the project's safetensors (metadata as
JSON in the header). Other formats join with `register_format`. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from .alexnet import AlexNet
from .atomic import atomic_path
from .config import SqueezeNetConfig
from .errors import SqueezeNetError
from .model import SqueezeNet
from .paths import imagenet_classes_file
from .preprocess import CAFFE, Preprocessing
from .registry import model_config

ARCHS = ("squeezenet", "alexnet")
METADATA_KEY = "squeezenet"


@dataclass
class Quantized:
    """A weight-shared tensor: `codebook[codes]`, code 0 is 0.0 (pruned or a filler)."""

    codes: np.ndarray  # uint8, the tensor's shape
    codebook: np.ndarray  # float (2^bits,), codebook[0] == 0
    bits: int

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= 8 or len(self.codebook) != 1 << self.bits or self.codebook[0] != 0:
            raise ValueError(f"need a codebook of 2^bits entries starting with 0.0 (bits={self.bits})")
        if self.codes.size and int(self.codes.max()) >= 1 << self.bits:
            raise ValueError(f"codes exceed {self.bits} bits")

    @property
    def weight(self) -> np.ndarray:
        return self.codebook[self.codes].astype(np.float32)


@dataclass
class Weights:
    """A state_dict with everything needed to use it. `class_ids` (e.g. wnids) map class folders to labels.

    `codebooks` holds the weight-shared tensors as stored when the file had them (the authors' `.net`, `.sqz`),
    so that they can be re-encoded losslessly."""

    arch: str
    config: dict
    state_dict: dict[str, torch.Tensor]
    classes: list[str]
    preprocessing: Preprocessing
    class_ids: list[str] | None = None
    meta: dict = field(default_factory=dict)
    codebooks: dict[str, Quantized] | None = field(default=None, repr=False, compare=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def build(self) -> nn.Module:
        """The network with these weights, in eval mode; a state_dict that does not fit is a SqueezeNetError.

        The fit is checked on the meta device first, so a forged configuration allocates nothing.
        """
        with torch.device("meta"):
            expected = architecture(self.arch, self.config).state_dict()
        missing = sorted(set(expected) - set(self.state_dict))
        extra = sorted(set(self.state_dict) - set(expected))
        wrong = [k for k in expected if k in self.state_dict and self.state_dict[k].shape != expected[k].shape]
        if missing or extra or wrong:
            what = (f"missing {missing[0]!r}" if missing else f"unexpected {extra[0]!r}" if extra else
                    f"{wrong[0]!r} has shape {tuple(self.state_dict[wrong[0]].shape)}, "
                    f"expected {tuple(expected[wrong[0]].shape)}")
            raise SqueezeNetError(f"weights do not fit their {self.arch} configuration: {what}")
        model = architecture(self.arch, self.config)
        if model.num_classes != self.num_classes:
            raise SqueezeNetError(f"{self.num_classes} class names for a model with {model.num_classes} outputs")
        model.load_state_dict(self.state_dict)
        return model.eval()

    @classmethod
    def from_model(cls, model: nn.Module, classes: list[str], preprocessing: Preprocessing,
                   class_ids: list[str] | None = None, meta: dict | None = None) -> Weights:
        """Wrap a trained SqueezeNet or AlexNet (e.g. to `save` it at the end of training)."""
        arch, config = describe(model)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        return cls(arch, config, state, list(classes), preprocessing, class_ids, dict(meta or {}))


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


# ------------------------------------------------------------------------------------------------ formats

Reader = Callable[[Path], Weights]


@dataclass(frozen=True)
class WeightFormat:
    name: str
    reader: Reader
    suffixes: tuple[str, ...] = ()
    magic: bytes | None = None


FORMATS: list[WeightFormat] = []


def register_format(name: str, reader: Reader, suffixes: tuple[str, ...] = (), magic: bytes | None = None) -> None:
    """Teach `load` a format: files starting with `magic` (checked first), else ending with one of `suffixes`."""
    FORMATS[:] = [f for f in FORMATS if f.name != name]
    FORMATS.append(WeightFormat(name, reader, tuple(s.lower() for s in suffixes), magic))


BUNDLED = {"imagenette": "squeezenet1_1-imagenette.sqz"}  # shipped inside the package: works with no data at hand


def bundled_path(name: str) -> Path:
    return Path(__file__).parent / "assets" / BUNDLED[name]


def resolve(path: str | Path) -> Path:
    """The file a weights argument names: a path, or a bundled model's name (`imagenette`)."""
    return bundled_path(str(path)) if str(path) in BUNDLED and not Path(path).exists() else Path(path)


def load(path: str | Path, prototxt: str | Path | None = None) -> Weights:
    """Read weights in any known format, or a bundled model by name (`load("imagenette")`).

    `prototxt` overrides the one found beside a Deep Compression file.
    """
    path = resolve(path)
    if not path.is_file():
        raise SqueezeNetError(f"weights file not found: {path} (bundled models: {', '.join(BUNDLED)})")
    if prototxt is not None:
        return read_deep_compression(path, prototxt)
    with open(path, "rb") as f:
        head = f.read(64)
    for fmt in FORMATS:
        if fmt.magic is not None and head.startswith(fmt.magic):
            return fmt.reader(path)
    for fmt in FORMATS:
        if path.suffix.lower() in fmt.suffixes:
            return fmt.reader(path)
    known = ", ".join(s for f in FORMATS for s in f.suffixes)
    raise SqueezeNetError(f"{path}: unknown weights format (known: {known})")


def imagenet_classes() -> tuple[list[str], list[str]]:
    """(wnids, human-readable names) of the 1000 ImageNet classes, read from the shared data."""
    path = imagenet_classes_file()
    try:
        lines = path.read_text().splitlines()
    except OSError:
        raise SqueezeNetError(f"ImageNet class names not found at {path} (set SQUEEZENET_SHARED)") from None
    pairs = [line.split(" ", 1) for line in lines if line.strip()]
    if len(pairs) != 1000 or any(len(p) != 2 for p in pairs):
        raise SqueezeNetError(f"{path}: expected 1000 lines 'wnid names'")
    return [p[0] for p in pairs], [p[1].strip() for p in pairs]


def read_deep_compression(path: Path, prototxt: str | Path | None = None) -> Weights:
    """The authors' `.net` as a dense Caffe-variant SqueezeNet (conv10 padding 1) with the Caffe preprocessing."""
    from .deepcompression import find_prototxt, read_net

    prototxt = Path(prototxt) if prototxt is not None else find_prototxt(path)
    decoded = read_net(path, prototxt)
    final = decoded.layers[-1].spec
    shapes = [lay.spec.shape for lay in decoded.layers]
    for name in ("squeezenet1_0", "squeezenet1_1"):
        if final.pad > 1:
            continue
        config = model_config(name, num_classes=final.out_channels, conv10_padding=final.pad, init="paper")
        expected = {k: tuple(p.shape) for k, p in SqueezeNet(config).state_dict().items() if k.endswith("weight")}
        if list(expected.values()) == shapes:
            break
    else:
        raise SqueezeNetError(f"{prototxt.name}: the layers do not describe SqueezeNet v1.0 or v1.1")
    state: dict[str, torch.Tensor] = {}
    codebooks: dict[str, Quantized] = {}
    for key, layer in zip(expected, decoded.layers, strict=True):
        state[key] = torch.from_numpy(layer.weight)
        state[key[: -len("weight")] + "bias"] = torch.from_numpy(layer.bias)
        codebooks[key] = Quantized(layer.codes, layer.codebook, 8)
    if final.out_channels == 1000:
        class_ids, classes = imagenet_classes()
    else:
        class_ids, classes = None, [f"class {i}" for i in range(final.out_channels)]
    meta = {"source": path.name, "format": "deep-compression", "prototxt": prototxt.name, **decoded.stats()}
    return Weights("squeezenet", config.to_dict(), state, classes, CAFFE, class_ids, meta, codebooks)


def read_safetensors(path: Path) -> Weights:
    """The project's safetensors: tensors plus a JSON description under the header key 'squeezenet'."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta_json = (f.metadata() or {}).get(METADATA_KEY)
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise SqueezeNetError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0]})") from None
    if meta_json is None:
        raise SqueezeNetError(f"{path}: safetensors file without squeezenet metadata (not written by this project)")
    try:
        d = json.loads(meta_json)
        weights = Weights(d["arch"], d["config"], state, list(d["classes"]),
                          Preprocessing.from_dict(d["preprocessing"]), d.get("class_ids"), d.get("meta", {}))
    except (ValueError, KeyError, TypeError) as e:
        raise SqueezeNetError(f"{path}: damaged squeezenet metadata ({type(e).__name__}: {e})") from None
    try:
        weights.build()
    except (SqueezeNetError, ValueError, TypeError) as e:
        raise SqueezeNetError(f"{path}: {e}") from None
    return weights


def save(weights: Weights, path: str | Path) -> Path:
    """Write weights and their description as safetensors, atomically."""
    path = Path(path)
    d = {"format_version": 1, "arch": weights.arch, "config": weights.config, "classes": weights.classes,
         "class_ids": weights.class_ids, "preprocessing": weights.preprocessing.to_dict(), "meta": weights.meta}
    tensors = {k: v.detach().cpu().contiguous() for k, v in weights.state_dict.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={METADATA_KEY: json.dumps(d)})
    return path


register_format("deep-compression", read_deep_compression, suffixes=(".net",))
register_format("safetensors", read_safetensors, suffixes=(".safetensors",))
