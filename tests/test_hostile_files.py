"""Hostile model files: a valid checksum does not make a header trustworthy.

Every bad file is a one-line SqueezeNetError naming it (the CLI: `squeezenet: error: ...`, exit 2), within seconds
and bounded memory. The fixtures are a small SqueezeNet written with the project's own writers, then rewritten.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import onnx
import pytest
import torch
from PIL import Image

import squeezenet
from squeezenet.cli import main
from squeezenet.errors import ConfigError, SqueezeNetError
from squeezenet.formats import sqz
from squeezenet.formats.onnx import set_description
from squeezenet.models.preprocessing import TORCHVISION, Preprocessing
from squeezenet.training.checkpoint import load_checkpoint, restore_model

DEEP = "[" * 100_000 + "]" * 100_000  # a RecursionError for a recursive parser
NESTED = "[" * 100 + "]" * 100  # within Python's recursion limit, still far deeper than any header


@pytest.fixture(scope="module")
def weights() -> squeezenet.Weights:
    torch.manual_seed(0)
    model = squeezenet.create_model("squeezenet1_1", num_classes=10)
    return squeezenet.Weights.from_model(model, [f"class {i}" for i in range(10)], TORCHVISION.at_size(64))


@pytest.fixture(scope="module")
def files(weights, tmp_path_factory) -> dict[str, bytes]:
    """The bytes of a valid .safetensors and .sqz of the same model."""
    d = tmp_path_factory.mktemp("good")
    squeezenet.save(weights, d / "m.safetensors")
    sqz.write(d / "m.sqz", weights, {})
    return {"safetensors": (d / "m.safetensors").read_bytes(), "sqz": (d / "m.sqz").read_bytes()}


def _header(files: dict[str, bytes], kind: str) -> dict:
    data = files[kind]
    if kind == "safetensors":
        (n,) = struct.unpack("<Q", data[:8])
        return json.loads(json.loads(data[8:8 + n])["__metadata__"]["squeezenet"])
    (n,) = struct.unpack("<I", data[len(sqz.MAGIC) + 1:len(sqz.MAGIC) + 5])
    return json.loads(zlib.decompress(data[sqz.PREFIX:sqz.PREFIX + n]))


def _rewrite(files: dict[str, bytes], kind: str, text: str, path: Path) -> Path:
    """The valid file with its squeezenet header replaced by `text`; a .sqz gets a correct checksum."""
    data = files[kind]
    if kind == "safetensors":
        (n,) = struct.unpack("<Q", data[:8])
        outer = json.loads(data[8:8 + n]) | {"__metadata__": {"squeezenet": text}}
        blob = json.dumps(outer).encode()
        path.write_bytes(struct.pack("<Q", len(blob)) + blob + data[8 + n:])
    else:
        (n,) = struct.unpack("<I", data[len(sqz.MAGIC) + 1:sqz.PREFIX])
        head = zlib.compress(text.encode())
        body = data[:len(sqz.MAGIC) + 1] + struct.pack("<I", len(head)) + head + data[sqz.PREFIX + n:-4]
        path.write_bytes(body + struct.pack("<I", zlib.crc32(body)))
    return path


def _one_line(path: Path, match: str | None = None, names: str | None = None) -> str:
    """squeezenet.load's error for `path`: one line that matches `match` and names the file at fault (`names`,
    by default `path`)."""
    with pytest.raises(SqueezeNetError, match=match) as e:
        squeezenet.load(path)
    message = str(e.value)
    assert "\n" not in message and (names or str(path)) in message, message
    return message


def _cli_one_line(argv: list[str], capsys, name: str) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("squeezenet: error: ") and name in err[0], err
    return err[0]


@pytest.mark.parametrize("kind", ["safetensors", "sqz"])
@pytest.mark.parametrize("nesting", [DEEP, NESTED])
def test_deeply_nested_header_json(files, tmp_path, kind, nesting):
    header = json.dumps(_header(files, kind) | {"meta": {"notes": "X"}}).replace('"X"', nesting)
    path = _rewrite(files, kind, header, tmp_path / f"nested.{kind}")
    _one_line(path, "nested deeper than")
    _one_line(_rewrite(files, kind, nesting, tmp_path / f"bare.{kind}"), "nested deeper than")


def test_deeply_nested_onnx_metadata(weights, tmp_path, capsys):
    from squeezenet.deploy.onnxruntime import read_onnx

    model = onnx.helper.make_model(onnx.helper.make_graph([], "empty", [], []))
    set_description(model, {})
    model.metadata_props[0].value = DEEP
    onnx.save(model, tmp_path / "deep.onnx")
    with pytest.raises(SqueezeNetError, match="nested deeper than") as e:
        read_onnx(tmp_path / "deep.onnx")
    assert "\n" not in str(e.value) and "deep.onnx" in str(e.value)
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    _cli_one_line(["predict", str(tmp_path / "deep.onnx"), str(tmp_path / "x.png")], capsys, "deep.onnx")


def test_deeply_nested_prototxt(tmp_path, capsys):
    (tmp_path / "deep.prototxt").write_text('input: "data"\n' + "layer {\n" * 50_000)
    (tmp_path / "model.net").write_bytes(b"\0" * 64)
    _one_line(tmp_path / "model.net", "nested deeper than 64", names="deep.prototxt: line 66")
    _cli_one_line(["summary", "--weights", str(tmp_path / "model.net")], capsys, "deep.prototxt")


INF, NAN = float("inf"), float("nan")
HOSTILE = [  # (change to the header, what the message must say)
    ({"config": {"sr": INF}}, "sr must be a finite number"),
    ({"config": {"sr": NAN}}, "sr must be a finite number"),
    ({"config": {"pct3x3": "0.5"}}, "pct3x3 must be of type float"),
    ({"config": {"num_classes": 10.0}}, "num_classes must be of type int"),
    ({"config": {"batch_norm": "yes"}}, "batch_norm must be of type bool"),
    ({"config": {"pool_after": "13"}}, "pool_after must be of type"),
    ({"config": {"base_e": 65_536, "incr_e": 65_536}}, "more than 67,108,864"),
    ({"arch": ["squeezenet"]}, "arch must be one of"),
    ({"format_version": "2"}, "format_version"),
    ({"meta": [1, 2]}, "meta must be an object"),
    ({"class_ids": 10}, "class_ids must be a list of strings"),
    ({"classes": list(range(10))}, "classes must be a list of strings"),
    ({"classes": ["only", "nine"] + ["x"] * 7}, "9 class names for a model with 10 outputs"),
    ({"preprocessing": {"crop_size": 50_000, "resize_size": None}}, "crop_size and resize_size must be"),
    ({"preprocessing": {"resize_size": 10**9}}, "crop_size and resize_size must be"),
    ({"preprocessing": {"crop_size": 64.5}}, "crop_size and resize_size must be"),
    ({"preprocessing": {"mean": [NAN, 0, 0]}}, "mean must be 3 finite numbers"),
    ({"preprocessing": {"std": [1, 1]}}, "std must be 3 finite numbers"),
    ({"preprocessing": {"std": [1, 0, 1]}}, "std and pixel_scale must be positive"),
    ({"preprocessing": {"pixel_scale": INF}}, "std and pixel_scale must be positive"),
    ({"preprocessing": {"keep_crop_sized": "no"}}, "keep_crop_sized must be true or false"),
    ({"preprocessing": "torchvision"}, "not a preprocessing description"),
]


@pytest.mark.parametrize("kind", ["safetensors", "sqz"])
@pytest.mark.parametrize(("change", "says"), HOSTILE, ids=[s for _, s in HOSTILE])
def test_hostile_header_fields(files, tmp_path, kind, change, says):
    header = _header(files, kind)
    for key in ("config", "preprocessing"):
        if isinstance(change.get(key), dict):
            change = change | {key: header[key] | change[key]}
    path = _rewrite(files, kind, json.dumps(header | change), tmp_path / f"hostile.{kind}")
    start = time.monotonic()
    message = _one_line(path)
    assert says in message and time.monotonic() - start < 2, message


def test_hostile_values_are_config_errors_from_python_too():
    for bad in ({"crop_size": 50_000}, {"mean": [INF, 0, 0]}, {"std": "abc"}, {"channel_order": ["RGB"]}):
        with pytest.raises(ConfigError):
            Preprocessing.from_dict(TORCHVISION.to_dict() | bad)
    for bad in ({"sr": INF}, {"dropout": NAN}, {"base_e": "128"}, {"final_relu": 1}, {"stem_kernel": 10**6}):
        with pytest.raises(ConfigError):
            squeezenet.SqueezeNetConfig.from_dict(bad)


def test_hostile_header_through_the_cli(files, tmp_path, capsys):
    header = _header(files, "sqz")
    text = json.dumps(header | {"preprocessing": header["preprocessing"] | {"crop_size": 50_000}})
    path = _rewrite(files, "sqz", text, tmp_path / "crop.sqz")
    _cli_one_line(["summary", "--weights", str(path)], capsys, "crop.sqz")


@pytest.mark.parametrize("value", [NAN, INF])
def test_non_finite_weights_are_refused_at_load(weights, tmp_path, capsys, value):
    state = dict(weights.state_dict)
    state["features.3.expand3x3.weight"] = state["features.3.expand3x3.weight"].clone()
    state["features.3.expand3x3.weight"][0, 0, 0, 0] = value
    bad = squeezenet.Weights(weights.arch, weights.config, state, weights.classes, weights.preprocessing)
    paths = [squeezenet.save(bad, tmp_path / "nan.safetensors"), tmp_path / "nan.sqz", tmp_path / "nan.pth"]
    sqz.write(paths[1], bad, {}, float_dtype="f32")
    torch.save(squeezenet.create_model("squeezenet1_1").state_dict() | {"features.0.bias": torch.full((64,), value)},
               paths[2])
    for path in paths:
        _one_line(path, r"features\.[03]\..*(NaN or infinite|non-finite)")
    _cli_one_line(["summary", "--weights", str(paths[0])], capsys, "features.3.expand3x3.weight")


def _fails_fast_and_small(path: Path, match: str, names: str | None = None) -> None:
    tracemalloc.start()
    start = time.monotonic()
    try:
        _one_line(path, match, names)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert time.monotonic() - start < 2 and peak < 64 * 2**20, (time.monotonic() - start, peak)


def test_huge_sparse_files_are_refused_before_reading(files, tmp_path, capsys):
    """3 GB sparse files (no disk used): the declared lengths are checked against the file before reading it."""
    huge = 3 * 2**30
    header_end = 8 + struct.unpack("<Q", files["safetensors"][:8])[0]
    cases = {"valid-start.sqz": (files["sqz"][:4096], "more than any .sqz of its configuration holds"),
             "zeros.sqz": (b"", "not a .sqz file"),
             "valid-start.safetensors": (files["safetensors"][:header_end], "not fully covered"),
             "zeros.safetensors": (b"", "not a safetensors file"),
             "zeros.pth": (b"", "more than any PyTorch state_dict holds")}
    for name, (start, match) in cases.items():
        path = tmp_path / name
        with open(path, "wb") as f:
            f.write(start)
            f.truncate(huge)
        _fails_fast_and_small(path, match)
    (tmp_path / "huge.prototxt").write_text('input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 227\n'
                                            'input_dim: 227\nlayer { name: "conv1" type: "Convolution" '
                                            'bottom: "data" top: "conv1" convolution_param { num_output: 100000 '
                                            'kernel_size: 30 } }\n')
    with open(tmp_path / "huge.net", "wb") as f:
        f.truncate(huge)
    _fails_fast_and_small(tmp_path / "huge.net", "more than this reader accepts", names="huge.net")
    _cli_one_line(["summary", "--weights", str(tmp_path / "valid-start.sqz")], capsys, "valid-start.sqz")


def test_bad_checkpoints_are_one_line_and_run_nothing(tmp_path, recwarn):
    net = squeezenet.create_model("squeezenet1_1", num_classes=10)
    good = {"model": net.state_dict(), "optimizer": {}, "scheduler": {}, "rng": [torch.get_rng_state()],
            "epoch": 1, "step": 2, "order": torch.arange(4), "history": []}
    torch.save(good, tmp_path / "good.pt")
    data = (tmp_path / "good.pt").read_bytes()

    class Planted:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    cases = {"empty.pt": b"", "truncated.pt": data[:len(data) // 2], "garbage.pt": b"\x80" * 100,
             "plain-pickle.pt": pickle.dumps({"model": Planted()}, protocol=4)}
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
    torch.save(good | {"model": Planted()}, tmp_path / "planted.pt")
    torch.save({"model": net.state_dict()}, tmp_path / "foreign.pt")
    torch.save(good | {"model": [1, 2]}, tmp_path / "no-state-dict.pt")
    with open(tmp_path / "huge.pt", "wb") as f:
        f.truncate(3 * 2**30)
    for name in [*cases, "planted.pt", "foreign.pt", "no-state-dict.pt", "huge.pt"]:
        with pytest.raises(SqueezeNetError) as e:
            load_checkpoint(tmp_path / name)
        message = str(e.value)
        assert "\n" not in message and name in message and "weights_only" not in message, message
    assert not (tmp_path / "ran").exists() and not recwarn.list  # nothing ran, no warning printed
    state = load_checkpoint(tmp_path / "good.pt")
    restore_model(squeezenet.create_model("squeezenet1_1", num_classes=10), state["model"], tmp_path / "good.pt")
    for other in (squeezenet.create_model("squeezenet1_0", num_classes=10),
                  squeezenet.create_model("squeezenet1_1", num_classes=10, batch_norm=True),
                  squeezenet.create_model("squeezenet1_1", num_classes=3)):
        with pytest.raises(SqueezeNetError, match="good.pt: checkpoint of another architecture: ") as e:
            restore_model(other, state["model"], tmp_path / "good.pt")
        assert "\n" not in str(e.value)


@pytest.mark.parametrize("text", ['{"data": "/data", "out": "ru', "", "[1, 2]", DEEP, "{}", '{"data": 1, "lr": 2'])
def test_damaged_run_config_is_named(tmp_path, capsys, text):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(text)
    _cli_one_line(["train", "--resume", str(run)], capsys, str(run / "config.json"))
