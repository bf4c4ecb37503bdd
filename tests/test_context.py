"""The context-modelled layer coder: exact round trips on synthetic layers, canonical bytes, bad payloads rejected."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezenet.errors import SqueezeNetError
from squeezenet.formats import context, rans

FAST = settings(max_examples=40, deadline=None)
SHAPES = [(4, 3, 3, 3), (5, 2, 7, 7), (6, 4, 1, 1), (10, 20), (3, 2, 1, 5), (2, 3, 5, 1), (1, 1, 1, 1), (9, 2, 2, 3)]


@st.composite
def layers(draw):
    """(codes, codebook, bits, dtype): densities 0..1, codebooks with duplicates, -0.0 and one-signed halves."""
    shape, bits = draw(st.sampled_from(SHAPES)), draw(st.integers(1, 8))
    dt = draw(st.sampled_from(["<f2", "<f4"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["normal", "positive", "negative", "duplicates", "zeros"]))
    book = rng.normal(0, 0.1, (1 << bits) - 1)
    if kind == "positive":
        book = np.abs(book) + 1e-3
    elif kind == "negative":
        book = -np.abs(book) - 1e-3
    elif kind == "duplicates":
        book = rng.choice(book[:3], len(book))
    elif kind == "zeros":
        book[: len(book) // 2] = rng.choice([0.0, -0.0], len(book) // 2)
    density = draw(st.sampled_from([0.0, 0.05, 0.33, 0.9, 1.0]))
    codes = (rng.integers(1, 1 << bits, shape) * (rng.random(shape) < density)).astype(np.uint8)
    return codes, np.concatenate([[0.0], book.astype(dt)]), bits, dt


def _weights(codes: np.ndarray, book: np.ndarray, dt: str) -> np.ndarray:
    """The weights as bit patterns (so -0.0 and +0.0 differ)."""
    return np.asarray(book, dt).astype(np.float32)[codes].view(np.uint32)


@FAST
@given(layers())
def test_round_trip_is_exact_and_canonical(layer):
    codes, book, bits, dt = layer
    data, parts = context.encode(codes, book, bits, dt)
    back, table, read = context.decode(data, codes.shape, bits, dt)
    assert back.shape == codes.shape and back.dtype == np.uint8 and table[0] == 0
    assert np.array_equal(_weights(back, table, dt), _weights(codes, book, dt))
    assert np.all(np.diff(table[1:].astype(np.float64)) >= 0)  # stored in value order
    assert context.encode(back, table, bits, dt)[0] == data  # re-encoding what was read gives the same bytes
    assert read["states_bits"] == parts["states_bits"] and read["magnitude_bits"] == parts["magnitude_bits"]


def test_large_planes_are_grouped_by_context_and_round_trip():
    """A plane of more than `rans.SMALL` kernels goes one call per context (the path the big layers take)."""
    rng = np.random.default_rng(1)
    shape = (96, 96, 3, 3)
    assert shape[0] * shape[1] > rans.SMALL
    keep = rng.random(shape[:2])[:, :, None, None] < rng.random(shape) * 0.8  # kernels that live and die together
    book = np.concatenate([[0.0], np.linspace(-1, 1, 63)]).astype(np.float32)  # codes 1..32 are <= 0
    sign = np.where(rng.random(shape[:2]) < 0.5, 1, 33)[:, :, None, None]
    codes = (keep * (sign + rng.integers(0, 31, shape))).astype(np.uint8)
    data, parts = context.encode(codes, book, 6, "<f4")
    back, table, _ = context.decode(data, shape, 6, "<f4")
    assert np.array_equal(table[back], book[codes])
    assert (data[0] & (context.SIG_ON | context.SIGN_ON)) == context.SIG_ON | context.SIGN_ON  # contexts paid
    assert parts["sign_bits"] < 0.5 * np.count_nonzero(codes)  # neighbours' signs told


@given(st.binary(max_size=400), st.sampled_from(SHAPES), st.integers(1, 8), st.sampled_from(["<f2", "<f4"]))
@settings(max_examples=200, deadline=None)
def test_garbage_payloads_fail_cleanly(data, shape, bits, dt):
    try:
        codes, table, _ = context.decode(data, shape, bits, dt)
    except SqueezeNetError:
        return
    assert codes.shape == shape and int(codes.max(initial=0)) < 1 << bits and np.isfinite(table).all()


@given(st.data())
@settings(max_examples=100, deadline=None)
def test_mutated_payloads_fail_cleanly_and_stay_small(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    shape = (64, 48, 3, 3)
    codes = (rng.integers(1, 256, shape) * (rng.random(shape) < 0.3)).astype(np.uint8)
    good = bytearray(context.encode(codes, np.concatenate([[0.0], rng.normal(0, 0.1, 255)]), 8, "<f2")[0])
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(good) - 1))
        good[pos] ^= 1 << data.draw(st.integers(0, 7))
    tracemalloc.start()
    try:
        out, _, _ = context.decode(bytes(good), shape, 8, "<f2")
        assert out.shape == shape
    except SqueezeNetError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 16 * 2**20  # the layer is 27,648 weights


def test_a_stream_too_short_for_its_shape_is_refused_before_decoding():
    data, _ = context.encode(np.ones((4, 4), np.uint8), np.array([0.0, 1.0]), 1, "<f4")
    with pytest.raises(SqueezeNetError, match="too short"):
        context.decode(data, (4096, 9216), 1, "<f4")  # AlexNet's fc6 from 8 bytes
    with pytest.raises(SqueezeNetError, match="bad header"):
        context.decode(bytes([context.SIG_ON]) + data[1:], (4, 4), 1, "<f4")  # contexts on a 1x1 layer


def test_adaptive_model_learns_a_skewed_alphabet():
    """The magnitudes need no table: on 20,000 skewed symbols the adaptive cost is within 1% of the entropy."""
    rng = np.random.default_rng(0)
    p = np.exp(-np.arange(127) / 10)
    x = rng.choice(127, 20000, p=p / p.sum())
    counts = np.bincount(x, minlength=127)
    entropy = -(counts[counts > 0] * np.log2(counts[counts > 0] / len(x))).sum()
    assert min(rans.adaptive_bits(x, 127, params) for params in rans.PARAMS) < 1.01 * entropy
