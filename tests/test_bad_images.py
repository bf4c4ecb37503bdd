"""Hostile image inputs are one-line errors within seconds, never a hang or a memory blow-up (fixtures made here)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from squeezenet.cli import main
from squeezenet.data.folders import list_samples, load_image
from squeezenet.errors import SqueezeNetError


def _predict(*paths: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "squeezenet", "predict", "imagenette", *paths],
                          capture_output=True, text=True, timeout=60)


def test_a_fifo_named_like_an_image_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "x.JPEG"
    os.mkfifo(fifo)
    r = _predict(str(fifo))
    assert r.returncode == 2 and "not a regular file" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_a_thin_strip_and_a_huge_image_are_refused_before_decoding(tmp_path):
    Image.new("L", (1, 100_000)).save(tmp_path / "strip.png")
    Image.new("L", (9000, 9000)).save(tmp_path / "huge.png")
    for name in ("strip.png", "huge.png"):
        with pytest.raises(SqueezeNetError, match="beyond the limits"):
            load_image(tmp_path / name)
    r = _predict(str(tmp_path / "strip.png"))
    assert r.returncode == 2 and "beyond the limits" in r.stderr


def test_a_16_bit_greyscale_png_is_scaled_not_clipped(tmp_path):
    a = np.full((40, 40), 40_000, dtype=np.uint16)  # 61% grey in 16 bits; clipping would make it white
    Image.fromarray(a).save(tmp_path / "g16.png")
    rgb = np.asarray(load_image(tmp_path / "g16.png"))
    assert rgb.shape == (40, 40, 3) and abs(int(rgb[0, 0, 0]) - round(40_000 / 257)) <= 1


def test_a_link_loop_in_a_data_folder_is_one_line(tmp_path, imagenette, capsys):
    cls = tmp_path / "val" / "n01440764"
    cls.mkdir(parents=True)
    src = sorted((imagenette / "val" / "n01440764").iterdir())[0]
    (cls / src.name).symlink_to(src)
    (cls / "loop.JPEG").symlink_to(cls / "loop.JPEG")
    assert main(["evaluate", "imagenette", "--data", str(tmp_path / "val"), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "loop.JPEG" in err and "symbolic links" in err and len(err.strip().splitlines()) == 1


def test_an_empty_class_folder_is_named(tmp_path, imagenette):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    src = sorted((imagenette / "val" / "n01440764").iterdir())[0]
    (tmp_path / "a" / src.name).symlink_to(src)
    with pytest.warns(UserWarning, match=f"{tmp_path / 'b'} has no images"):
        assert len(list_samples(tmp_path)) == 1
