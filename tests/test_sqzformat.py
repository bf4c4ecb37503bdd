"""The .sqz file on the authors' real model: exact round trips, stable bytes, and mutated files rejected cleanly."""

from __future__ import annotations

import importlib.util
import json
import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import squeezenet
from squeezenet.compression.quantize import layer_bits, quantize_model
from squeezenet.errors import SqueezeNetError
from squeezenet.formats import sqz as sqzformat
from squeezenet.formats.deepcompression import read_net

STREAMS = ("raw", "huffman", "ans")  # version 1's coders, without the context model
V1_COMMIT = "d16982e"  # the last commit whose writer made version 1 files


@pytest.fixture(scope="session")
def authors(authors_model):
    net = authors_model / "compressed_SqueezeNet.net"
    w = squeezenet.load(net)
    names = [k for k in w.state_dict if k.endswith("weight")]
    q8 = {k: sqzformat.Quantized(lay.codes, lay.codebook, 8) for k, lay in zip(names, read_net(net).layers,
                                                                               strict=True)}
    return w, q8


@pytest.fixture(scope="session")
def six_bit(authors):
    w, _ = authors
    q6 = quantize_model(w.build(), 6)
    data, layers = sqzformat.encode(w, q6)
    return w, q6, data


@pytest.fixture(scope="module")
def v1(tmp_path_factory):
    """The version 1 writer and reader, as committed before the context coder."""
    repo = Path(__file__).resolve().parents[1]
    try:
        src = subprocess.run(["git", "-C", str(repo), "show", f"{V1_COMMIT}:src/squeezenet/formats/sqz.py"],
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"needs the git history (commit {V1_COMMIT}, the version 1 writer)")
    path = tmp_path_factory.mktemp("v1") / "sqz_v1.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("sqz_v1", path)
    module = sys.modules["sqz_v1"] = importlib.util.module_from_spec(spec)  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules["sqz_v1"]


def test_version_1_files_read_as_they_did(authors, six_bit, v1):
    """Files written by the version 1 encoder decode to the same codes and weights, and re-encode smaller."""
    w, q8 = authors
    for q, kw in [(six_bit[1], {}), (q8, {"codebook_dtype": "f32", "float_dtype": "f32"})]:
        data, _ = v1.encode(w, q, **kw)
        assert data[len(sqzformat.MAGIC)] == 1
        old, new = v1.decode(data), sqzformat.decode(data)
        for k, v in old.weights.state_dict.items():
            assert torch.equal(new.weights.state_dict[k], v), k
        assert all(np.array_equal(new.quantized[k].codes, v.codes) for k, v in old.quantized.items())
        assert [lay["bytes"] for lay in new.layers] == [lay["bytes"] for lay in old.layers]
        assert len(sqzformat.encode(new.weights, new.quantized, **kw)[0]) < 0.98 * len(data)


def test_the_context_coder_wins_most_layers_and_reads_back_exactly(authors, six_bit):
    w, q6, data = six_bit
    d = sqzformat.decode(data)
    assert data[len(sqzformat.MAGIC)] == sqzformat.VERSION
    assert sum(lay.get("codes_coder") == "context" for lay in d.layers) >= 20  # of 26 weights
    assert len(data) < 0.99 * len(sqzformat.encode(w, q6, coders=STREAMS)[0])
    assert len(sqzformat.encode(w, q6, coders=("context",))[0]) >= len(data)  # the best per layer


@pytest.mark.parametrize("coders", [("raw", "ans"), sqzformat.DEFAULT_CODERS])
def test_8bit_reencoding_is_lossless_and_smaller(authors, authors_model, coders):
    w, q8 = authors
    data, _ = sqzformat.encode(w, q8, codebook_dtype="f32", float_dtype="f32", coders=coders)
    assert len(data) < (authors_model / "compressed_SqueezeNet.net").stat().st_size
    back = sqzformat.decode(data).weights
    for k, v in w.state_dict.items():
        assert torch.equal(back.state_dict[k], v), k
    assert back.class_ids == w.class_ids and back.classes == w.classes and back.preprocessing == w.preprocessing


def test_6bit_round_trip_is_exact_and_bytes_are_stable(six_bit):
    w, q6, data = six_bit
    d = sqzformat.decode(data)
    for k, q in q6.items():
        assert torch.equal(d.weights.state_dict[k], torch.from_numpy(q.weight)), k
        assert np.array_equal(d.quantized[k].codes, q.codes)
    for k, v in w.state_dict.items():
        if k not in q6:
            assert torch.equal(d.weights.state_dict[k], v.half().float()), k
    again, _ = sqzformat.encode(d.weights, d.quantized)
    assert again == data


def test_load_reads_sqz_and_builds_a_model(six_bit, tmp_path):
    w, q6, data = six_bit
    path = tmp_path / "m.sqz"
    path.write_bytes(data)
    model = squeezenet.load(path).build()
    x = torch.randn(1, 3, 227, 227)
    ref = w.build()
    with torch.no_grad():
        for k, q in q6.items():
            ref.get_parameter(k).copy_(torch.from_numpy(q.weight))
        for n, p in ref.named_parameters():
            if n not in q6:
                p.copy_(p.half().float())
        assert torch.allclose(model(x), ref(x), atol=1e-4)


def test_truncated_and_foreign_files_name_the_problem(six_bit, tmp_path):
    _, _, data = six_bit
    for bad, msg in [(data[:100], "checksum"), (b"hello", "not a .sqz"), (data[:-1] + b"\0", "checksum")]:
        with pytest.raises(SqueezeNetError, match=msg):
            sqzformat.decode(bad)
    path = tmp_path / "cut.sqz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SqueezeNetError, match="cut.sqz"):
        squeezenet.load(path)


def _fix_crc(b: bytes) -> bytes:
    return b[:-4] + struct.pack("<I", zlib.crc32(b[:-4]))


@pytest.fixture(scope="session")
def fuzzed(six_bit):
    """The 6-bit file as written (context records) and as version 1's coders write it (streams)."""
    w, q6, data = six_bit
    return {"context": data, "streams": sqzformat.encode(w, q6, coders=STREAMS)[0]}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(st.data())
def test_mutated_files_never_crash_hang_or_overallocate(fuzzed, data):
    """Flip, overwrite, cut or insert bytes, mostly with a recomputed checksum (a forged file), in both kinds of
    quantized records."""
    good = fuzzed[data.draw(st.sampled_from(sorted(fuzzed)))]
    b = bytearray(good[:-4])
    body = len(b)
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "byte", "cut", "insert", "word"]))
        # bias positions towards the header and the layer records, where lengths and counts live
        pos = data.draw(st.one_of(st.integers(0, min(400, len(b) - 1)), st.integers(0, len(b) - 1)))
        if kind == "flip":
            b[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "byte":
            b[pos] = data.draw(st.integers(0, 255))
        elif kind == "word":
            b[pos:pos + 4] = struct.pack("<I", data.draw(st.sampled_from([0, 1, 2**31, 2**32 - 1, 10**6])))
        elif kind == "cut":
            del b[pos:pos + data.draw(st.integers(1, 5000))]
        else:
            b[pos:pos] = bytes(data.draw(st.binary(min_size=1, max_size=16)))
    mutated = bytes(b) + good[-4:]
    if data.draw(st.booleans()) or len(b) != body:
        mutated = _fix_crc(mutated)
    tracemalloc.start()
    try:
        sqzformat.decode(mutated)
    except SqueezeNetError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 64 * 2**20  # the decoded model is 5 MB in fp32; no forged count may drive a big allocation


@pytest.fixture(scope="module")
def alexnet_sqz():
    """A 3-class AlexNet at 67 px, fc7 factorised at rank 32, random 8-bit conv and 5-bit fc codes (~30% zeros)."""
    torch.manual_seed(0)
    model = squeezenet.create_model("alexnet", num_classes=3, image_size=67, ranks={"fc7": 32})
    w = squeezenet.Weights.from_model(model, ["a", "b", "c"], squeezenet.Preprocessing(67, None, (0, 0, 0), (1, 1, 1)))
    rng = np.random.default_rng(0)
    q = {}
    for name, bits in layer_bits(model, 8, 5).items():
        shape = w.state_dict[name].shape
        codes = (rng.integers(1, 1 << bits, shape) * (rng.random(shape) < 0.7)).astype(np.uint8)
        book = np.concatenate([[0.0], np.sort(rng.normal(0, 0.05, (1 << bits) - 1))]).astype(np.float16)
        q[name] = sqzformat.Quantized(codes, book.astype(np.float32), bits)
    data, _ = sqzformat.encode(w, q)
    return w, q, data


def _with_header(data: bytes, change: dict) -> bytes:
    n = len(sqzformat.MAGIC)
    (hlen,) = struct.unpack("<I", data[n + 1:n + 5])
    header = json.loads(zlib.decompress(data[n + 5:n + 5 + hlen])) | change
    head = zlib.compress(json.dumps(header).encode())
    return _fix_crc(data[:n + 1] + struct.pack("<I", len(head)) + head + data[n + 5 + hlen:])


def test_alexnet_round_trip_is_exact(alexnet_sqz, tmp_path):
    w, q, data = alexnet_sqz
    d = sqzformat.decode(data)
    assert d.weights.arch == "alexnet" and d.weights.config == w.config
    assert {k: v.bits for k, v in d.quantized.items()}["features.4.weight"] == 8  # conv2, grouped
    for k, v in q.items():
        assert np.array_equal(d.quantized[k].codes, v.codes) and d.quantized[k].bits == v.bits, k
        assert torch.equal(d.weights.state_dict[k], torch.from_numpy(v.weight)), k
    path = tmp_path / "alexnet.sqz"
    path.write_bytes(data)
    model = squeezenet.load(path).build()
    assert model.layers()["fc7"].second.weight.shape == (4096, 32)
    assert sqzformat.encode(d.weights, d.quantized)[0] == data


def test_forged_and_truncated_alexnet_files_are_rejected(alexnet_sqz):
    _, _, data = alexnet_sqz
    for bad, msg in [(data[:len(data) // 2], "checksum"),
                     (_fix_crc(data[:len(data) // 2]), "truncated|bytes"),
                     (_with_header(data, {"arch": "squeezenet"}), "configuration"),
                     (_with_header(data, {"config": {"image_size": 20}}), "configuration"),
                     (_with_header(data, {"config": {"num_classes": 3, "image_size": 99}}), "not those")]:
        with pytest.raises(SqueezeNetError, match=msg):
            sqzformat.decode(bad)
    # the reader accepts AlexNet's full size (61 M parameters): a header for it fails only on the missing bytes
    with torch.device("meta"):
        full = squeezenet.create_model("alexnet")
    tensors = [[k, list(v.shape)] for k, v in full.state_dict().items()]
    with pytest.raises(SqueezeNetError, match="truncated|holds"):
        header = {"config": full.config.to_dict(), "tensors": tensors, "classes": ["x"] * 1000}
        sqzformat.decode(_with_header(data, header))
