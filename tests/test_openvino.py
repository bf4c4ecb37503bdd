"""OpenVINO backend: the exported ONNX files (fp32 and int8 QDQ) and OpenVINO IR, against ONNX Runtime."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from squeezenet.cli import main
from squeezenet.deploy.graph import check_images, to_onnx
from squeezenet.deploy.int8 import calibration_batches, quantize_int8
from squeezenet.deploy.onnxruntime import OrtModel, open_model
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.onnx import description, set_description
from squeezenet.formats.weights import load

NEEDS = "needs the openvino extra: pip install 'squeezenet[openvino]'"


@pytest.fixture(scope="module")
def ov():
    return pytest.importorskip("openvino", reason=NEEDS)


@pytest.fixture(scope="module")
def net(authors_model):
    return authors_model / "compressed_SqueezeNet.net"


@pytest.fixture(scope="module")
def images(net, imagenet_val) -> torch.Tensor:
    """33 real ImageNet validation images: an odd batch, so that THROUGHPUT's split needs padding."""
    return check_images(load(net).preprocessing, imagenet_val, count=33)


@pytest.fixture(scope="module")
def image(imagenet_val):
    return next((imagenet_val / "images").iterdir())


@pytest.fixture(scope="module")
def ir(ov, net, imagenette, tmp_path_factory):
    """The authors' model as fp32 OpenVINO IR, written by the command line."""
    out = tmp_path_factory.mktemp("ir") / "sq.xml"
    assert main(["export", str(net), "--format", "openvino", "--out", str(out), "--check-images",
                 str(imagenette / "val")]) == 0
    return out


def test_fp32_logits_match_onnxruntime_on_real_images(ov, net, images):
    from squeezenet.deploy.openvino import OvModel

    ort_model, ov_model = open_model(net, backend="onnxruntime"), open_model(net, backend="openvino")
    assert (ov_model.backend, ov_model.precision) == ("openvino", "fp32")
    expected = ort_model.model(images)
    assert float((ov_model.model(images) - expected).abs().max()) <= 1e-3
    assert float((ov_model.model(images[:1]) - expected[:1]).abs().max()) <= 1e-3
    throughput = OvModel(ov_model.model.model, hint="THROUGHPUT", threads=2)  # 33 images: 2 parts of 17, padded
    assert float((throughput(images) - expected).abs().max()) <= 1e-3
    assert set(throughput.compiled) == {(17, 3, 227, 227)}


def test_the_ir_keeps_fp32_weights_and_the_description(ir, net, images, image, capsys):
    assert ir.with_suffix(".bin").stat().st_size >= 4 * 1_248_424  # fp32, not save_model's default fp16
    model = open_model(ir)  # an IR runs on OpenVINO by default
    reference = open_model(net)
    assert (model.backend, model.precision, model.classes) == ("openvino", "fp32", reference.classes)
    assert model.preprocessing == reference.preprocessing
    with torch.inference_mode():
        assert float((model.model(images) - reference.model(images)).abs().max()) <= 1e-3
    for args, message in ((["--backend", "onnxruntime"], "runs on OpenVINO only"), (["--backend", "torch"], "openvino"),
                          (["--int8"], "cannot be calibrated")):
        assert main(["predict", str(ir), str(image), *args]) == 2
        assert message in capsys.readouterr().err


def test_evaluate_and_predict_on_the_ir(ir, imagenet_val, image, capsys):
    assert main(["evaluate", "--weights", str(ir), "--data", str(imagenet_val), "--limit", "16", "--json"]) == 0
    assert 0.5 <= json.loads(capsys.readouterr().out)["top1"] <= 1
    assert main(["predict", str(ir), str(image), "--json", "--top", "1"]) == 0
    assert len(json.loads(capsys.readouterr().out)["predictions"]) == 1


def test_our_int8_file_runs_on_openvino_as_on_onnxruntime(ov, net, imagenette, images):
    from squeezenet.deploy.openvino import OvModel

    weights = load(net)
    fp32 = to_onnx(weights.build(), weights.preprocessing.crop_size)
    set_description(fp32, description(weights))
    int8 = quantize_int8(fp32, calibration_batches(weights.preprocessing, imagenette / "train", count=32))
    ort_int8, ov_int8 = OrtModel(int8)(images), OvModel(int8)(images)
    assert float((ort_int8.argmax(1) == ov_int8.argmax(1)).float().mean()) >= 0.9
    assert float((ov_int8.argmax(1) == OrtModel(fp32)(images).argmax(1)).float().mean()) >= 0.8


def test_bad_ir_files_are_one_line_errors(ov, ir, image, tmp_path, capsys):
    (tmp_path / "text.xml").write_text("<html>not a model</html>")
    (tmp_path / "text.bin").write_bytes(b"")
    (tmp_path / "lonely.xml").write_bytes(ir.read_bytes())
    (tmp_path / "bare.xml").write_text(ir.read_text().replace('<squeezenet value="', '<other value="'))
    (tmp_path / "bare.bin").write_bytes(ir.with_suffix(".bin").read_bytes())
    for name, message in (("text.xml", "not an OpenVINO IR"), ("lonely.xml", "lonely.bin are not beside it"),
                          ("bare.xml", "without squeezenet metadata"), ("missing.xml", "not found")):
        with pytest.raises(SqueezeNetError, match=message):
            open_model(tmp_path / name)
        assert main(["predict", str(tmp_path / name), str(image)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("squeezenet: error:") and len(err.strip().splitlines()) == 1


def test_without_openvino_the_error_names_the_extra(net, image, tmp_path, monkeypatch, capsys):
    from squeezenet.deploy.onnxruntime import fastest_runtime

    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` now raises ImportError
    monkeypatch.delitem(sys.modules, "squeezenet.deploy.openvino", raising=False)
    with pytest.raises(SqueezeNetError, match=r"pip install 'squeezenet\[openvino\]'"):
        open_model(net, backend="openvino")
    assert main(["predict", str(net), str(image), "--backend", "openvino"]) == 2
    assert "squeezenet[openvino]" in capsys.readouterr().err
    assert main(["export", str(net), "--format", "openvino", "--out", str(tmp_path / "sq.xml")]) == 2
    assert "squeezenet[openvino]" in capsys.readouterr().err and not list(tmp_path.iterdir())
    assert fastest_runtime() == "onnxruntime"


def test_default_backend_is_the_fastest_installed(ov, net, tmp_path):
    """The documented rule (docs, CPU inference): weights on PyTorch, an fp32 graph on ONNX Runtime, int8 on OpenVINO
    when installed."""
    from squeezenet.deploy.onnxruntime import fastest_runtime

    assert fastest_runtime() == "openvino"
    assert open_model(net).backend == "torch"
    proto = to_onnx(load(net).build(), 227)
    set_description(proto, description(load(net)))
    (tmp_path / "sq.onnx").write_bytes(proto.SerializeToString())
    model = open_model(tmp_path / "sq.onnx")
    assert model.backend == "onnxruntime" and np.isfinite(model.model(torch.zeros(1, 3, 227, 227)).numpy()).all()
