"""Codecs: exact round trips on synthetic streams (arithmetic properties), and bad streams rejected cleanly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squeezenet.errors import SqueezeNetError
from squeezenet.formats.coders import decode_stream, dense_from_index, encode_stream, huffman_lengths, sparse_index

FAST = settings(max_examples=20, deadline=None)


@st.composite
def streams(draw):
    bits = draw(st.integers(1, 8))
    n = draw(st.integers(0, 400))
    skew = draw(st.floats(0.05, 8.0))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    p = np.exp(-np.arange(1 << bits) / skew)
    return rng.choice(1 << bits, size=n, p=p / p.sum()), 1 << bits


@FAST
@given(streams(), st.sampled_from([("raw",), ("huffman",), ("ans",), ("raw", "huffman", "ans")]))
def test_every_coder_round_trips(stream, coders):
    x, alphabet = stream
    data = encode_stream(x, alphabet, coders)
    assert np.array_equal(decode_stream(data, len(x), alphabet), x)


@FAST
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 0.99), st.integers(1, 8), st.integers(1, 3000))
def test_sparse_index_round_trips(seed, sparsity, gap_bits, n):
    rng = np.random.default_rng(seed)
    codes = np.where(rng.random(n) < sparsity, 0, rng.integers(1, 64, n)).astype(np.uint8)
    entry_codes, gaps = sparse_index(codes, gap_bits)
    assert gaps.max(initial=0) < 1 << gap_bits
    assert np.count_nonzero(entry_codes) == np.count_nonzero(codes)
    assert np.array_equal(dense_from_index(entry_codes, gaps, n), codes)


def test_fillers_bridge_long_runs():
    codes = np.zeros(40, np.uint8)
    codes[[0, 35]] = 7
    entry_codes, gaps = sparse_index(codes, 4)  # 34 zeros between: two fillers of 16 then a gap of 2
    assert entry_codes.tolist() == [7, 0, 0, 7]
    assert gaps.tolist() == [0, 15, 15, 2]


@FAST
@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=256))
def test_huffman_lengths_are_a_limited_prefix_code(counts):
    lengths = huffman_lengths(np.array(counts))
    used = lengths[np.array(counts) > 0]
    assert (lengths[np.array(counts) == 0] == 0).all()
    if len(used):
        assert used.max() <= 15 and (2.0 ** -used).sum() <= 1


def test_entropy_coders_beat_fixed_width_on_skewed_data():
    rng = np.random.default_rng(0)
    p = np.exp(-np.arange(64) / 6)
    x = rng.choice(64, size=20000, p=p / p.sum())
    raw, huf, ans = (len(encode_stream(x, 64, (c,))) for c in ("raw", "huffman", "ans"))
    assert ans < huf < raw


@FAST
@given(st.binary(max_size=300), st.integers(0, 5000), st.sampled_from([2, 16, 64, 256]))
def test_garbage_streams_fail_cleanly(data, count, alphabet):
    try:
        out = decode_stream(data, count, alphabet)
    except SqueezeNetError:
        return
    assert len(out) == count and (out < alphabet).all()


def test_index_past_the_tensor_is_rejected():
    with pytest.raises(SqueezeNetError, match="past the tensor"):
        dense_from_index(np.array([1, 1]), np.array([3, 3]), 5)
