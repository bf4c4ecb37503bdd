"""How an image becomes a network input; weights carry theirs, because a model is only right with its own.

Two presets: `caffe` (the authors' released model: 227 px, BGR, 0..255 minus the per-channel mean) and
`torchvision` (RGB scaled to 0..1, ImageNet mean/std, 224 px). `at_size(n)` gives the same normalisation at
another resolution (e.g. a model trained at 128 px).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import numpy as np
import torch
from PIL import Image


@dataclass(frozen=True)
class Preprocessing:
    """Resize (shorter side), centre crop, then `(pixel * pixel_scale - mean) / std` in `channel_order`.

    `resize_size=None` scales the shorter side to the crop size (no border is cut). With `keep_crop_sized`, an
    image that already is `crop_size` square is used as it is (the shared validation images are prescaled).
    `mean` and `std` are given in the output channel order.
    """

    crop_size: int
    resize_size: int | None
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channel_order: str = "RGB"
    pixel_scale: float = 1.0
    keep_crop_sized: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if self.channel_order not in ("RGB", "BGR"):
            raise ValueError(f"channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")
        if self.crop_size < 1 or (self.resize_size is not None and self.resize_size < self.crop_size):
            raise ValueError(f"need 1 <= crop_size <= resize_size, got {self.crop_size} and {self.resize_size}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0 or self.pixel_scale <= 0:
            raise ValueError("mean and std need 3 values each, std and pixel_scale must be positive")

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
        return resize_and_crop(image, self.resize_size or c, c)

    def to_uint8(self, image: Image.Image) -> torch.Tensor:
        """Resized and cropped image as a uint8 CHW RGB tensor (what a training cache keeps)."""
        return torch.from_numpy(np.array(self.resize_crop(image), dtype=np.uint8)).permute(2, 0, 1)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (or float 0..255) NCHW RGB tensor -> float32 network input."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an (N, 3, H, W) tensor, got {tuple(x.shape)}")
        x = x.float()
        if self.channel_order == "BGR":
            x = x.flip(1)
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return (x * self.pixel_scale - mean) / std

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """PIL image -> float32 CHW tensor."""
        return self.normalize(self.to_uint8(image)[None])[0]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        known = {f.name for f in fields(cls)}
        if not isinstance(d, dict) or set(d) - known:
            raise ValueError(f"not a preprocessing description: {d!r}")
        return cls(**d)


def resize_and_crop(image: Image.Image, resize: int, crop: int) -> Image.Image:
    """Scale the shorter side to `resize` (bilinear), then cut the centre `crop` x `crop` square."""
    w, h = image.size
    if min(w, h) != resize:
        s = resize / min(w, h)
        w, h = max(crop, round(w * s)), max(crop, round(h * s))
        image = image.resize((w, h), Image.BILINEAR)
    left, top = (w - crop) // 2, (h - crop) // 2
    return image.crop((left, top, left + crop, top + crop))


CAFFE = Preprocessing(crop_size=227, resize_size=256, mean=(104.0, 117.0, 123.0), std=(1.0, 1.0, 1.0),
                      channel_order="BGR", pixel_scale=1.0, keep_crop_sized=True)
TORCHVISION = Preprocessing(crop_size=224, resize_size=256, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                            channel_order="RGB", pixel_scale=1 / 255)
PRESETS = {"caffe": CAFFE, "torchvision": TORCHVISION}


def preset(name: str, crop_size: int | None = None) -> Preprocessing:
    """A named preset, optionally at another crop size: `preset("torchvision", 128)`."""
    if name not in PRESETS:
        raise ValueError(f"unknown preprocessing {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name] if crop_size is None else PRESETS[name].at_size(crop_size)
