"""The reader of the authors' Deep Compression file: exact decode, and a one-line error for every damaged input."""

from __future__ import annotations

import re

import numpy as np
import pytest

from squeezenet.cli import main
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.deepcompression import read_net
from squeezenet.formats.prototxt import parse_prototxt, read_prototxt

NET = "compressed_SqueezeNet.net"
PROTOTXT = "SqueezeNet_deploy.prototxt"


@pytest.fixture(scope="module")
def raw(authors_model) -> bytes:
    return (authors_model / NET).read_bytes()


@pytest.fixture(scope="module")
def prototxt(authors_model) -> str:
    return (authors_model / PROTOTXT).read_text()


def _damaged(tmp_path, data: bytes, prototxt_text: str) -> SqueezeNetError:
    """Write a copy of the file (and its prototxt) and return the reader's error; it must be one line."""
    (tmp_path / PROTOTXT).write_text(prototxt_text)
    (tmp_path / NET).write_bytes(data)
    with pytest.raises(SqueezeNetError) as e:
        read_net(tmp_path / NET)
    assert "\n" not in str(e.value) and (NET in str(e.value) or PROTOTXT in str(e.value))
    return e.value


def test_decodes_the_shared_file_exactly(authors_model):
    f = read_net(authors_model / NET)
    assert f.stats() == {"layers": 26, "weights": 1_244_448, "nonzero": 415_921, "biases": 3_976,
                         "entries": 422_083, "bytes": 675_763}
    names = [layer.spec.name for layer in f.layers]
    assert names[0] == "conv1" and names[1:4] == ["fire2/conv1x1_1", "fire2/conv1x1_2", "fire2/conv3x3_2"]
    assert names[-1] == "conv_final" and f.layers[-1].spec.pad == 1
    assert f.layers[0].weight.shape == (96, 3, 7, 7) and f.layers[-1].weight.shape == (1000, 512, 1, 1)
    # per-layer densities of the released model (paper-facts): conv10 20%, fire6 expand1x1 ~50%
    density = {lay.spec.name: np.count_nonzero(lay.weight) / lay.weight.size for lay in f.layers}
    assert density["conv_final"] == pytest.approx(0.20, abs=0.005)
    assert density["fire6/conv1x1_2"] == pytest.approx(0.50, abs=0.005)
    assert all(lay.codebook[0] == 0 and lay.codebook.shape == (256,) for lay in f.layers)


def test_prototxt_parser(authors_model):
    net = parse_prototxt('name: "x" # comment\ninput_dim: 1 layer { name: "a" p { k: 3 k: 4.5 e: MAX } }')
    assert net == {"name": ["x"], "input_dim": [1], "layer": [{"name": ["a"], "p": [{"k": [3, 4.5], "e": ["MAX"]}]}]}
    specs = read_prototxt(authors_model / PROTOTXT)
    assert [s.in_channels for s in specs[:5]] == [3, 96, 16, 16, 128]  # concat of fire2 feeds fire3
    for bad in ("layer {", "layer { name: }", "}", "a: 1 : 2", "layer { 3: x }"):
        with pytest.raises(SqueezeNetError, match="line|end of file"):
            parse_prototxt(bad)


@pytest.mark.parametrize("size", [0, 3, 103, 104, 1200, 300_000, 675_762])
def test_truncated(tmp_path, raw, prototxt, size):
    err = _damaged(tmp_path, raw[:size], prototxt)
    assert re.search(r"header|remain", str(err))


@pytest.mark.parametrize("extra", [b"\0", b"\0" * 1000])
def test_extended(tmp_path, raw, prototxt, extra):
    assert f"{len(extra):,} bytes left" in str(_damaged(tmp_path, raw + extra, prototxt))


def test_huge_file_is_refused_before_reading(tmp_path, prototxt):
    (tmp_path / PROTOTXT).write_text(prototxt)
    with open(tmp_path / NET, "wb") as f:
        f.truncate(8 << 30)  # sparse: 8 GB that take no disk space
    with pytest.raises(SqueezeNetError, match="more than any file for this prototxt"):
        read_net(tmp_path / NET)


def test_every_header_byte_flip_is_caught(tmp_path, raw, prototxt):
    for i in range(104):  # an entry count changes, so the sizes no longer add up to the file
        data = bytearray(raw)
        data[i] ^= 0xFF
        _damaged(tmp_path, bytes(data), prototxt)


def test_payload_byte_flips_never_crash(tmp_path, raw, prototxt):
    """The format has no checksum: a flip in the payload is caught when it breaks an invariant, else decodes."""
    (tmp_path / PROTOTXT).write_text(prototxt)
    rng = np.random.default_rng(0)
    caught = 0
    for i in rng.integers(104, len(raw), 40):
        data = bytearray(raw)
        data[i] ^= 1 << int(rng.integers(8))
        (tmp_path / NET).write_bytes(bytes(data))
        try:
            f = read_net(tmp_path / NET)
        except SqueezeNetError as e:
            assert "\n" not in str(e)
            caught += 1
            continue
        assert f.stats()["weights"] == 1_244_448
    # targeted: code 0 must be 0.0; a NaN bias; a stored zero that is no filler
    first_codebook = 104
    for offset, value in [(first_codebook, b"\x00\x00\x80\x3f"), (first_codebook + 1024, b"\x00\x00\xc0\x7f"),
                          (first_codebook + 1024 + 4 * 96, b"\x00")]:
        data = bytearray(raw)
        data[offset:offset + len(value)] = value
        assert re.search("codebook|filler", str(_damaged(tmp_path, bytes(data), prototxt)))


@pytest.mark.parametrize("edit", [
    ("num_output: 256\n    pad: 1", "num_output: 255\n    pad: 1"),  # a fire9 expand3x3 with one filter less
    ('name: "conv_final"', 'name: "final"'),  # conv10 no longer stored: the file has a layer too many
    ("num_output: 1000", "num_output: 1000000000"),  # a huge layer must fail before any allocation
    ("kernel_size: 7", "kernel_size: 70000"),
    ("input_dim: 3", ""),
    ('bottom: "fire9/concat"', 'bottom: "nowhere"'),
])
def test_mismatched_prototxt(tmp_path, raw, prototxt, edit):
    assert edit[0] in prototxt
    _damaged(tmp_path, raw, prototxt.replace(edit[0], edit[1]))


def test_other_prototxts(tmp_path, raw, shared):
    deepscale = shared / "reference" / "deepscale-squeezenet"
    for p in sorted(deepscale.rglob("*deploy*.prototxt")):  # other layer names: the file does not match
        _damaged(tmp_path, raw, p.read_text())
    err = _damaged(tmp_path, raw, "\x00\xff garbage {{")
    assert PROTOTXT in str(err)


def test_cli_one_line_error(tmp_path, raw, prototxt, capsys):
    (tmp_path / PROTOTXT).write_text(prototxt)
    (tmp_path / NET).write_bytes(raw[:-10])
    assert main(["convert", str(tmp_path / NET), "--out", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("squeezenet: error: ") and err.count("\n") == 1
    assert not (tmp_path / "x.safetensors").exists()
