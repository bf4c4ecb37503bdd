"""`squeezenet evaluate --reference` on every file the project reads and every runtime.

The runtimes run in a process the test starts, first in its pytest worker (conftest's ORDER): a process that has
run OpenVINO's CPU plugin cannot safely start processes afterwards."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import squeezenet
from squeezenet.cli import main
from squeezenet.formats.weights import load

pytest.importorskip("openvino", reason="needs the openvino extra: pip install 'squeezenet[openvino]'")

# Runs each command line in turn in one process, as a user's script would, and prints what each printed.
SCRIPT = """
import contextlib, io, json, sys
from squeezenet.cli import main
outputs = []
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(argv) == 0, argv
    outputs.append(out.getvalue())
print(json.dumps(outputs))
"""


def run_in_one_process(*argvs: list) -> list[str]:
    r = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps([[str(a) for a in argv] for argv in argvs])],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def test_fidelity_on_every_format_and_runtime(authors_model, imagenet_val, imagenette, tiny, tmp_path):
    """The authors' model as each format (converted, re-encoded losslessly to .sqz, exported to ONNX and OpenVINO
    IR, saved by torch and by `save_pretrained`) on each runtime agrees with itself on every image; a .pth carries
    no preprocessing (it is read with torchvision's), so it is compared with itself on another runtime. int8,
    calibrated now on either runtime, nearly agrees with its fp32 self, its difference inside its own interval."""
    net = authors_model / "compressed_SqueezeNet.net"
    f = {"net": net, "safetensors": tmp_path / "sq.safetensors", "sqz": tmp_path / "sq.sqz", "pth": tmp_path / "sq.pth",
         "onnx": tmp_path / "sq.onnx", "xml": tmp_path / "sq.xml"}
    assert main(["convert", str(net), "--out", str(f["safetensors"])]) == 0
    assert main(["compress", "--weights", str(net), "--out", str(f["sqz"])]) == 0
    assert main(["export", str(net), "--out", str(f["onnx"])]) == 0
    torch.save(load(net).build().state_dict(), f["pth"])
    f["hub"] = squeezenet.create_model("squeezenet1_0", pretrained=True).save_pretrained(tmp_path / "hub")
    same = [("safetensors", "torch", "net"), ("sqz", "torch", "net"), ("hub", "torch", "safetensors"),
            ("pth", "onnxruntime", "pth"), ("onnx", "openvino", "safetensors"), ("xml", "openvino", "onnx")]
    int8 = ["onnxruntime", "openvino"]
    out = run_in_one_process(
        ["export", net, "--format", "openvino", "--out", f["xml"]],
        *[["evaluate", f[w], "--backend", b, "--reference", f[ref], "--data", imagenet_val, "--limit", 6, "--json"]
          for w, b, ref in same],
        *[["evaluate", "imagenette", "--int8", "--backend", b, "--calibration", tiny / "train", "--reference",
           "imagenette", "--data", imagenette / "val", "--limit", 20, "--json"] for b in int8])
    for (weights, backend, _), text in zip(same, out[1:], strict=False):
        r = json.loads(text)
        assert (r["backend"], r["images"], r["agreement"], r["paired_difference"]) == (backend, 6, 1, 0), weights
        assert r["kl"] < 1e-6
    for backend, text in zip(int8, out[1 + len(same):], strict=True):
        r = json.loads(text)
        assert (r["backend"], r["precision"], r["reference"]["precision"]) == (backend, "int8", "fp32")
        assert r["agreement"] >= 0.8 and r["paired_ci95"][0] <= r["paired_difference"] <= r["paired_ci95"][1]
