"""Weights with their metadata: the authors' file, the project's safetensors, format dispatch, damaged files."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

import squeezenet
from squeezenet.cli import main
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.weights import FORMATS, Weights, register_format
from squeezenet.models.preprocessing import CAFFE, TORCHVISION


@pytest.fixture(scope="module")
def authors(authors_model) -> Weights:
    return squeezenet.load(authors_model / "compressed_SqueezeNet.net")


def test_authors_weights_carry_their_metadata(authors, shared):
    assert authors.arch == "squeezenet" and authors.preprocessing == CAFFE
    assert authors.config["conv10_padding"] == 1 and authors.config["stem_filters"] == 96
    wnids = [line.split()[0] for line in (shared / "data" / "imagenet_classes.txt").read_text().splitlines()]
    assert authors.class_ids == wnids and authors.classes[0] == "tench, Tinca tinca"
    assert authors.meta["nonzero"] == 415_921
    model = authors.build()
    assert not model.training and model.final_conv.padding == (1, 1)
    assert sum(p.numel() for p in model.parameters()) == 1_244_448 + 3_976


def test_safetensors_round_trip(authors, tmp_path):
    path = squeezenet.save(authors, tmp_path / "a.safetensors")
    back = squeezenet.load(path)
    assert (back.arch, back.config, back.classes, back.class_ids, back.preprocessing, back.meta) == (
        authors.arch, authors.config, authors.classes, authors.class_ids, authors.preprocessing, authors.meta)
    assert all(torch.equal(back.state_dict[k], v) for k, v in authors.state_dict.items())
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]  # no temporary file left


def test_from_model_alexnet_and_squeezenet(tmp_path):
    for model in (squeezenet.create_model("alexnet", num_classes=3, image_size=67),
                  squeezenet.create_model("squeezenet1_1", num_classes=3, bypass="simple")):
        w = Weights.from_model(model, ["a", "b", "c"], TORCHVISION.at_size(67), meta={"top1": 0.5})
        back = squeezenet.load(squeezenet.save(w, tmp_path / "m.safetensors"))
        rebuilt = back.build()
        assert type(rebuilt) is type(model) and back.meta == {"top1": 0.5}
        x = torch.randn(2, 3, 67, 67)
        torch.testing.assert_close(rebuilt(x), model.eval()(x))


def _one_line_error(path) -> str:
    with pytest.raises(SqueezeNetError) as e:
        squeezenet.load(path)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_damaged_and_unknown_files(authors, tmp_path):
    good = squeezenet.save(authors, tmp_path / "good.safetensors").read_bytes()
    cases = {
        "truncated.safetensors": good[:1000],
        "huge_header.safetensors": struct.pack("<Q", 1 << 40) + good[8:],
        "garbage.safetensors": b"\xff" * 100,
        "notes.txt": b"hello",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        _one_line_error(tmp_path / name)
    header_len = struct.unpack("<Q", good[:8])[0]
    header = json.loads(good[8:8 + header_len])
    meta = json.loads(header["__metadata__"]["squeezenet"])
    for change in ({"arch": "resnet"}, {"classes": ["one"]}, {"config": {"sr": -1}}, {"preprocessing": {}}):
        header["__metadata__"]["squeezenet"] = json.dumps(meta | change)
        blob = json.dumps(header).encode()
        (tmp_path / "bad.safetensors").write_bytes(struct.pack("<Q", len(blob)) + blob + good[8 + header_len:])
        _one_line_error(tmp_path / "bad.safetensors")
    assert "not found" in _one_line_error(tmp_path / "missing.net")


def test_register_format(authors, tmp_path):
    path = tmp_path / "model.anything"
    path.write_bytes(b"SQZTEST\0rest")
    register_format("test", lambda p: authors, magic=b"SQZTEST\0")
    try:
        assert squeezenet.load(path) is authors
    finally:
        FORMATS[:] = [f for f in FORMATS if f.name != "test"]


def test_cli_convert(authors_model, tmp_path, capsys):
    out = tmp_path / "sq.safetensors"
    assert main(["convert", str(authors_model / "compressed_SqueezeNet.net"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "1,244,448 weights (415,921 non-zero), 3,976 biases, 675,763 bytes consumed exactly" in printed
    assert squeezenet.load(out).meta["weights"] == 1_244_448


def test_a_torchvision_state_dict_loads_safely(tmp_path, capsys):
    """A plain state_dict (torchvision's keys, made here from our own model) is read with weights_only; a pickle
    that would run code is refused in one line and runs nothing."""
    import os

    from squeezenet.cli import main

    torch.manual_seed(0)
    for name, shape in (("squeezenet1_0", (96, 3, 7, 7)), ("squeezenet1_1", (64, 3, 3, 3))):
        model = squeezenet.create_model(name).eval()
        torch.save({"state_dict": model.state_dict()}, tmp_path / f"{name}.pth")
        w = squeezenet.load(tmp_path / f"{name}.pth")
        assert w.config["conv10_padding"] == 0 and w.state_dict["features.0.weight"].shape == shape
        assert name in w.meta["config_needed"] and w.preprocessing.protocol.startswith("shorter side to 256")
        x = torch.randn(1, 3, 96, 96)
        torch.testing.assert_close(w.build()(x), model(x))

    class Planted:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    torch.save({"features.0.weight": Planted()}, tmp_path / "planted.pth")
    assert main(["summary", "--weights", str(tmp_path / "planted.pth")]) == 2
    assert "refused without running it" in capsys.readouterr().err and not (tmp_path / "ran").exists()


def test_pretrained_models_timm_style(authors_model):
    from PIL import Image

    m = squeezenet.create_model("squeezenet1_0", pretrained=True)
    assert m.num_classes == 1000 and m.config.conv10_padding == 1 and "warp" in m.pretrained_cfg["protocol"]
    m = squeezenet.create_model("squeezenet1_1", pretrained=True, num_classes=4)
    assert m.num_classes == 4 and m.pretrained_cfg["num_classes"] == 10
    assert squeezenet.list_models("squeeze*", pretrained=True) == ["squeezenet1_0", "squeezenet1_0_caffe",
                                                                   "squeezenet1_1"]
    with pytest.raises(SqueezeNetError, match="no pretrained weights"):
        squeezenet.create_model("alexnet", pretrained=True)
    with pytest.raises(SqueezeNetError, match="only num_classes"):
        squeezenet.create_model("squeezenet1_1", pretrained=True, sr=0.5)
    # the preprocessing is a transform for a PIL image or a uint8 tensor alike
    pre = squeezenet.load("imagenette").preprocessing
    image = Image.new("RGB", (50, 30), (200, 10, 40))
    u8 = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)
    torch.testing.assert_close(pre(u8), pre(image))
