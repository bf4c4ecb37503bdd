"""The rANS stream of a context-coded layer (`context`): written and read by the same calls in the same order.

Three kinds of symbols: groups under static models (each group one constriction call, or one call with a model
per symbol when small), symbols under an adaptive model, and a sorted codebook. The adaptive model is the counts of
the symbols seen so far, smoothed over neighbouring symbols (an 8-bit codebook's 127 magnitudes a side are too
many to learn one by one) plus a prior, rebuilt between blocks that double in size: no frequency table is stored.
The codebook goes as order-preserving integers: the bit length of each gap (adaptive), then the gaps' bits.
"""

from __future__ import annotations

import constriction
import numpy as np

from squeezenet.errors import SqueezeNetError

KERNELS = (np.array([16.0]), np.array([4.0, 8, 4]), np.array([1.0, 4, 6, 4, 1]))  # smoothing, sixteenths
PRIORS = (1, 2, 4, 8)  # sixteenths of a count added to every symbol
PARAMS = [(k, p) for k in range(len(KERNELS)) for p in PRIORS]
BOOK_PARAMS = (1, 4)  # the codebook's gap lengths: smoothed, a quarter count of prior
FIRST_BLOCK, GROWTH, LAST_BLOCK = 16, 2, 2048  # the adaptive model is rebuilt after each block
CHUNK = 1 << 20  # symbols of one model decoded per call: bounds the memory of a huge layer
SMALL = 8192  # up to this many symbols go in one call with a model each, not one call per context
_AC = constriction.stream.stack.AnsCoder
_BITS = constriction.stream.model.Bernoulli(0.5, perfect=False)
_PER_SYMBOL = constriction.stream.model.Categorical(perfect=False)


def _blocks(n: int):
    """The adaptive model's blocks: [lo, hi) pairs."""
    lo, size = 0, FIRST_BLOCK
    while lo < n:
        yield lo, min(n, lo + size)
        lo, size = lo + size, min(GROWTH * size, LAST_BLOCK)


def _weights(counts: np.ndarray, params: tuple[int, int]) -> np.ndarray:
    """The adaptive model's (unnormalised, integer-valued) weights: smoothed counts, in sixteenths, plus the prior."""
    kernel, prior = KERNELS[params[0]], params[1]
    if len(kernel) == 1:
        return counts * kernel[0] + prior
    return np.convolve(counts, kernel)[len(kernel) // 2:len(kernel) // 2 + len(counts)] + prior


def adaptive_bits(x: np.ndarray, alphabet: int, params: tuple[int, int]) -> float:
    """The ideal cost of `x` under the adaptive model (what the encoder compares to pick `params`)."""
    counts, bits = np.zeros(alphabet), 0.0
    for lo, hi in _blocks(len(x) if alphabet > 1 else 0):
        w = _weights(counts, params)
        bits -= float(np.log2(w[x[lo:hi]] / w.sum()).sum())
        counts += np.bincount(x[lo:hi], minlength=alphabet)
    return bits


class Stream:
    """One layer's rANS stream, written (the symbols are given) or read (decoded), by the same calls in the same
    order; `bits`, after `finish`, is what each part cost."""

    def __init__(self, words: np.ndarray | None = None) -> None:
        self.reading, self.chunks, self.bits = words is not None, [], {}
        if self.reading:
            try:
                self.coder = _AC(words)
            except ValueError as e:
                raise SqueezeNetError(f"context stream is corrupt: {e}") from None

    def code(self, model, n: int, truth: np.ndarray | None, part: str, *params: np.ndarray) -> np.ndarray:
        """`n` symbols of `model` (a model family when `params` gives each symbol's parameters)."""
        if not self.reading:
            self.chunks.append((truth, model, params, part))
            return truth
        return self.coder.decode(model, *params) if params else self.coder.decode(model, n)

    def grouped(self, part: str, ctx: np.ndarray | None, n: int, models: list, probs: np.ndarray,
                truth: np.ndarray | None) -> np.ndarray:
        """`n` symbols whose model is models[ctx] (`probs[ctx]`; ctx None: all models[0]), each context's in one
        call."""
        if ctx is None:
            out = np.empty(n, np.uint8)
            for lo in range(0, n, CHUNK):
                hi = min(n, lo + CHUNK)
                out[lo:hi] = self.code(models[0], hi - lo, None if truth is None else truth[lo:hi], part)
            return out
        if n <= SMALL:
            return self.code(_PER_SYMBOL, n, truth, part, np.take(probs, ctx, axis=0))
        order = np.argsort(ctx, kind="stable")
        ends = np.cumsum(np.bincount(ctx, minlength=len(models))).tolist()
        ranked = None if truth is None else truth[order]
        got = [self.code(models[c], hi - lo, None if ranked is None else ranked[lo:hi], part)
               for c, (lo, hi) in enumerate(zip([0, *ends[:-1]], ends, strict=True)) if hi > lo]
        out = np.empty(n, np.uint8)
        out[order] = np.concatenate(got)
        return out

    def adaptive(self, part: str, alphabet: int, n: int, params: tuple[int, int],
                 truth: np.ndarray | None) -> np.ndarray:
        """`n` symbols of 0..alphabet-1 under the adaptive model (see `_weights`), rebuilt between blocks."""
        if alphabet == 1 or n == 0:
            return np.zeros(n, np.int32)
        counts, out = np.zeros(alphabet), np.empty(n, np.int32)
        for lo, hi in _blocks(n):
            model = constriction.stream.model.Categorical(_weights(counts, params), perfect=False)
            out[lo:hi] = self.code(model, hi - lo, None if truth is None else truth[lo:hi], part)
            counts += np.bincount(out[lo:hi], minlength=alphabet)
        return out

    def finish(self) -> np.ndarray:
        """The words; rANS is a stack, so the chunks go in last first."""
        coder = _AC()
        for symbols, model, params, part in reversed(self.chunks):
            before = coder.num_bits()
            coder.encode_reverse(np.ascontiguousarray(symbols, np.int32), model, *params)
            self.bits[part] = self.bits.get(part, 0) + coder.num_bits() - before
        return coder.get_compressed().astype("<u4")

    def check_end(self) -> None:
        if not self.coder.is_empty():
            raise SqueezeNetError("context stream is corrupt (data left after its last symbol)")


def keys(values: np.ndarray, dt: str) -> np.ndarray:
    """Order-preserving integers of floats' bit patterns (-0.0 just below +0.0)."""
    nb = 8 * np.dtype(dt).itemsize
    bits = np.asarray(values, dt).view(f"<u{nb // 8}").astype(np.int64)
    top = 1 << (nb - 1)
    return np.where(bits & top, ~bits & (2 * top - 1), bits | top)


def floats(k: np.ndarray, dt: str) -> np.ndarray:
    """Inverse of `keys`."""
    nb = 8 * np.dtype(dt).itemsize
    top = 1 << (nb - 1)
    bits = np.where(k & top, k ^ top, ~k & (2 * top - 1))
    return bits.astype(f"<u{nb // 8}").view(dt)


def codebook(io: Stream, count: int, dt: str, sorted_keys: np.ndarray | None = None) -> np.ndarray:
    """A sorted codebook's `count` keys (given when writing): the gaps' bit lengths (adaptive), then the first
    key's and the gaps' bits."""
    nb = 8 * np.dtype(dt).itemsize
    gaps = None if sorted_keys is None else np.diff(sorted_keys)
    lengths = None if gaps is None else np.frexp(gaps.astype(np.float64))[1]
    lengths = io.adaptive("codebook", nb + 1, count - 1, BOOK_PARAMS, lengths).astype(np.int64)
    extra = np.maximum(lengths - 1, 0)
    mask = np.concatenate([np.full(nb, True), (np.arange(nb)[None, :] < extra[:, None]).ravel()])
    if gaps is None:
        bits = io.code(_BITS, int(mask.sum()), None, "codebook")
    else:
        bits = ((np.concatenate([sorted_keys[:1], gaps])[:, None] >> np.arange(nb)) & 1).ravel()[mask]
        io.code(_BITS, len(bits), bits, "codebook")
    grid = np.zeros((count, nb), np.int64)
    grid.ravel()[mask] = bits
    values = (grid << np.arange(nb)).sum(1)
    values[1:] += np.where(lengths > 0, 1 << extra, 0)  # the leading one of each gap
    return np.cumsum(values)
