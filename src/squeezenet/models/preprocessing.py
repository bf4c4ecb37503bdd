"""How an image becomes a network input; weights carry theirs, because a model is only right with its own.

Each preset is the protocol a family of weights was trained with:
- `caffe` (the authors' released model): Caffe's ImageNet pipeline *warps* every image to 256x256 (aspect ratio
  not kept), then cuts the centre 227x227; BGR, 0..255 minus the per-channel mean. Scaling the shorter side instead
  loses accuracy on natural-aspect images (imagenet-sample-750).
- `torchvision`: the shorter side to 256, the centre 224x224; RGB scaled to 0..1, ImageNet mean/std.
`at_size(n)` gives the same protocol at another resolution (e.g. a model trained at 128 px).
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, fields, replace
from numbers import Integral, Real

import numpy as np
import torch
from PIL import Image

from squeezenet.errors import ConfigError


@dataclass(frozen=True)
class Preprocessing:
    """Resize, centre crop, then `(pixel * pixel_scale - mean) / std` in `channel_order`.

    `resize_mode` "shorter" scales the shorter side to `resize_size` (aspect kept), "warp" scales the whole image
    to `resize_size` x `resize_size` (Caffe). `resize_size=None` resizes to the crop size (no border is cut).
    With `keep_crop_sized`, an image that already is `crop_size` square is used as it is (the shared
    imagenet-val-1300 images are prescaled). `mean` and `std` are given in the output channel order.
    """

    crop_size: int
    resize_size: int | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channel_order: str = "RGB"
    pixel_scale: float = 1.0
    keep_crop_sized: bool = False
    resize_mode: str = "shorter"

    def __post_init__(self) -> None:
        """Every field checked for type and range, since a weights file's header may hold anything JSON can say
        (a string, Infinity, a crop of 50000 that would exhaust memory at the first image)."""
        def size(v: object) -> bool:
            return isinstance(v, Integral) and not isinstance(v, bool) and 1 <= v <= MAX_SIZE

        def finite(v: object) -> bool:
            return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v)

        if not size(self.crop_size) or not (self.resize_size is None or size(self.resize_size)):
            raise ConfigError(f"crop_size and resize_size must be integers in 1..{MAX_SIZE} (resize_size may be "
                              f"null), got {self.crop_size!r:.40} and {self.resize_size!r:.40}")
        if self.resize_size is not None and self.resize_size < self.crop_size:
            raise ConfigError(f"need crop_size <= resize_size, got {self.crop_size} and {self.resize_size}")
        for name in ("mean", "std"):
            v = getattr(self, name)
            if not isinstance(v, (list, tuple)) or len(v) != 3 or not all(finite(x) for x in v):
                raise ConfigError(f"{name} must be 3 finite numbers, got {v!r:.60}")
            object.__setattr__(self, name, tuple(float(x) for x in v))
        if min(self.std) <= 0 or not finite(self.pixel_scale) or self.pixel_scale <= 0:
            raise ConfigError(f"std and pixel_scale must be positive, got {self.std} and {self.pixel_scale!r:.40}")
        if self.channel_order not in ("RGB", "BGR"):
            raise ConfigError(f"channel_order must be 'RGB' or 'BGR', got {self.channel_order!r:.40}")
        if self.resize_mode not in RESIZE_MODES:
            raise ConfigError(f"resize_mode must be one of {', '.join(RESIZE_MODES)}, got {self.resize_mode!r:.40}")
        if not isinstance(self.keep_crop_sized, bool):
            raise ConfigError(f"keep_crop_sized must be true or false, got {self.keep_crop_sized!r:.40}")

    def at_size(self, crop_size: int) -> Preprocessing:
        """The same normalisation at another crop size, keeping the resize/crop ratio (256/224 -> 146/128)."""
        resize = None if self.resize_size is None else round(crop_size * self.resize_size / self.crop_size)
        return replace(self, crop_size=crop_size, resize_size=resize)

    def resize_crop(self, image: Image.Image) -> Image.Image:
        """PIL image -> crop_size x crop_size RGB image."""
        image = image.convert("RGB")
        c = self.crop_size
        if self.keep_crop_sized and image.size == (c, c):
            return image
        return resize_and_crop(image, self.resize_size or c, c, warp=self.resize_mode == "warp")

    def to_uint8(self, image: Image.Image) -> torch.Tensor:
        """Resized and cropped image as a uint8 CHW RGB tensor (what a training cache keeps)."""
        return torch.from_numpy(np.array(self.resize_crop(image), dtype=np.uint8)).permute(2, 0, 1)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (or float 0..255) NCHW RGB tensor -> float32 network input."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ConfigError(f"expected an (N, 3, H, W) tensor, got {tuple(x.shape)}")
        x = x.float()
        if self.channel_order == "BGR":
            x = x.flip(1)
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return (x * self.pixel_scale - mean) / std

    def __call__(self, image: Image.Image | torch.Tensor) -> torch.Tensor:
        """PIL image or uint8 CHW RGB tensor -> float32 CHW tensor: a transform a DataLoader can use."""
        if isinstance(image, torch.Tensor):
            if image.dtype != torch.uint8 or image.dim() != 3 or image.shape[0] != 3:
                raise ConfigError(f"expected a uint8 (3, H, W) tensor, got {image.dtype} {tuple(image.shape)}")
            image = Image.fromarray(image.permute(1, 2, 0).contiguous().numpy())
        return self.normalize(self.to_uint8(image)[None])[0]

    @property
    def protocol(self) -> str:
        """The resize and crop in words, e.g. 'warp to 256x256, centre crop 227' (what a figure was measured with)."""
        r, c = self.resize_size or self.crop_size, self.crop_size
        resize = f"warp to {r}x{r}" if self.resize_mode == "warp" else f"shorter side to {r}"
        kept = f" ({c}x{c} images kept as they are)" if self.keep_crop_sized else ""
        return f"{resize}, centre crop {c}{kept}, {self.channel_order}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        """Read a stored description (untrusted: anything but a valid one is a ConfigError); files written before
        `resize_mode` existed get their weights' protocol (Caffe's mean and BGR order mean the authors' pipeline,
        which warps)."""
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING}
        if not isinstance(d, dict) or set(d) - names or required - set(d):
            raise ConfigError(f"not a preprocessing description (needs {', '.join(sorted(required))}): {d!r:.80}")
        if "resize_mode" not in d:
            caffe = d.get("channel_order") == "BGR" and d.get("mean") in (CAFFE.mean, list(CAFFE.mean))
            d = d | {"resize_mode": "warp" if caffe else "shorter"}
        return cls(**d)


RESIZE_MODES = ("shorter", "warp")
MAX_SIZE = 4096  # crop and resize sizes: larger ones are forged (a 50000 px crop is 7.5 GB an image)


def resize_and_crop(image: Image.Image, resize: int, crop: int, warp: bool = False) -> Image.Image:
    """Scale the shorter side to `resize` (or, `warp`, the whole image to `resize` x `resize`), bilinear, then
    cut the centre `crop` x `crop` square."""
    w, h = image.size
    if warp:
        if (w, h) != (resize, resize):
            w = h = resize
            image = image.resize((w, h), Image.BILINEAR)
    elif min(w, h) != resize:
        s = resize / min(w, h)
        w, h = max(crop, round(w * s)), max(crop, round(h * s))
        image = image.resize((w, h), Image.BILINEAR)
    left, top = (w - crop) // 2, (h - crop) // 2
    return image.crop((left, top, left + crop, top + crop))


CAFFE = Preprocessing(crop_size=227, resize_size=256, mean=(104.0, 117.0, 123.0), std=(1.0, 1.0, 1.0),
                      channel_order="BGR", pixel_scale=1.0, keep_crop_sized=True, resize_mode="warp")


TORCHVISION = Preprocessing(crop_size=224, resize_size=256, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                            channel_order="RGB", pixel_scale=1 / 255)


PRESETS = {"caffe": CAFFE, "torchvision": TORCHVISION}


def preset(name: str, crop_size: int | None = None) -> Preprocessing:
    """A named preset, optionally at another crop size: `preset("torchvision", 128)`."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preprocessing {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name] if crop_size is None else PRESETS[name].at_size(crop_size)
