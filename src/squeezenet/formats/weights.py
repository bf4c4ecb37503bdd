"""Weights that know what they are, as torchvision's do: architecture, classes, preprocessing, provenance.

`load(path)` reads every format the project knows, dispatching on the file's first bytes or its suffix: the
authors' Deep Compression `.net` (its prototxt found beside it), the project's safetensors (metadata as JSON in the
header), a `save_pretrained` folder. Other formats join with `register_format`. Nothing is ever unpickled, and a
header is untrusted whatever its checksum: its JSON is bounded in depth, every field checked for type and range.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from squeezenet.errors import ConfigError, SqueezeNetError
from squeezenet.models.preprocessing import Preprocessing
from squeezenet.models.registry import ARCHS, architecture, describe
from squeezenet.paths import imagenet_classes_file

METADATA_KEY = "squeezenet"  # where a container (safetensors, ONNX) keeps the header
HEADER_VERSION = 2  # 2: preprocessing.resize_mode; 1 (or none): Caffe's warp implied by its mean
MAX_PARAMS = 1 << 26  # the largest model a file may describe (67.1 M parameters; AlexNet has 61.0 M)
MAX_JSON_DEPTH = 64  # a header nests 4 deep; deeper is forged, and would be a RecursionError where it is walked


def parse_json(data: str | bytes, source: str | Path) -> object:
    """JSON from a file: bad syntax, bad encoding or nesting deeper than `MAX_JSON_DEPTH` is a one-line
    SqueezeNetError naming `source`, so that no later `repr` or walk of the value can recurse without bound."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise SqueezeNetError(f"{source}: JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise SqueezeNetError(f"{source}: not valid JSON ({str(e).splitlines()[0]})") from None
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        v, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise SqueezeNetError(f"{source}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
        children = v.values() if isinstance(v, dict) else v
        stack += [(c, depth + 1) for c in children if isinstance(c, (dict, list))]
    return value


def skeleton(arch: str, config: dict) -> nn.Module:
    """The network `arch` and `config` describe, on the meta device (it allocates nothing): a forged configuration
    is a SqueezeNetError, a model of more than `MAX_PARAMS` parameters too, before any file data is read."""
    try:
        with torch.device("meta"):
            model = architecture(arch, config)
    except (TypeError, ValueError, OverflowError) as e:
        raise SqueezeNetError(f"invalid {arch} configuration: {str(e).splitlines()[0]}") from None
    n = sum(v.numel() for v in model.state_dict().values())
    if n > MAX_PARAMS:
        raise SqueezeNetError(f"the configuration describes {n:,} parameters, more than {MAX_PARAMS:,}")
    return model


@functools.lru_cache(maxsize=64)
def _facts(arch: str, config_json: str) -> tuple[tuple[tuple[str, tuple[int, ...]], ...], int]:
    model = skeleton(arch, json.loads(config_json))
    return tuple((k, tuple(v.shape)) for k, v in model.state_dict().items()), model.num_classes


def state_shapes(arch: str, config: dict) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The state_dict's (name, shape) pairs of `arch` and `config`, in order; remembered, as every file read
    checks them (building even a meta-device skeleton costs more than decoding a layer)."""
    return _facts(arch, json.dumps(config, sort_keys=True))[0]


def mismatch(expected: dict[str, tuple[int, ...]], shapes: dict[str, tuple[int, ...]]) -> str | None:
    """The first difference between two state_dicts' names and shapes, in words; None when they agree."""
    missing = sorted(set(expected) - set(shapes))
    extra = sorted(set(shapes) - set(expected))
    wrong = [k for k in expected if k in shapes and tuple(shapes[k]) != tuple(expected[k])]
    if missing or extra or wrong:
        return (f"missing {missing[0]!r}" if missing else f"unexpected {extra[0]!r}" if extra else
                f"{wrong[0]!r} has shape {tuple(shapes[wrong[0]])}, expected {tuple(expected[wrong[0]])}")
    return None


def check_fit(arch: str, config: dict, shapes: dict[str, tuple[int, ...]]) -> None:
    """Raise SqueezeNetError unless `shapes` (name -> shape) are exactly the state_dict of `arch` and `config`."""
    what = mismatch(dict(state_shapes(arch, config)), shapes)
    if what:
        raise SqueezeNetError(f"weights do not fit their {arch} configuration: {what}")


def check_finite(state: dict[str, torch.Tensor], source: str | Path) -> None:
    """NaN or infinite weights would predict garbage without a word: refused, naming the tensor."""
    for name, t in state.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise SqueezeNetError(f"{source}: tensor {name!r} holds NaN or infinite values")


@dataclass
class Quantized:
    """A weight-shared tensor: `codebook[codes]`, code 0 is 0.0 (pruned or a filler)."""

    codes: np.ndarray  # uint8, the tensor's shape
    codebook: np.ndarray  # float (2^bits,), codebook[0] == 0
    bits: int

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= 8 or len(self.codebook) != 1 << self.bits or self.codebook[0] != 0:
            raise ConfigError(f"need a codebook of 2^bits entries starting with 0.0 (bits={self.bits})")
        if self.codes.size and int(self.codes.max()) >= 1 << self.bits:
            raise ConfigError(f"codes exceed {self.bits} bits")

    @property
    def weight(self) -> np.ndarray:
        return self.codebook[self.codes].astype(np.float32, copy=False)


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

    @property
    def num_params(self) -> int:
        """Every stored value (weights, biases, BatchNorm statistics)."""
        return sum(v.numel() for v in self.state_dict.values())

    @property
    def fp32_bytes(self) -> int:
        """The size in fp32, 4 bytes a value: the paper's uncompressed sizes (4.8 MB, 240 MB)."""
        return 4 * self.num_params

    def build(self) -> nn.Module:
        """The network with these weights, in eval mode; a state_dict that does not fit is a SqueezeNetError.

        The fit is checked on the meta device first, so a forged configuration allocates nothing.
        """
        check_fit(self.arch, self.config, {k: tuple(v.shape) for k, v in self.state_dict.items()})
        model = architecture(self.arch, self.config)
        if model.num_classes != self.num_classes:
            raise SqueezeNetError(f"{self.num_classes} class names for a model with {model.num_classes} outputs")
        model.load_state_dict(self.state_dict)
        return model.eval()

    def header(self, compact: bool = False) -> dict:
        """The description every format stores beside the tensors (JSON, schema `HEADER_VERSION`).

        `compact`: the standard 1000 ImageNet classes as the name "imagenet" (14 KB saved in a 400 KB file)."""
        classes: list[str] | str = self.classes
        class_ids = self.class_ids
        if compact and len(self.classes) == 1000:
            try:
                if (class_ids, self.classes) == tuple(imagenet_classes()):
                    classes, class_ids = "imagenet", None
            except SqueezeNetError:
                pass
        return {"format_version": HEADER_VERSION, "arch": self.arch, "config": self.config, "classes": classes,
                "class_ids": class_ids, "preprocessing": self.preprocessing.to_dict(), "meta": self.meta}

    @classmethod
    def from_header(cls, header: dict, state: dict[str, torch.Tensor]) -> Weights:
        """Weights from a stored description, every field checked for its type and range first (a header is
        untrusted, whatever its checksum says); a bad one is a SqueezeNetError naming it. Headers of every earlier
        version read."""
        def bad(what: str) -> SqueezeNetError:
            return SqueezeNetError(f"damaged squeezenet metadata: {what}")

        if not isinstance(header, dict):
            raise bad("not a JSON object")
        version = header.get("format_version", 1)
        if type(version) is not int or not 1 <= version <= HEADER_VERSION:
            raise bad(f"format_version {version!r:.40} (this reader knows 1..{HEADER_VERSION})")
        arch, config = header.get("arch"), header.get("config")
        if not isinstance(arch, str) or arch not in ARCHS or not isinstance(config, dict):
            raise bad(f"arch must be one of {', '.join(ARCHS)} with a config object")
        try:
            outputs = _facts(arch, json.dumps(config, sort_keys=True))[1]  # remembered, as state_shapes
        except SqueezeNetError as e:
            raise bad(str(e)) from None
        classes, class_ids = header.get("classes"), header.get("class_ids")
        if classes == "imagenet":
            class_ids, classes = imagenet_classes()
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise bad('classes must be a list of strings (or "imagenet")')
        if len(classes) != outputs:
            raise bad(f"{len(classes)} class names for a model with {outputs} outputs")
        if class_ids is not None and (not isinstance(class_ids, list) or len(class_ids) != len(classes)
                                      or not all(isinstance(c, str) for c in class_ids)):
            raise bad("class_ids must be a list of strings, one per class")
        meta = {} if header.get("meta") is None else header["meta"]
        if not isinstance(meta, dict):
            raise bad("meta must be an object")
        try:
            pre = Preprocessing.from_dict(header.get("preprocessing"))
        except ConfigError as e:
            raise bad(f"preprocessing: {e}") from None
        return cls(arch, config, state, list(classes), pre, class_ids, dict(meta))

    @classmethod
    def from_model(cls, model: nn.Module, classes: list[str], preprocessing: Preprocessing,
                   class_ids: list[str] | None = None, meta: dict | None = None) -> Weights:
        """Wrap a trained SqueezeNet or AlexNet (e.g. to `save` it at the end of training)."""
        arch, config = describe(model)
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        return cls(arch, config, state, list(classes), preprocessing, class_ids, dict(meta or {}))


Reader = Callable[..., Weights]  # (path, **options)


@dataclass(frozen=True)
class WeightFormat:
    name: str
    reader: Reader
    suffixes: tuple[str, ...] = ()
    magic: bytes | None = None
    folder: bool = False  # reads a folder, not a file


FORMATS: list[WeightFormat] = []


def register_format(name: str, reader: Reader, suffixes: tuple[str, ...] = (), magic: bytes | None = None,
                    folder: bool = False) -> None:
    """Teach `load` a format: files starting with `magic` (checked first), else ending in `suffixes`; or folders."""
    FORMATS[:] = [f for f in FORMATS if f.name != name]
    FORMATS.append(WeightFormat(name, reader, tuple(s.lower() for s in suffixes), magic, folder))


BUNDLED = {"imagenette": "squeezenet1_1-imagenette.sqz"}  # shipped inside the package: works with no data at hand


def bundled_path(name: str) -> Path:
    return Path(__file__).parents[1] / "assets" / BUNDLED[name]


def resolve(path: str | Path) -> Path:
    """The file a weights argument names: a path, or a bundled model's name (`imagenette`)."""
    return bundled_path(str(path)) if str(path) in BUNDLED and not Path(path).exists() else Path(path)


def _format(path: Path) -> WeightFormat:
    """The registered format of a file: by its first bytes, else by its suffix; of a folder, the folder format."""
    if path.is_dir():
        found = [f for f in FORMATS if f.folder]
    else:
        with open(path, "rb") as f:
            head = f.read(64)
        found = [f for f in FORMATS if f.magic is not None and head.startswith(f.magic)]
        found += [f for f in FORMATS if path.suffix.lower() in f.suffixes]
    if not found:
        known = ", ".join(s for f in FORMATS for s in f.suffixes)
        raise SqueezeNetError(f"{path}: unknown weights format (known: {known})")
    return found[0]


def load(path: str | Path, prototxt: str | Path | None = None) -> Weights:
    """Read weights in any known format (a file, or a `save_pretrained` folder), or a bundled model by name.

    `prototxt` overrides the one found beside a Deep Compression file. Whatever the format, NaN or infinite
    weights are refused.
    """
    path = resolve(path)
    if not path.is_file() and not (path.is_dir() and prototxt is None):
        raise SqueezeNetError(f"weights file not found: {path} (bundled models: {', '.join(BUNDLED)})")
    fmt = _format(path) if prototxt is None else next(f for f in FORMATS if f.name == "deep-compression")
    weights = fmt.reader(path) if prototxt is None else fmt.reader(path, prototxt)
    check_finite(weights.state_dict, path)
    return weights


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
