"""What the commands print (issue 32): one C engine flash figure in `compress`, `summary` and `export --format c`,
and a compress table named after the paper's layers whose columns line up."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from squeezenet import create_model
from squeezenet.cli import main
from squeezenet.formats.safetensors import save
from squeezenet.formats.weights import Weights
from squeezenet.models.preprocessing import TORCHVISION

FLASH = re.compile(r"C engine flash \(fixed width\): ([\d,]+) bytes")
CELL = re.compile(r"\S+(?: \S+)*")  # cells are two or more spaces apart; a name may hold single spaces


@pytest.fixture(scope="module")
def compressed(tmp_path_factory) -> tuple[Path, str]:
    """A 3-class SqueezeNet v1.1 at 64 px with BatchNorm (random statistics: a multiplier a channel) and complex
    bypasses, pruned and quantized by `squeezenet compress`: the .sqz and what the command printed."""
    torch.manual_seed(0)
    model = create_model("squeezenet1_1", num_classes=3, base_e=32, incr_e=32, batch_norm=True,
                         bypass="complex").eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.running_var.uniform_(0.5, 2.0)
    folder = tmp_path_factory.mktemp("outputs")
    save(Weights.from_model(model, ["a", "b", "c"], TORCHVISION.at_size(64)), folder / "bn.safetensors")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["compress", str(folder / "bn.safetensors"), "--density", "0.5", "--out",
                     str(folder / "bn.sqz")]) == 0
    return folder / "bn.sqz", out.getvalue()


def _flash(text: str) -> int:
    found = FLASH.findall(text)
    assert len(found) == 1, text
    return int(found[0].replace(",", ""))


def test_compress_summary_and_export_print_the_same_c_engine_flash(compressed, tiny, tmp_path, capsys):
    sqz, printed = compressed
    flash = _flash(printed)
    assert main(["summary", "--weights", str(sqz), "--input-size", "64"]) == 0
    assert _flash(capsys.readouterr().out) == flash
    out = tmp_path / "c"
    assert main(["--quiet", "export", str(sqz), "--format", "c", "--out", str(out), "--calibration",
                 str(tiny / "train"), "--calibration-images", "12", "--check-images", str(tiny / "val")]) == 0
    assert _flash(capsys.readouterr().out) == flash
    # and it is what the device gets: weights.c's integer arrays plus the input's 3 x 256 table
    arrays = re.findall(r"static const u?int(8|16|32|64)_t \w+\[(\d+)\]", (out / "weights.c").read_text())
    assert flash == sum(int(bits) // 8 * int(n) for bits, n in arrays) + 3 * 256


def _aligned(lines: list[str]) -> None:
    """Every line as long as the header, its name at offset 0, each figure ending where its header does."""
    ends = [m.end() for m in CELL.finditer(lines[0])]
    for line in lines:
        cells = list(CELL.finditer(line))
        assert len(line) == len(lines[0]) and cells[0].start() == 0, line
        assert {m.end() for m in cells[1:]} <= set(ends[1:]), line


def test_the_compress_table_names_the_papers_layers_lines_up_and_leaves_alexnet_out(compressed, capsys):
    _, printed = compressed
    lines = printed.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("layer "))
    total = next(i for i, line in enumerate(lines) if line.startswith("total "))
    table = [line for line in lines[head:total + 1] if not line.startswith("---")]
    names = [CELL.match(line).group() for line in table[1:-1]]
    assert {"conv1", "conv1 bn", "fire2", "fire2/squeeze1x1 bn", "fire2/expand3x3 bn", "fire9/bypass bn",
            "conv10"} <= set(names)
    assert not [n for n in names if re.search(r"features\.|classifier\.", n)]
    _aligned(table)
    stage = next(i for i, line in enumerate(lines) if line.startswith("stage "))
    _aligned(lines[stage:stage + 4])  # stages: fp32, pruned, quantized
    assert "alexnet" not in printed.lower()
    assert main(["summary", "--weights", str(compressed[0]), "--input-size", "64", "--json"]) == 0
    assert "alexnet" not in capsys.readouterr().out.lower()
