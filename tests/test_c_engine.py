"""The C engine: lowering, the memory plan, the generated C bit for bit against the integer reference on the host
and on a Cortex-M4 under QEMU, and the one-line errors."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import squeezenet
from squeezenet.cli import main
from squeezenet.data.folders import list_samples, load_image
from squeezenet.deploy.cengine import targets
from squeezenet.deploy.cengine.codegen import write_c
from squeezenet.deploy.cengine.export import build_engine, crops_of, fp32_logits
from squeezenet.deploy.cengine.graph import lower
from squeezenet.deploy.cengine.planner import best_plan, tflm_plan
from squeezenet.deploy.cengine.reference import run_float, run_int
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.safetensors import save
from squeezenet.formats.weights import Weights
from squeezenet.models.preprocessing import TORCHVISION

needs_cc = pytest.mark.skipif(targets.host_cc() is None or shutil.which("make") is None,
                              reason="needs a C compiler and make")


def _random_weights(seed: int, **config) -> Weights:
    """A small SqueezeNet with random weights and random BatchNorm statistics (so that folding is exercised)."""
    torch.manual_seed(seed)
    model = squeezenet.create_model("squeezenet1_1", num_classes=3, **config).eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    return Weights.from_model(model, ["a", "b", "c"], TORCHVISION.at_size(64))


@pytest.fixture(scope="module")
def pruned() -> str:
    """The bundled model: Deep Compression's, pruned and 6-bit (what the Cortex-M4 budget is for)."""
    w = squeezenet.load("imagenette")
    assert all(q.bits == 6 for q in w.codebooks.values()) and w.codebooks["features.0.weight"].codes.min() == 0
    return "imagenette"


@pytest.fixture(scope="module")
def crops(imagenette) -> np.ndarray:
    w = squeezenet.load("imagenette")
    return crops_of(w.preprocessing.at_size(128), list_samples(imagenette / "val").sample(6).paths)


@pytest.mark.parametrize("config", [{}, {"bypass": "complex", "batch_norm": True}, {"bypass": "simple"}])
def test_the_float_graph_is_the_pytorch_module(config, tiny):
    w = _random_weights(0, **config)
    model = w.build()
    x = torch.stack([w.preprocessing(load_image(p)) for p in list_samples(tiny / "val").paths[:4]])
    with torch.inference_mode():
        expected = model(x)
    assert float((run_float(lower(model, 64), x) - expected).abs().max()) < 1e-4


def test_memory_plan_of_v1_1_at_128():
    graph = lower(squeezenet.load("imagenette").build(), 128)
    plan = best_plan(graph)
    assert "maxpool1" in plan.fused  # conv1's 64x63x63 output would be 254 KB on its own
    assert plan.lower_bound <= plan.arena <= plan.lower_bound + 64 and plan.arena < 160_000
    rows = {r["name"]: r for r in plan.rows}
    # a Fire's input is dead once its squeeze is computed: fire2's expands hold the squeeze and their output only
    s, out = graph.shapes["fire2/squeeze1x1"].size, graph.shapes["fire2"].size
    assert rows["fire2/expand1x1"]["in_use"] < s + out + 8_000
    assert tflm_plan(graph).arena > 2 * plan.arena


def test_summary_memory_for_any_configuration(capsys):
    assert main(["summary", "squeezenet1_0", "--bypass", "complex", "--input-size", "96", "--memory"]) == 0
    text = capsys.readouterr().out
    assert "fire2/shortcut" in text and "fire9/bypass" in text and "arena" in text and "peak" in text


@needs_cc
def test_export_cli_and_the_host_build_bit_for_bit(pruned, crops, tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["--quiet", "export", pruned, "--format", "c", "--out", str(out), "--image-size", "128",
                 "--calibration-images", "32"]) == 0
    assert "bit for bit" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(targets.LIBRARY)
    w = squeezenet.load(pruned)
    engine = build_engine(w, 128, calibration_images=32)
    scores, _ = targets.host_run(targets.host_build(out, tmp_path / "build"), crops, 10)
    assert np.array_equal(scores, run_int(engine, crops))
    assert np.mean(scores.argmax(1) == fp32_logits(w, engine.preprocessing, crops).argmax(1)) >= 5 / 6


@needs_cc
@pytest.mark.parametrize("config", [{"bypass": "complex", "batch_norm": True}, {"bypass": "simple"},
                                    {"conv10_padding": 1, "stem_kernel": 7, "final_relu": True}])
def test_every_kernel_bit_for_bit(config, tiny, tmp_path):
    """Bypass adds, a 1x1 shortcut, BatchNorm, a 7x7 stem and Caffe's padded conv10 (a bordered Fire output), with
    the portable loops and with what this CPU offers (the VNNI path where it has it)."""
    w = _random_weights(1, **config)
    engine = build_engine(w, calibration=tiny / "train", calibration_images=12)
    write_c(engine, tmp_path / "c", "random")
    crops = crops_of(engine.preprocessing, list_samples(tiny / "val").paths)
    for flags in ("-O2", "-O2 -march=native"):
        exe = targets.host_build(tmp_path / "c", tmp_path / flags.replace(" ", ""), flags)
        assert np.array_equal(targets.host_run(exe, crops, 3)[0], run_int(engine, crops)), flags


@pytest.mark.skipif(bool(targets.missing_arm_tools()), reason=f"needs {', '.join(targets.missing_arm_tools())} "
                    "(apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")
def test_cortex_m4_under_qemu_gives_the_host_top1(pruned, crops, tmp_path):
    w = squeezenet.load(pruned)
    engine = build_engine(w, 128, calibration_images=32)
    write_c(engine, tmp_path / "c", "pruned")
    fw = targets.arm_link(targets.arm_library(tmp_path / "c", tmp_path / "arm"), crops, [0] * len(crops))
    assert fw.flash <= 512 << 10 and fw.ram <= 256 << 10  # the linker enforces 1 MB / 256 KB; these are tighter
    top5, stack = targets.qemu_run(fw, timeout=600)
    assert [t[0] for t in top5] == list(run_int(engine, crops).argmax(1))
    assert 0 < stack < 8192


def test_what_the_engine_cannot_express_is_one_line(authors_model, tmp_path):
    model = squeezenet.load("imagenette").build()
    model.features[3].squeeze_activation = nn.GELU()
    with pytest.raises(SqueezeNetError, match=r"cannot express layer features\.3\.squeeze_activation \(GELU\)"):
        lower(model, 128)
    with pytest.raises(SqueezeNetError, match="below this configuration's minimum"):
        lower(model, 8)
    alexnet = Weights.from_model(squeezenet.create_model("alexnet", num_classes=3, image_size=64), ["a", "b", "c"],
                                 TORCHVISION.at_size(64))
    alexnet_file = tmp_path / "alexnet.safetensors"
    save(alexnet, alexnet_file)
    r = subprocess.run([sys.executable, "-m", "squeezenet", "export", str(alexnet_file), "--format", "c", "--out",
                        str(tmp_path / "c")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "runs SqueezeNets, not alexnet" in r.stderr
