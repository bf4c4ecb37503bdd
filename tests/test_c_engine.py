"""The C engine: lowering, the memory plans (layer by layer and streamed row by row), the generated C bit for bit
against the integer reference on the host and on a Cortex-M4 firmware under QEMU, and the one-line errors."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch
from torch import nn

import squeezenet
from squeezenet.cli import main
from squeezenet.data.folders import list_samples, load_image
from squeezenet.deploy.cengine import targets
from squeezenet.deploy.cengine.codegen import write_c
from squeezenet.deploy.cengine.export import build_engine, crops_of, fp32_logits
from squeezenet.deploy.cengine.graph import fusable, fuse, lower
from squeezenet.deploy.cengine.planner import best_plan, choose, plan, plan_macs, smallest_plan, tflm_plan
from squeezenet.deploy.cengine.quantize import Engine, quantize
from squeezenet.deploy.cengine.reference import calibrate, run_float, run_int
from squeezenet.deploy.cengine.stream import macs, schedule, segment, streamable
from squeezenet.deploy.int8 import calibration_batches
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


@pytest.mark.parametrize("name,size", [("squeezenet1_0_caffe", 227), ("squeezenet1_1", 224), ("squeezenet1_1", 128)])
def test_streaming_makes_every_row_once_from_the_rows_it_keeps(name, size):
    """The C's order replayed: each stage finds the input rows it needs in its ring, no row is made twice (the MACs
    equal the layer-by-layer engine's), and no map of the chain is kept whole."""
    graph = lower(squeezenet.create_model(name), size)
    g = fuse(graph, set(fusable(graph)))
    seg = segment(g, len(streamable(g)))
    order = schedule(seg)
    assert len(order) == len(set(order)) == sum(s.out_h for s in seg.stages) and seg.sink == "scores"
    small = smallest_plan(graph)
    assert plan_macs(small) == plan_macs(best_plan(graph)) == macs(graph)
    biggest = max(s.size for s in graph.shapes.values())
    assert small.arena < best_plan(graph).arena / 3 and small.arena < biggest


def test_the_plan_for_a_budget():
    graph = lower(squeezenet.create_model("squeezenet1_0_caffe"), 227)
    assert choose(graph).streamed == 0  # no budget: layer by layer, the fastest
    fit = choose(graph, 200_000)
    assert 0 < fit.streamed < len(streamable(fuse(graph, set(fusable(graph))))) and fit.arena <= 200_000
    assert choose(graph, 90_000).arena <= 90_000
    with pytest.raises(SqueezeNetError, match=r"fits an arena of 40,000 bytes: the smallest needs \d\d,\d{3}$"):
        choose(graph, 40_000)


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


def _engine_streaming(w: Weights, stages: int, calibration) -> Engine:
    """The engine with its first `stages` stages streamed and the rest layer by layer, whatever that costs."""
    graph = lower(w.build(), w.preprocessing.crop_size)
    p = plan(fuse(graph, set(fusable(graph))), stages)
    p.fused = tuple(fusable(graph))
    return quantize(w, graph, p, calibrate(graph, calibration_batches(w.preprocessing, calibration, 12)),
                    w.preprocessing)


@needs_cc
@pytest.mark.parametrize("config,stages", [({"bypass": "complex", "batch_norm": True}, 0),
                                           ({"bypass": "simple"}, 3),
                                           ({"conv10_padding": 1, "stem_kernel": 7, "final_relu": True}, 0),
                                           ({"conv10_padding": 1, "stem_kernel": 7, "final_relu": True}, 18)])
def test_every_kernel_bit_for_bit(config, stages, tiny, tmp_path):
    """Bypass adds, a 1x1 shortcut, BatchNorm, a 7x7 stem and Caffe's padded conv10 (a bordered Fire output),
    layer by layer and streamed row by row (a bypass net up to its first bypass, then layer by layer), with the
    portable loops and with what this CPU offers (the VNNI path where it has it)."""
    w = _random_weights(1, **config)
    engine = _engine_streaming(w, stages, tiny / "train")
    assert engine.plan.streamed == stages
    write_c(engine, tmp_path / "c", "random")
    crops = crops_of(engine.preprocessing, list_samples(tiny / "val").paths)
    for flags in ("-O2", "-O2 -march=native"):
        exe = targets.host_build(tmp_path / "c", tmp_path / flags.replace(" ", ""), flags)
        assert np.array_equal(targets.host_run(exe, crops, 3)[0], run_int(engine, crops)), flags


needs_arm = pytest.mark.skipif(bool(targets.missing_arm_tools()), reason=f"needs "
                               f"{', '.join(targets.missing_arm_tools())} (apt-get install gcc-arm-none-eabi "
                               f"libnewlib-arm-none-eabi qemu-system-arm)")


@needs_arm
def test_cortex_m4_firmware_streamed_gives_the_host_top1(pruned, crops, tmp_path, capsys):
    """The bundled model streamed row by row (--ram 64K forces it), its images read row by row through
    semihosting: `make` links within the budget, `make run` prints each image's top classes as the host's."""
    files = []
    for i, c in enumerate(crops[:4]):
        files.append(tmp_path / f"img{i}.png")
        PIL.Image.fromarray(c).save(files[-1])
    out = tmp_path / "fw"
    assert main(["--quiet", "export", pruned, "--format", "c", "--target", "cortex-m4", "--out", str(out),
                 "--image-size", "128", "--calibration-images", "32", "--ram", "64K", "--flash", "512K",
                 "--images", *map(str, files)]) == 0
    assert "streamed row by row" in capsys.readouterr().out
    fw = targets.arm_build(out)
    assert fw.flash <= 512 << 10 and fw.ram <= 64 << 10
    board = targets.qemu_run(out, timeout=600)
    engine = build_engine(squeezenet.load(pruned), 128, calibration_images=32, arena=64 << 10)
    assert board.names == [f.stem for f in files]
    assert [t[0] for t in board.top] == list(run_int(engine, crops[:4]).argmax(1))
    assert 0 < board.stack < 8192 and min(board.instructions) > 10 ** 8 and abs(board.per_tick - 40) < 1


@needs_arm
def test_a_three_class_firmware_layer_by_layer(tiny, tmp_path):
    """Fewer than five classes: the board prints as many as there are (the default images: the check images)."""
    w = _random_weights(2)
    file = tmp_path / "w.safetensors"
    save(w, file)
    assert main(["--quiet", "export", str(file), "--format", "c", "--target", "cortex-m4", "--out",
                 str(tmp_path / "fw"), "--calibration", str(tiny / "train"), "--calibration-images", "12",
                 "--check-images", str(tiny / "val"), "--plan", "layers"]) == 0
    targets.arm_build(tmp_path / "fw")
    board = targets.qemu_run(tmp_path / "fw", timeout=600)
    assert len(board.top) == 4 and all(sorted(t) == [0, 1, 2] for t in board.top)


def _one_line_error(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "squeezenet", *args], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    return r.stderr


def test_an_impossible_budget_or_a_wrong_size_image_is_one_line(imagenette, tmp_path):
    err = _one_line_error("export", "imagenette", "--format", "c", "--target", "cortex-m4", "--out",
                          str(tmp_path / "a"), "--image-size", "128", "--ram", "16K", "--calibration-images", "8")
    assert "--ram 16,384: no memory plan fits; the smallest RAM that works is" in err
    image = next((imagenette / "val").rglob("*.JPEG"))
    err = _one_line_error("export", "imagenette", "--format", "c", "--target", "cortex-m4", "--out",
                          str(tmp_path / "b"), "--image-size", "128", "--images", str(image))
    assert "is 224x224: the firmware takes 128x128 RGB images" in err and not (tmp_path / "b").exists()


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
