"""ONNX Runtime backend and int8: per-channel static quantization calibrated on training images only."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

import squeezenet
from squeezenet.cli import main
from squeezenet.deploy.graph import check_images
from squeezenet.deploy.int8 import calibration_batches
from squeezenet.deploy.onnxruntime import open_model
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.onnx import get_description


@pytest.fixture(scope="module")
def net(authors_model):
    return authors_model / "compressed_SqueezeNet.net"


@pytest.fixture(scope="module")
def int8_export(net, imagenette, tmp_path_factory) -> tuple:
    """The authors' model exported as int8 by the command line, calibrated on 32 training images."""
    out = tmp_path_factory.mktemp("int8") / "sq.int8.onnx"
    args = ["export", str(net), "--out", str(out), "--int8", "--calibration-images", "32", "--json",
            "--calibration", str(imagenette / "train"), "--check-images", str(imagenette / "val")]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(args) == 0
    return out, json.loads(buf.getvalue())


def test_calibration_spreads_over_the_training_classes(net, imagenette):
    weights = squeezenet.load(net)
    batches = calibration_batches(weights.preprocessing, imagenette / "train", count=20, batch_size=8)
    assert [len(b) for b in batches] == [8, 8, 4] and batches[0].dtype == np.float32
    assert batches[0].shape[1:] == (3, 227, 227)


def test_int8_is_static_per_channel_and_close_to_fp32(int8_export):
    path, report = int8_export
    assert report["precision"] == "int8" and report["calibration_images"] == 32
    assert report["max_abs_diff"] <= 1e-4 and report["int8_top1_agreement"] >= 0.8
    int8 = onnx.load(path)
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in int8.graph.node}
    inits = {i.name: i for i in int8.graph.initializer}
    weight_scales = [numpy_helper.to_array(inits[n.input[1]]) for n in int8.graph.node
                     if n.op_type == "DequantizeLinear" and n.input[0] in inits
                     and inits[n.input[0]].data_type == onnx.TensorProto.INT8]
    assert len(weight_scales) == 26 and all(s.ndim == 1 and s.size > 1 for s in weight_scales)  # per-channel
    assert get_description(int8)["precision"] == "int8"


def test_backends_agree_and_int8_files_load_without_recalibrating(net, int8_export, imagenette):
    torch_model = open_model(net)
    ort_model = open_model(net, backend="onnxruntime")
    assert (torch_model.backend, ort_model.backend) == ("torch", "onnxruntime")
    images = check_images(torch_model.preprocessing, imagenette / "val", count=8)
    with torch.inference_mode():
        expected = torch_model.model(images)
    assert float((expected - ort_model.model(images)).abs().max()) <= 1e-4
    int8 = open_model(int8_export[0], int8=True, calibration="/nonexistent")  # already int8: no calibration
    assert int8.precision == "int8" and int8.classes == torch_model.classes
    assert float((int8.model(images).argmax(1) == expected.argmax(1)).float().mean()) >= 0.75


def test_int8_refuses_to_calibrate_on_the_evaluation_images(net, imagenette):
    with pytest.raises(SqueezeNetError, match="overlap"):
        open_model(net, int8=True, calibration=imagenette / "train", evaluation_data=imagenette)
    with pytest.raises(SqueezeNetError, match="onnxruntime"):
        open_model(net, backend="torch", int8=True)


def test_cli_evaluates_the_int8_file(int8_export, imagenet_val, capsys):
    path = str(int8_export[0])
    assert main(["evaluate", "--weights", path, "--data", str(imagenet_val), "--limit", "16", "--json"]) == 0
    assert 0.5 <= json.loads(capsys.readouterr().out)["top1"] <= 1
    assert main(["evaluate", "--weights", path, "--data", str(imagenet_val), "--backend", "torch"]) == 2
    assert "onnxruntime" in capsys.readouterr().err
