"""Context-modelled coding of a quantized layer: DeepCABAC's ideas, decoded many symbols per constriction call.

A layer's codes (0 = pruned) go into one rANS stream (`rans`): the codebook, in value order (so a code's rank is
its value's: a layer read back has its codes renumbered, the weights are the same), then per weight in tensor order
its state (pruned, negative or positive), then the magnitude of each survivor given its sign. The state is
significance times sign, each with a probability per context: the states of the left and upper neighbours in the
kernel and, for significance, the share of the kernel's earlier weights that survived (a kernel's weights live and
die together, and neighbours share their sign: that saves a quarter of the signs' bits in SqueezeNet v1.0's 3x3
layers). The two tables are sent, 12 bits a context, or one probability each where the contexts do not pay for
their table: estimated on the whole layer they cost less than learning them. The magnitudes' model adapts as they
are coded (`rans.Stream.adaptive`), with the smoothing and prior the encoder finds best for the layer.

Speed: states are decoded a kernel anti-diagonal at a time, in every kernel at once (the positions whose left and
upper neighbours are known: 5 steps for 3x3 kernels, one for a 1x1 or fully connected layer), each context's
states in one call. The input is untrusted: header, tables and length are checked,
the codebook must be finite and hold the states' signs, the stream must end where its symbols do, and every count
is bounded by the declared shape.
"""

from __future__ import annotations

import constriction
import numpy as np

from squeezenet.errors import SqueezeNetError
from squeezenet.formats.coders import pack_bits, unpack_bits
from squeezenet.formats.rans import PARAMS, Stream, adaptive_bits, codebook, floats, keys

PROB_BITS = 12  # binary probabilities are q / 4096, q in 1..4095
ONE = 1 << PROB_BITS
SIG_CONTEXTS, SIGN_CONTEXTS = 16, 9
SIG_ON, SIGN_ON = 16, 32  # header bits: the layer uses the significance / sign contexts
PARTS = ("codebook", "states", "magnitude")  # the stream's parts, in order
_SIG_OF_NEAR = np.array([(2 * (a > 0) + (b > 0)) * 4 for a in range(3) for b in range(3)], np.uint8)


def _kernel(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(kernels, kernel height, kernel width): a conv weight's (O, I, H, W), anything else as 1x1 kernels."""
    numel = int(np.prod(shape, dtype=np.int64))
    kh, kw = (shape[2], shape[3]) if len(shape) == 4 else (1, 1)
    return numel // (kh * kw), kh, kw


def _layout(on: tuple[bool, bool]) -> tuple[np.ndarray, np.ndarray]:
    """Per state context (see `_walk`), its significance and its sign context."""
    if on[0] and on[1]:
        return _SIG_OF_NEAR.repeat(4) + np.tile(np.arange(4, dtype=np.uint8), 9), np.arange(9).repeat(4)
    if on[0]:
        return np.arange(SIG_CONTEXTS), np.zeros(SIG_CONTEXTS, np.int64)
    return np.zeros(SIGN_CONTEXTS if on[1] else 1, np.int64), np.arange(SIGN_CONTEXTS if on[1] else 1)


def _probabilities(tables: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(state contexts, 3): P(pruned), P(negative), P(positive), in units of 2^-24 (exact in float64)."""
    sig_of, sign_of = _layout((len(tables[0]) > 1, len(tables[1]) > 1))
    s, g = tables[0][sig_of].astype(np.float64), tables[1][sign_of].astype(np.float64)
    return np.stack([ONE * (ONE - s), s * (ONE - g), s * g], axis=1)


class _Tally:
    """A dry run of the walk with every context on: the states counted per context, to build the tables."""

    def __init__(self) -> None:
        self.counts = np.zeros((36, 3))

    def grouped(self, part: str, ctx: np.ndarray | None, n: int, models: list, probs: np.ndarray,
                truth: np.ndarray) -> np.ndarray:
        if ctx is None:
            self.counts[0] += np.bincount(truth, minlength=3)
        else:
            self.counts += np.bincount(3 * ctx.astype(np.int64) + truth, minlength=108).reshape(36, 3)
        return truth

    def _counts(self, part: str, on: bool) -> tuple[np.ndarray, np.ndarray]:
        """(symbols, ones) per context of `part`, or summed over them when `on` is False."""
        sig_of, sign_of = _layout((True, True))
        if part == "significance":
            index, n, ones = sig_of, self.counts.sum(1), self.counts[:, 1:].sum(1)
        else:
            index, n, ones = sign_of, self.counts[:, 1:].sum(1), self.counts[:, 2]
        n, ones = np.bincount(index, n), np.bincount(index, ones)
        return (n, ones) if on else (n.sum(keepdims=True), ones.sum(keepdims=True))

    def table(self, part: str, on: bool) -> tuple[np.ndarray, float]:
        """The probabilities (q / 4096) of a 1 per context, and their cost with the table's."""
        n, ones = self._counts(part, on)
        q = np.where(n > 0, np.clip(np.round(ONE * ones / np.maximum(n, 1)), 1, ONE - 1), ONE // 2)
        p = q / ONE
        return q.astype(np.int64), float(-(ones * np.log2(p) + (n - ones) * np.log2(1 - p)).sum()) + PROB_BITS * len(q)


def _at(states: np.ndarray, y: int, x: int) -> np.ndarray:
    """The states at kernel position (y, x), pruned outside the kernel."""
    return states[y, x] if y >= 0 and x >= 0 else np.zeros(states.shape[2], np.uint8)


def _walk(io, n: int, kh: int, kw: int, on: tuple[bool, bool], probs: np.ndarray,
          truth: np.ndarray | None = None) -> np.ndarray:
    """The states (0 pruned, 1 negative, 2 positive), shaped (kh, kw, kernels), a kernel anti-diagonal at a time
    (its positions' left and upper neighbours are on the one before). A state's context: both neighbours' states
    (0..8) and/or, for significance, the share of the kernel's weights on earlier diagonals kept, in thirds (`on`
    says which). `truth` (the states) when writing."""
    models = [constriction.stream.model.Categorical(p, perfect=False) for p in probs]
    states = np.zeros((kh, kw, n), np.uint8)
    kept3, before = np.zeros(n, np.uint16), 0  # 3 x the survivors on earlier diagonals, and their positions
    for d in range(kh + kw - 1):
        cells = [(y, d - y) for y in range(max(0, d - kw + 1), min(d, kh - 1) + 1)]
        ctx = None
        if d and (on[0] or on[1]):
            near = [3 * _at(states, y, x - 1) + _at(states, y - 1, x) for y, x in cells]
            share = np.uint8(1) + (kept3 >= before) + (kept3 >= 2 * before) if on[0] else 0
            ctx = np.concatenate([c * 4 + share if on[0] and on[1] else _SIG_OF_NEAR[c] + share if on[0] else c
                                  for c in near])
        given = None if truth is None else np.concatenate([truth[y, x] for y, x in cells]) if d else truth[0, 0]
        got = io.grouped("states", ctx, n * len(cells), models, probs, given)
        for i, (y, x) in enumerate(cells):
            states[y, x] = got[i * n:(i + 1) * n]
            if on[0]:
                np.add(kept3, 3 * (states[y, x] != 0), out=kept3, casting="unsafe")
        before += len(cells)
    return states


def _signed(sorted_keys: np.ndarray, dt: str) -> int:
    """How many of the sorted codebook's values are <= 0: codes 1..that are the negative half."""
    return int(np.searchsorted(sorted_keys, 1 << (8 * np.dtype(dt).itemsize - 1), "right"))


def encode(codes: np.ndarray, book: np.ndarray, bits: int, dt: str) -> tuple[bytes, dict]:
    """The payload of a layer (codes in `codes.shape`, `book[0]` = 0.0 implied) and its bits per part."""
    n, kh, kw = _kernel(codes.shape)
    k = keys(np.asarray(book[1:], np.float64), dt)
    order = np.argsort(k, kind="stable")
    rank = np.zeros(1 << bits, np.uint8)
    rank[1 + order] = 1 + np.arange(len(order))
    k, c = k[order], np.ascontiguousarray(rank[codes.reshape(n, kh * kw)].T)  # (kh * kw, kernels)
    neg = _signed(k, dt)
    truth = (np.uint8(0) + (c > 0) + (c > neg)).reshape(kh, kw, n)
    tally = _Tally()
    _walk(tally, n, kh, kw, (kh * kw > 1,) * 2, np.ones((36, 3)), truth)
    chosen = [min((tally.table(part, on) for on in {False, kh * kw > 1}), key=lambda t: t[1])
              for part in ("significance", "sign")]
    tables = (chosen[0][0], chosen[1][0])
    survivors = c[c != 0].astype(np.int64)  # kernel position by kernel position, as the decoder finds them
    halves = (survivors[survivors <= neg] - 1, survivors[survivors > neg] - neg - 1)
    sizes = (neg, len(k) - neg)
    best = int(np.argmin([sum(adaptive_bits(h, a, p) for h, a in zip(halves, sizes, strict=True)) for p in PARAMS]))
    io = Stream()
    codebook(io, len(k), dt, k)
    _walk(io, n, kh, kw, (len(tables[0]) > 1, len(tables[1]) > 1), _probabilities(tables), truth)
    for h, a in zip(halves, sizes, strict=True):
        io.adaptive("magnitude", a, len(h), PARAMS[best], h)
    words = io.finish()
    head = bytes([best | SIG_ON * (len(tables[0]) > 1) | SIGN_ON * (len(tables[1]) > 1)])
    head += pack_bits(np.concatenate(tables), PROB_BITS)
    return head + words.tobytes(), {f"{part}_bits": io.bits.get(part, 0) for part in PARTS} | {
        "significance_bits": chosen[0][1], "sign_bits": chosen[1][1]}


def _header(data: bytes, n: int, size: int) -> tuple[int, tuple[bool, bool], np.ndarray, np.ndarray]:
    """(magnitude parameters, contexts on, tables, words) of a payload, checked."""
    flags = data[0] if data else 255
    on = (bool(flags & SIG_ON), bool(flags & SIGN_ON))
    contexts = (SIG_CONTEXTS if on[0] else 1, SIGN_CONTEXTS if on[1] else 1)
    nt = (sum(contexts) * PROB_BITS + 7) // 8
    if len(data) < 1 + nt or (len(data) - 1 - nt) % 4 or flags & 15 >= len(PARAMS) or flags >= 64 or (
            size == 1 and any(on)):
        raise SqueezeNetError("context stream has a bad header or length")
    table = unpack_bits(data[1:1 + nt], PROB_BITS, sum(contexts))
    if table.min() < 1:
        raise SqueezeNetError("context stream has a zero probability")
    words = np.frombuffer(data, "<u4", offset=1 + nt).astype(np.uint32)
    if 32 * len(words) + 64 < n * size * -np.log2((ONE - 1) / ONE):  # no symbol is likelier than 4095/4096
        raise SqueezeNetError(f"context stream too short for {n * size:,} weights")
    return flags & 15, on, table, words


def decode(data: bytes, shape: tuple[int, ...], bits: int, dt: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """(codes in `shape`, float32 codebook with the implied 0.0 first, bits per part); raises on a bad payload."""
    n, kh, kw = _kernel(shape)
    params, on, table, words = _header(data, n, kh * kw)
    io = Stream(words)
    count, spent = (1 << bits) - 1, [io.coder.num_bits()]
    k = codebook(io, count, dt)
    spent.append(io.coder.num_bits())
    values = floats(k, dt) if k[-1] < 1 << (8 * np.dtype(dt).itemsize) else np.array([np.nan])
    if not np.isfinite(values).all():
        raise SqueezeNetError("context stream has a corrupt codebook")
    split = SIG_CONTEXTS if on[0] else 1
    states = _walk(io, n, kh, kw, on, _probabilities((table[:split], table[split:]))).reshape(-1)
    spent.append(io.coder.num_bits())
    where = np.flatnonzero(states != 0)  # the survivors, kernel position by kernel position
    positive = states[where] == 2
    neg, npos = _signed(k, dt), int(np.count_nonzero(positive))
    if (neg == 0 and npos < len(where)) or (neg == count and npos):
        raise SqueezeNetError("context stream has a sign its codebook lacks")
    codes = np.empty(len(where), np.uint8)
    codes[~positive] = 1 + io.adaptive("magnitude", neg, len(where) - npos, PARAMS[params], None)
    codes[positive] = neg + 1 + io.adaptive("magnitude", count - neg, npos, PARAMS[params], None)
    io.check_end()
    states[where] = codes  # now the codes, (kh, kw, kernels)
    flat = states.reshape(kh * kw, n).T
    parts = {f"{part}_bits": b for part, b in zip(PARTS, (-np.diff([*spent, 0])).tolist(), strict=True)}
    return np.ascontiguousarray(flat).reshape(shape), np.concatenate([[0.0], values]).astype(np.float32), parts
