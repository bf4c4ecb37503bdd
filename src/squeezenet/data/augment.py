"""Augmentation on uint8 batches: random resized crop and flip as one batched `grid_sample`, centre crop."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def to_nchw(batch: np.ndarray) -> torch.Tensor:
    """NHWC uint8 numpy -> NCHW uint8 tensor in channels_last memory (a view, no copy)."""
    return torch.from_numpy(np.require(batch, requirements=["C", "W"])).permute(0, 3, 1, 2)


def random_resized_crop_params(n: int, generator: torch.Generator, scale: tuple[float, float],
                               ratio: tuple[float, float] = (3 / 4, 4 / 3), flip: bool = True) -> torch.Tensor:
    """n affine maps (n, 2, 3), each a random crop box (area fraction in `scale`, aspect in `ratio`, clipped to
    the image) with a random horizontal flip, in grid_sample's normalised coordinates."""
    u = torch.rand(n, 5, generator=generator)
    area = scale[0] + (scale[1] - scale[0]) * u[:, 0]
    r = torch.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1])
    w, h = torch.sqrt(area * r).clamp(max=1.0), torch.sqrt(area / r).clamp(max=1.0)
    sign = torch.where(u[:, 4] < 0.5, -1.0, 1.0) if flip else torch.ones(n)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = w * sign, (1 - w) * (2 * u[:, 2] - 1)
    theta[:, 1, 1], theta[:, 1, 2] = h, (1 - h) * (2 * u[:, 3] - 1)
    return theta


def random_resized_crop(x: torch.Tensor, size: int, theta: torch.Tensor) -> torch.Tensor:
    """Crop, resize and flip a uint8 NCHW batch by per-image affine maps in one batched grid_sample.

    Returns float32 in 0..255; `theta` comes from `random_resized_crop_params`.
    """
    grid = F.affine_grid(theta, [x.shape[0], x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre `size`x`size` crop of an NCHW batch (evaluation: the cache already did the resize)."""
    top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
    return x[..., top:top + size, left:left + size]
