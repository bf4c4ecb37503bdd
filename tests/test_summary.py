"""Table 1 from the summary, and the `summary` / `reproduce` commands."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from squeezenet import create_model
from squeezenet.cli import main
from squeezenet.experiments.paper import TABLE1
from squeezenet.models.summary import summarize


def test_summary_reproduces_table1_at_227():
    rows = {r["name"]: r for r in summarize(create_model("squeezenet1_0"), 227)["layers"]}
    assert list(rows) == list(TABLE1)
    for name, (out, params, _, _) in TABLE1.items():
        h, w, c = rows[name]["output"]
        assert f"{h}x{w}x{c}" == out
        assert rows[name]["params"] == (params or 0)


@pytest.mark.parametrize("name,macs", [("squeezenet1_0", 818.9e6), ("squeezenet1_1", 349.2e6)])
def test_macs_at_224(name, macs):
    assert abs(summarize(create_model(name), 224)["total"]["macs"] - macs) < 0.1e6


def test_summary_json_cli(capsys):
    assert main(["summary", "squeezenet1_0", "--sr", "0.5", "--pct3x3", "0.25", "--bypass", "simple", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total"]["params"] == sum(p.numel() for p in create_model(
        "squeezenet1_0", sr=0.5, pct3x3=0.25, bypass="simple").parameters())
    assert out["total"]["bytes_fp32"] == 4 * out["total"]["params"]
    assert {"layers", "total"} <= set(out) and out["total"]["macs"] > 0


@pytest.mark.parametrize("argv,needle", [
    (["summary", "squeezenet9"], "squeezenet9"),
    (["summary", "squeezenet1_0", "--sr", "0"], "sr"),
    (["summary", "squeezenet1_0", "--pct3x3", "1.2"], "pct3x3"),
    (["summary", "squeezenet1_0", "--bypass", "diagonal"], "diagonal"),
    (["summary", "squeezenet1_0", "--input-size", "16"], "minimum input size 21"),
])
def test_bad_input_is_one_line_and_exit_2(argv, needle):
    r = subprocess.run([sys.executable, "-m", "squeezenet", *argv], capture_output=True, text=True)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr and "Traceback" not in r.stderr


def test_reproduce_writes_report(tmp_path):
    r = subprocess.run([sys.executable, "-m", "squeezenet", "reproduce", "--out", str(tmp_path / "rep")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "rep" / "README.md").read_text()
    assert "Every row matches: **yes**" in text and "1,248,424" in text
    assert "### bypass" in text and "57.5 / 80.3 / 4.8 MB" in text  # results/explore/: Table 3 beside ours
    assert (tmp_path / "rep" / "figure3_sizes.png").stat().st_size > 10_000
    # the ImageNet figures on both shared sets, each with its protocol (results/headline, results/compress)
    assert "## Headline figures" in text and "top-1 / top-5 (imagenet-sample-750)" in text
    assert "| `compressed_SqueezeNet.net` | imagenet-sample-750 | 750 (150) |" in text
    assert text.count("warp to 256x256, centre crop 227") >= 8
    # the rate-accuracy curve with each file's fidelity to the 8-bit model (results/compress/rate_accuracy.json)
    curve = json.loads((Path(__file__).parents[1] / "results/compress/rate_accuracy.json").read_text())
    f = curve["ours"][0]["fidelity"]
    assert f"{100 * f['agreement']:.2f}% | {100 * f['paired_difference']:+.2f} (" in text


def test_summary_of_the_bundled_model_by_name(capsys):
    assert main(["summary", "--weights", "imagenette", "--input-size", "160", "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    from squeezenet import load
    from squeezenet.formats.weights import resolve

    params = sum(p.numel() for p in load("imagenette").build().parameters())
    assert table["total"]["params"] == params
    assert table["compression"]["total_bytes"] == resolve("imagenette").stat().st_size  # every byte accounted for
