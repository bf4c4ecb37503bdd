"""ONNX export: parity with PyTorch on real images, dynamic batch, no dropout, metadata, bad files."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

import squeezenet
from squeezenet.cli import main
from squeezenet.deploy.graph import OPSET, check_images, check_parity, checked_onnx
from squeezenet.deploy.onnxruntime import OrtModel, open_model
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.onnx import get_description
from squeezenet.formats.weights import Weights
from squeezenet.models.preprocessing import TORCHVISION, Preprocessing


@pytest.fixture(scope="module")
def authors(authors_model) -> Weights:
    return squeezenet.load(authors_model / "compressed_SqueezeNet.net")


@pytest.fixture(scope="module")
def images(authors, imagenette) -> torch.Tensor:
    return check_images(authors.preprocessing, imagenette / "val", count=32)


@pytest.fixture(scope="module")
def exported(authors, images) -> tuple[onnx.ModelProto, float]:
    return checked_onnx(authors, images)


def test_authors_model_matches_pytorch_on_32_real_images(authors, images, exported):
    proto, diff = exported
    assert images.shape == (32, 3, 227, 227)
    assert diff <= 1e-4
    with torch.inference_mode():
        expected = authors.build()(images)
    got = OrtModel(proto)(images)
    assert float((expected - got).abs().max()) <= 1e-4
    assert (expected.argmax(1) == got.argmax(1)).all()


def test_graph_has_dynamic_batch_recent_opset_and_no_dropout(authors, images, exported):
    proto, _ = exported
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == OPSET >= 18
    assert not any(n.op_type == "Dropout" for n in proto.graph.node)
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch
    run = OrtModel(proto)
    assert run(images[:1]).shape == (1, 1000) and run(images[:5]).shape == (5, 1000)
    desc = get_description(proto)
    assert desc["class_ids"] == authors.class_ids and desc["precision"] == "fp32"
    assert Preprocessing.from_dict(desc["preprocessing"]) == authors.preprocessing


def test_v1_1_at_224_matches_pytorch(imagenette):
    model = squeezenet.create_model("squeezenet1_1").eval()
    weights = Weights.from_model(model, [str(i) for i in range(1000)], TORCHVISION)
    _, diff = checked_onnx(weights, check_images(TORCHVISION, imagenette / "val", count=32))
    assert diff <= 1e-4


def test_parity_over_tolerance_is_an_error(authors, images, exported):
    model = authors.build()
    assert check_parity(model, exported[0], images[:2]) <= 1e-4
    with torch.no_grad():
        model.final_conv.bias[7] += 0.1  # a graph that no longer computes this model (1e-4 of the logits: ~5e-3)
    with pytest.raises(SqueezeNetError, match="differs from PyTorch"):
        check_parity(model, exported[0], images[:2])


def test_cli_export_then_evaluate_and_predict_the_onnx_file(authors_model, imagenette, imagenet_val, tmp_path,
                                                           capsys):
    out = tmp_path / "sq.onnx"
    net = str(authors_model / "compressed_SqueezeNet.net")
    assert main(["export", net, "--format", "onnx", "--out", str(out), "--json",
                 "--check-images", str(imagenette / "val")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["max_abs_diff"] <= 1e-4 and report["precision"] == "fp32" and out.stat().st_size == report["bytes"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sq.onnx"]  # written atomically, nothing left over
    for weights in (out, net):
        assert main(["evaluate", "--weights", str(weights), "--data", str(imagenet_val), "--limit", "16",
                     "--json"]) == 0
    onnx_eval, torch_eval = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert (onnx_eval["top1"], onnx_eval["top5"]) == (torch_eval["top1"], torch_eval["top5"])
    image = sorted((imagenet_val / "images").iterdir())[0]
    assert main(["predict", str(out), str(image), "--top", "1", "--json"]) == 0
    onnx_top = json.loads(capsys.readouterr().out)["predictions"][0]["top"][0]
    assert main(["predict", net, str(image), "--top", "1", "--json"]) == 0
    torch_top = json.loads(capsys.readouterr().out)["predictions"][0]["top"][0]
    assert onnx_top["index"] == torch_top["index"]
    assert np.isclose(onnx_top["probability"], torch_top["probability"], atol=1e-5)


def test_bad_onnx_files_are_one_line_errors(tmp_path, exported, capsys):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00not an onnx model" * 10)
    bare = tmp_path / "bare.onnx"
    proto = onnx.ModelProto()
    proto.CopyFrom(exported[0])
    del proto.metadata_props[:]
    bare.write_bytes(proto.SerializeToString())
    for path, message in ((garbage, "not a readable ONNX model"), (bare, "without squeezenet metadata"),
                          (tmp_path / "missing.onnx", "not found")):
        with pytest.raises(SqueezeNetError, match=message):
            open_model(path)
        assert main(["predict", str(path), str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("squeezenet: error:") and len(err.strip().splitlines()) == 1
    with pytest.raises(SqueezeNetError, match="onnxruntime"):
        open_model(bare, backend="torch")


def test_the_output_suffix_must_fit_the_format(tmp_path, capsys):
    assert main(["export", "imagenette", "--out", str(tmp_path / "sq.tflite")]) == 2
    assert ".onnx" in capsys.readouterr().err and not list(tmp_path.iterdir())
    assert main(["compress", "imagenette", "--out", str(tmp_path / "x.onnx")]) == 2
    assert ".sqz" in capsys.readouterr().err and not list(tmp_path.iterdir())
