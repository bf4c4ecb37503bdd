"""The C engine's network as a TFLM model: it runs in TFLM's interpreter, agrees with our integer reference, its
smallest arena is tight, and TFLM's LUT-compressed version gives the same outputs."""

from __future__ import annotations

import subprocess
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import squeezenet
from squeezenet.data.folders import list_samples
from squeezenet.deploy import tflm
from squeezenet.deploy.cengine.export import build_engine, crops_of
from squeezenet.deploy.cengine.graph import Conv, fold, lower
from squeezenet.deploy.cengine.reference import quantized_input, run_int
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.weights import Weights
from squeezenet.models.preprocessing import TORCHVISION

NEEDS = "needs the tflm extra: pip install 'squeezenet[tflm]' (the tflite-micro package)"


@pytest.fixture(scope="module")
def micro():
    return pytest.importorskip("tflite_micro", reason=NEEDS)


@pytest.fixture(scope="module")
def engine(micro):
    return build_engine(squeezenet.load("imagenette"), 128, calibration_images=16)


@pytest.fixture(scope="module")
def crops(imagenette, engine) -> np.ndarray:
    return crops_of(engine.preprocessing, list_samples(imagenette / "val").sample(6).paths)


@pytest.fixture(scope="module")
def model(engine) -> bytes:
    return tflm.to_tflite(engine)


def _ops(micro, model: bytes) -> list[str]:
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    return [op.opcode_name for op in model_editor.read(model).subgraphs[0].operators]


def test_the_tflite_model_runs_and_agrees_with_the_integer_reference(micro, engine, crops, model):
    assert {"CONV_2D", "MAX_POOL_2D", "CONCATENATION", "MEAN"} == set(_ops(micro, model))
    x = tflm.tflite_input(engine, crops)
    assert x.dtype == np.int8 and x.shape == (len(crops), 128, 128, 3)
    out = tflm.run(model, x, 1 << 20)
    assert out.dtype == np.int8 and out.shape == (len(crops), 10)
    assert np.sum(out.argmax(1) == run_int(engine, crops).argmax(1)) >= len(crops) - 1


def test_the_smallest_arena_works_and_1_kb_less_does_not(engine, crops, model):
    arena = tflm.smallest_arena(model)
    assert arena % tflm.ARENA_STEP == 0
    x = tflm.tflite_input(engine, crops[:1])
    assert tflm.run(model, x, arena).shape == (1, 10)
    with pytest.raises(RuntimeError):
        tflm.run(model, x, arena - 1024)


def test_the_lut_compressed_model_gives_the_same_outputs(micro, engine, crops, model):
    small = tflm.compress(model)
    assert small is not None and "TFLM_DECODE" in _ops(micro, small)
    x = tflm.tflite_input(engine, crops)
    assert np.array_equal(tflm.run(small, x, 1 << 20), tflm.run(model, x, 1 << 20))


def test_compression_that_does_not_fit_the_index_is_refused_with_a_reason(micro, model, monkeypatch):
    monkeypatch.setattr(tflm, "LUT_MAX_BITS", 5)  # the bundled model's 6-bit codebooks then need too many
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert tflm.compress(model) is None
    assert any("6-bit indexes" in str(w.message) for w in caught)


def test_a_finer_logit_grid_keeps_the_top_class(engine, crops):
    x = tflm.tflite_input(engine, crops[:2])
    logits = run_int(engine, crops[:2]) * engine.score_scale
    out = tflm.run(tflm.to_tflite(engine, logit_range=2 * float(np.abs(logits).max())), x, 1 << 20)
    assert np.all(out.argmax(1) == logits.argmax(1)) and np.abs(out).max() < 127


def test_conv1_is_ours_with_negative_batchnorm_scales_and_clustered_weights(micro, imagenette):
    """The delicate rewrites: one input zero point (the rest in conv1's bias), channels negated where BatchNorm's
    scale is negative, the weight scale of a layer clustered at export. TFLM's rounding may differ by one."""
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    torch.manual_seed(0)
    model = squeezenet.create_model("squeezenet1_1", num_classes=3, batch_norm=True).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(-1.5, 1.5)
            m.running_var.uniform_(0.5, 2.0)
    engine = build_engine(Weights.from_model(model, ["a", "b", "c"], TORCHVISION.at_size(64)), calibration_images=16)
    op = next(op for op in engine.graph.ops if isinstance(op, Conv))
    p = engine.convs[op.name]
    assert op.name in engine.clustered and np.any(fold(op)[0] < 0) and len(set(p.in_zero)) > 1
    crops = crops_of(engine.preprocessing, list_samples(imagenette / "val").sample(2).paths)
    x = torch.from_numpy(quantized_input(engine, crops) - p.in_zero.reshape(1, -1, 1, 1)).double()
    acc = F.conv2d(x, torch.from_numpy(p.weight).double(), None, op.conv.stride).numpy().astype(np.int64)
    ours = np.clip(((acc + p.bias.reshape(1, -1, 1, 1)) * p.mult.astype(np.int64).reshape(1, -1, 1, 1)
                    + p.rounding) >> p.shift, p.lo, p.hi)
    edited = model_editor.read(tflm.to_tflite(engine))
    edited.subgraphs[0].outputs = [edited.subgraphs[0].tensor_by_name(op.name)]  # conv1's own output
    out = tflm.run(bytes(edited.build()), tflm.tflite_input(engine, crops), 1 << 20)
    diff = out.astype(np.int64).reshape(len(crops), op.out.h, op.out.w, -1).transpose(0, 3, 1, 2) + 128 - ours
    assert np.mean(ours > p.lo) > 0.2 and np.abs(diff).max() <= 1 and np.mean(diff != 0) < 0.01


def test_bypass_models_are_refused_in_one_line():
    graph = lower(squeezenet.create_model("squeezenet1_1", num_classes=3, bypass="simple").eval(), 64)
    with pytest.raises(SqueezeNetError, match="bypass") as e:
        tflm.to_tflite(SimpleNamespace(graph=graph))
    assert "\n" not in str(e.value)


def test_the_module_imports_without_tflite_micro():
    code = "import sys, squeezenet.deploy.tflm; assert 'tflite_micro' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
