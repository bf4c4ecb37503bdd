"""Table 2 on Imagenette: sizes as the paper counts them, accuracy from real images, and the report's section."""

from __future__ import annotations

import json

import pytest
import torch
from table2_rows import measure, stored_bytes

import squeezenet
from squeezenet.compression.prune import Pruner, alexnet_densities
from squeezenet.compression.quantize import layer_bits, quantize_model
from squeezenet.compression.sizes import sparse_fp32_bytes
from squeezenet.data.folders import list_samples
from squeezenet.experiments.report import section_table2_imagenette
from squeezenet.formats import sqz as sqzformat
from squeezenet.formats.weights import Weights
from squeezenet.models.preprocessing import preset
from squeezenet.training.evaluation import evaluate


@pytest.fixture(scope="module")
def files(imagenette, tmp_path_factory):
    """A small 10-class AlexNet (fc7 at rank 32) as fp32, pruned to Han et al.'s densities, and as 8/5-bit .sqz."""
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("table2")
    classes = sorted(p.name for p in (imagenette / "train").iterdir() if p.is_dir())
    model = squeezenet.create_model("alexnet", num_classes=10, image_size=64, init="kaiming", ranks={"fc7": 32})
    w = Weights.from_model(model, classes, preset("torchvision", 64), class_ids=classes)
    dense = squeezenet.save(w, root / "alexnet.safetensors")
    Pruner(model, alexnet_densities(model)).prune(1.0)
    pruned = squeezenet.save(Weights.from_model(model, classes, w.preprocessing, classes), root / "pruned.safetensors")
    q = quantize_model(model, layer_bits(model, 8, 5))
    data, _ = sqzformat.encode(Weights.from_model(model, classes, w.preprocessing, classes), q)
    (root / "dc.sqz").write_bytes(data)
    return w, dense, pruned, root / "dc.sqz"


def test_sizes_are_counted_as_the_paper_counts_them(files):
    w, dense, pruned, dc = files
    assert stored_bytes(dense) == (4 * sum(v.numel() for v in w.state_dict.values()), "32 bit")
    assert stored_bytes(pruned) == (sparse_fp32_bytes(squeezenet.load(pruned).build()), "32 bit")
    assert stored_bytes(dc) == (dc.stat().st_size, "5-8 bit")


def test_measured_rows_and_the_report_section(files, imagenette, tmp_path):
    _, dense, pruned, dc = files
    rows = measure([("AlexNet", "none", dense), ("AlexNet", "network pruning", pruned),
                    ("AlexNet", "Deep Compression", dc)], imagenette / "val", limit=8, log=lambda m: None)
    assert [r["compression"] for r in rows] == ["none", "network pruning", "Deep Compression"]
    assert rows[0]["vs_alexnet"] == 1 and 1 < rows[1]["vs_alexnet"] < rows[2]["vs_alexnet"]
    # the paper's pruning ratio counts surviving values; quantization keeps zeros zero
    values = sum(v.numel() for v in squeezenet.load(dense).state_dict.values())
    assert 0.99 * values < rows[0]["nonzero"] <= values  # untrained: only the zero-initialised biases are zero
    assert rows[1]["nonzero"] < rows[0]["nonzero"] / 2 and rows[1]["nonzero_vs_alexnet"] > 2
    assert rows[2]["nonzero"] <= rows[1]["nonzero"]
    # each row's accuracy is `evaluate` on the same class-balanced sample with the file's own preprocessing
    for r, path in zip(rows, (dense, pruned, dc), strict=True):
        w = squeezenet.load(path)
        again = evaluate(w.build(), list_samples(imagenette / "val", w.class_ids).sample(8), w.preprocessing,
                         progress=False)
        assert (r["top1"], r["top5"]) == (again["top1"], again["top5"])
    assert section_table2_imagenette(tmp_path, tmp_path) == ""  # nothing measured yet: no section
    (tmp_path / "table2").mkdir()
    (tmp_path / "table2" / "table2.json").write_text(json.dumps({"command": "python benchmarks/table2_imagenette.py",
                                                                 "data": "imagenette2/val", "rows": rows}))
    text = section_table2_imagenette(tmp_path, tmp_path)
    assert "Table 2 on Imagenette" in text and "| AlexNet | network pruning | 32 bit |" in text
    assert "| AlexNet | none | 32 bit | 240 MB | 1x | 57.2% | 80.3% |" in text  # the paper's table beside ours
    dc_row = next(line for line in text.splitlines() if line.startswith("| AlexNet | Deep Compression | 5-8 bit"))
    assert dc_row.endswith("| 35x | 57.2% / 80.3% |")  # and the paper's figures on each measured row
