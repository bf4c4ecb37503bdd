"""Preprocessing presets on real images: sizes, channel order, normalisation, serialisation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from squeezenet.models.preprocessing import CAFFE, TORCHVISION, Preprocessing, preset


@pytest.fixture(scope="module")
def val_image(imagenet_val) -> Image.Image:
    return Image.open(sorted((imagenet_val / "images").iterdir())[0]).convert("RGB")


@pytest.fixture(scope="module")
def nette_image(imagenette) -> Image.Image:
    return Image.open(sorted((imagenette / "val" / "n03888257").iterdir())[0]).convert("RGB")


def test_caffe_keeps_a_227_image_and_subtracts_the_bgr_mean(val_image):
    assert val_image.size == (227, 227)
    x = CAFFE(val_image)
    rgb = np.asarray(val_image, dtype=np.float32)
    assert x.shape == (3, 227, 227) and x.dtype == torch.float32
    expected = rgb[:, :, ::-1].transpose(2, 0, 1) - np.array([104, 117, 123], np.float32)[:, None, None]
    np.testing.assert_array_equal(x.numpy(), expected)


def test_caffe_resizes_other_sizes(nette_image):
    assert nette_image.size == (224, 224)
    assert CAFFE(nette_image).shape == (3, 227, 227)
    wide = nette_image.crop((0, 40, 224, 184))  # 224 x 144: warped to 256 x 256, then the centre
    assert CAFFE.resize_crop(wide).size == (227, 227)


@pytest.fixture(scope="module")
def natural_image(shared) -> Image.Image:
    """A real ImageNet photo at its own aspect ratio (shorter side 288)."""
    folder = shared / "data" / "imagenet-sample-750" / "images"
    image = next(im for im in (Image.open(p).convert("RGB") for p in sorted(folder.iterdir())[:20])
                 if abs(im.size[0] / im.size[1] - 1) > 0.2)
    assert min(image.size) == 288
    return image


def test_each_preset_does_its_documented_resize_and_crop(natural_image):
    """caffe: the whole image warped to 256x256, centre 227; torchvision: shorter side 256 (aspect kept),
    centre 224. Each is compared with the same steps written out here with PIL."""
    w, h = natural_image.size
    warped = natural_image.resize((256, 256), Image.BILINEAR)
    np.testing.assert_array_equal(np.asarray(CAFFE.resize_crop(natural_image)),
                                  np.asarray(warped.crop((14, 14, 241, 241))))
    s = 256 / min(w, h)
    sw, sh = round(w * s), round(h * s)
    assert min(sw, sh) == 256 and max(sw, sh) > 256
    scaled = natural_image.resize((sw, sh), Image.BILINEAR)
    left, top = (sw - 224) // 2, (sh - 224) // 2
    np.testing.assert_array_equal(np.asarray(TORCHVISION.resize_crop(natural_image)),
                                  np.asarray(scaled.crop((left, top, left + 224, top + 224))))
    assert "warp to 256x256, centre crop 227" in CAFFE.protocol
    assert TORCHVISION.protocol.startswith("shorter side to 256, centre crop 224")


def test_warp_and_shorter_side_agree_on_a_square_image(nette_image):
    """Imagenette's images are square: figures measured on them do not depend on the resize mode."""
    shorter = Preprocessing(**CAFFE.to_dict() | {"resize_mode": "shorter"})
    torch.testing.assert_close(shorter(nette_image), CAFFE(nette_image))


def test_files_written_before_resize_mode_read_with_their_protocol():
    old_caffe = {k: v for k, v in CAFFE.to_dict().items() if k != "resize_mode"}
    old_tv = {k: v for k, v in TORCHVISION.at_size(160).to_dict().items() if k != "resize_mode"}
    assert Preprocessing.from_dict(old_caffe) == CAFFE
    assert Preprocessing.from_dict(old_tv).resize_mode == "shorter"


def test_torchvision_preset(nette_image):
    x = TORCHVISION(nette_image)
    assert x.shape == (3, 224, 224)
    crop = np.asarray(nette_image.resize((256, 256), Image.BILINEAR), np.float32)[16:240, 16:240] / 255
    mean, std = np.array(TORCHVISION.mean, np.float32), np.array(TORCHVISION.std, np.float32)
    np.testing.assert_allclose(x.numpy(), ((crop - mean) / std).transpose(2, 0, 1), atol=1e-5)


def test_normalize_matches_the_image_path(nette_image):
    p = preset("torchvision", 128)
    assert (p.crop_size, p.resize_size) == (128, 146)
    u8 = p.to_uint8(nette_image)
    assert u8.dtype == torch.uint8 and u8.shape == (3, 128, 128)
    batch = torch.stack([u8, u8.flip(2)])
    out = p.normalize(batch)
    torch.testing.assert_close(out[0], p(nette_image))
    torch.testing.assert_close(CAFFE.normalize(batch)[:, 0], batch[:, 2].float() - 104)  # BGR: blue first
    with pytest.raises(ValueError):
        p.normalize(u8)


def test_serialisation_and_validation():
    for p in (CAFFE, TORCHVISION, TORCHVISION.at_size(96)):
        assert Preprocessing.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    for bad in ({"crop_size": 10, "resize_size": 5, "mean": (0, 0, 0), "std": (1, 1, 1)},
                {"crop_size": 10, "resize_size": None, "mean": (0, 0, 0), "std": (1, 1, 1), "channel_order": "GBR"},
                {"crop_size": 10, "resize_size": None, "mean": (0, 0, 0), "std": (1, 0, 1)},
                {"crop": 10}):
        with pytest.raises((ValueError, TypeError)):
            Preprocessing.from_dict(bad)
    with pytest.raises(ValueError, match="unknown preprocessing"):
        preset("imagenet")
