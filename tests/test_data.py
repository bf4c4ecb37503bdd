"""The decoded uint8 cache (built once, memory-mapped, invalidated on change), augmentation, bad images."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from squeezenet.data.augment import center_crop, random_resized_crop, random_resized_crop_params, to_nchw
from squeezenet.data.cache import decode_cached, decoded_cache_paths
from squeezenet.data.folders import dataset, list_samples
from squeezenet.errors import SqueezeNetError


def test_cache_is_reused_and_invalidated(folder, tmp_path):
    samples = list_samples(folder)
    a = decode_cached(samples, 40, tmp_path / "cache", progress=False)
    assert a.images.shape == (10, 40, 40, 3) and a.images.dtype == np.uint8 and list(a.labels) == [0] * 5 + [1] * 5
    assert isinstance(a.images, np.memmap)
    npy, _ = decoded_cache_paths(samples, 40, tmp_path / "cache")
    mtime = npy.stat().st_mtime_ns
    b = decode_cached(samples, 40, tmp_path / "cache", progress=False)
    assert npy.stat().st_mtime_ns == mtime and np.array_equal(a.images, b.images)  # reused, not rebuilt
    # a changed source file or another resolution invalidates it
    p = samples.paths[0]
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    decode_cached(list_samples(folder), 40, tmp_path / "cache", progress=False)
    assert npy.stat().st_mtime_ns != mtime
    assert decode_cached(samples, 32, tmp_path / "cache", progress=False).images.shape[1] == 32


def test_corrupt_image_is_named_or_skipped(folder, tmp_path):
    bad = sorted((folder).glob("*/*"))[3]
    bad.write_bytes(bad.read_bytes()[:300])  # truncated JPEG
    with pytest.raises(SqueezeNetError, match=bad.name):
        decode_cached(list_samples(folder), 40, tmp_path / "cache", progress=False)
    with pytest.warns(UserWarning, match=bad.name):
        d = decode_cached(list_samples(folder), 40, tmp_path / "cache", skip_bad=True, progress=False)
    assert len(d) == 9 and d.skipped == [str(bad)] and d.images.shape[0] == 9


def test_augmentation_on_uint8(folder, tmp_path):
    d = decode_cached(list_samples(folder), 40, tmp_path / "cache", progress=False)
    x = to_nchw(d.images[:4])
    assert x.dtype == torch.uint8 and x.is_contiguous(memory_format=torch.channels_last)
    # full-area crop without flip is the identity (up to interpolation rounding)
    theta = torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]]).repeat(4, 1, 1)
    assert (random_resized_crop(x, 40, theta) - x.float()).abs().max() < 1e-3
    g = torch.Generator().manual_seed(0)
    t = random_resized_crop_params(4, g, (0.35, 1.0))
    y = random_resized_crop(x, 32, t)
    assert y.shape == (4, 3, 32, 32) and -1e-3 <= y.min() and y.max() <= 255 + 1e-3
    assert torch.equal(t, random_resized_crop_params(4, torch.Generator().manual_seed(0), (0.35, 1.0)))
    assert center_crop(x, 32).shape == (4, 3, 32, 32)


def test_folder_mistakes_say_what_to_pass(tiny, tmp_path):
    with pytest.raises(SqueezeNetError, match=r"^data folder not found: .*typo$"):
        dataset(tmp_path / "typo")
    with pytest.raises(SqueezeNetError, match=f"pass its parent, --data {tiny}$"):
        dataset(tiny / "train")
    assert dataset(tiny) == tiny
    with pytest.raises(SqueezeNetError, match=f"not among the model's classes: pass the split, e.g. {tiny / 'val'}"):
        list_samples(tiny, classes=sorted(os.listdir(tiny / "val")))
