"""Deep Compression's storage stage: sparse relative index, then entropy coding of each integer stream.

A quantized layer is a flat array of codes (0 = pruned). `sparse_index` turns it into two streams of equal length,
the codes of the stored entries and the gaps before them (Han et al.'s relative index, with filler entries bridging
gaps too long for the field). Each stream is then written by whichever coder gives the fewest bytes: fixed-width
bits, canonical Huffman (lengths table in nibbles) or rANS from `constriction` (6-bit log-scale frequency table),
so Huffman's 20-30% gain of the paper is kept and the entropy coder's extra few percent come on top.

Decoders treat their input as untrusted: every count is checked against the payload before anything is allocated,
and a bad stream raises `SqueezeNetError`.
"""

from __future__ import annotations

import heapq

import constriction
import numpy as np

from squeezenet.errors import ConfigError, SqueezeNetError

RAW, HUFFMAN, ANS = 0, 1, 2


CODERS = {"raw": RAW, "huffman": HUFFMAN, "ans": ANS}


ANS_TABLE_BITS, ANS_STEPS = 6, 4


ANS_LEVELS = (1 << ANS_TABLE_BITS) - 1


MAX_CODE_LEN = 15  # Huffman lengths fit a nibble; also bounds the decoder's lookup table to 2^15 entries


HUFFMAN_SEGMENT = 1 << 13  # payload bytes decoded per step


def sparse_index(codes: np.ndarray, gap_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(entry codes, gaps): the non-zero codes of a flat array and the zeros skipped before each.

    A run of zeros longer than 2^gap_bits - 1 is bridged by filler entries (gap = max, code 0), as in the paper.
    """
    if not 1 <= gap_bits <= 16:
        raise ConfigError(f"gap_bits must be in 1..16, got {gap_bits}")
    span = 1 << gap_bits
    pos = np.flatnonzero(codes)
    gap = np.diff(pos, prepend=-1) - 1
    fillers = gap // span
    n = len(pos) + int(fillers.sum())
    where = np.arange(len(pos)) + np.cumsum(fillers)  # index of each real entry among all entries
    entry_codes = np.zeros(n, dtype=codes.dtype)
    entry_gaps = np.full(n, span - 1, dtype=np.int64)
    entry_codes[where] = codes[pos]
    entry_gaps[where] = gap % span
    return entry_codes, entry_gaps


def dense_from_index(entry_codes: np.ndarray, gaps: np.ndarray, numel: int) -> np.ndarray:
    """Inverse of `sparse_index`; raises when the gaps point past the tensor."""
    pos = np.cumsum(gaps.astype(np.int64) + 1) - 1
    if len(pos) and pos[-1] >= numel:
        raise SqueezeNetError(f"sparse index points past the tensor ({int(pos[-1])} >= {numel})")
    out = np.zeros(numel, dtype=np.uint8)
    out[pos] = entry_codes
    return out


def width_of(alphabet: int) -> int:
    return max(1, int(alphabet - 1).bit_length())


def pack_bits(values: np.ndarray, width: int) -> bytes:
    bits = (values.astype(np.uint32)[:, None] >> np.arange(width, dtype=np.uint32)) & 1
    return np.packbits(bits.astype(np.uint8).ravel(), bitorder="little").tobytes()


def unpack_bits(data: bytes, width: int, count: int) -> np.ndarray:
    if len(data) != (count * width + 7) // 8:
        raise SqueezeNetError(f"fixed-width stream has {len(data)} bytes, expected {(count * width + 7) // 8}")
    bits = np.unpackbits(np.frombuffer(data, np.uint8), count=count * width, bitorder="little")
    return bits.reshape(count, width).astype(np.int64) @ (1 << np.arange(width, dtype=np.int64))


def huffman_lengths(counts: np.ndarray, max_len: int = MAX_CODE_LEN) -> np.ndarray:
    """Optimal code lengths, limited to `max_len` by halving the counts until the tree is shallow enough."""
    counts = np.asarray(counts, dtype=np.int64)
    used = np.flatnonzero(counts)
    lengths = np.zeros(len(counts), dtype=np.int64)
    if len(used) <= 1:
        lengths[used] = 1
        return lengths
    c = counts.copy()
    while True:
        heap = [(int(c[s]), int(s), (int(s),)) for s in used]  # (weight, tiebreak, leaves under the node)
        heapq.heapify(heap)
        depth = dict.fromkeys(used.tolist(), 0)
        while len(heap) > 1:
            w1, t1, a = heapq.heappop(heap)
            w2, t2, b = heapq.heappop(heap)
            for s in a + b:
                depth[s] += 1
            heapq.heappush(heap, (w1 + w2, min(t1, t2), a + b))
        if max(depth.values()) <= max_len:
            lengths[list(depth)] = list(depth.values())
            return lengths
        c[used] = np.maximum(1, c[used] >> 1)


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """Canonical code words: by (length, symbol), each code the previous plus one, shifted at a length change."""
    codes = np.zeros(len(lengths), dtype=np.int64)
    code, prev = 0, 0
    for s in sorted(np.flatnonzero(lengths).tolist(), key=lambda s: (lengths[s], s)):
        code <<= int(lengths[s]) - prev
        codes[s], prev = code, int(lengths[s])
        code += 1
    return codes


def huffman_encode(symbols: np.ndarray, alphabet: int) -> bytes:
    """Table (one nibble per symbol: its code length, 0 = unused) then the code words, MSB first."""
    lengths = huffman_lengths(np.bincount(symbols, minlength=alphabet))
    table = pack_bits(lengths, 4)
    codes, lens = canonical_codes(lengths)[symbols], lengths[symbols]
    shifts = np.arange(MAX_CODE_LEN - 1, -1, -1)
    bits = (codes[:, None] >> np.maximum(0, shifts - (MAX_CODE_LEN - lens[:, None]))) & 1
    keep = np.arange(MAX_CODE_LEN)[None, :] < lens[:, None]
    return table + np.packbits(bits[keep].astype(np.uint8)).tobytes()


def huffman_decode(data: bytes, count: int, alphabet: int) -> np.ndarray:
    """Table lookup at every bit position of a segment, then a walk along the chain of code starts."""
    nt = (alphabet * 4 + 7) // 8
    if len(data) < nt:
        raise SqueezeNetError("Huffman stream shorter than its table")
    lengths = unpack_bits(data[:nt], 4, alphabet)
    payload = np.frombuffer(data, np.uint8, offset=nt)
    if not lengths.any() or (np.exp2(-lengths[lengths > 0].astype(float))).sum() > 1 + 1e-12:
        raise SqueezeNetError("Huffman table is not a prefix code")
    if count > 8 * len(payload):
        raise SqueezeNetError(f"Huffman stream too short for {count} symbols")
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    L = int(lengths.max())
    sym_of = np.zeros(1 << L, dtype=np.int64)
    len_of = np.zeros(1 << L, dtype=np.int64)  # 0: no code word starts with these bits
    for s, (c, n) in enumerate(zip(canonical_codes(lengths).tolist(), lengths.tolist(), strict=True)):
        if n:
            lo = c << (L - n)
            sym_of[lo:lo + (1 << (L - n))] = s
            len_of[lo:lo + (1 << (L - n))] = n
    nbits = 8 * len(payload)
    padded = np.concatenate([payload, np.zeros(3, np.uint8)]).astype(np.int64)
    symbols: list[int] = []
    append, p, invalid = symbols.append, 0, 1 << 40
    for lo in range(0, len(payload), HUFFMAN_SEGMENT):  # segments bound the memory to O(segment), not O(stream)
        hi = min(lo + HUFFMAN_SEGMENT, len(payload))
        w24 = (padded[lo:hi] << 16) | (padded[lo + 1:hi + 1] << 8) | padded[lo + 2:hi + 2]
        window = ((w24[:, None] >> (24 - L - np.arange(8))) & ((1 << L) - 1)).ravel()
        step = len_of[window]
        nxt = np.arange(len(window)) + step  # relative to the segment; past its end ends the inner loop
        nxt[(step == 0) | (nxt + 8 * lo > nbits)] = invalid  # no code word here, or one running past the end
        nxt, sym, q = nxt.tolist(), sym_of[window].tolist(), p - 8 * lo
        try:
            for _ in range(count - len(symbols)):
                append(sym[q])
                q = nxt[q]
        except IndexError:  # the chain left the segment (or hit an invalid position)
            pass
        p = 8 * lo + q
        if len(symbols) == count or p > nbits:
            break
    if len(symbols) < count or p > nbits:
        raise SqueezeNetError("Huffman stream is corrupt")
    return np.asarray(symbols, dtype=np.int64)


def _ans_model(table: np.ndarray):
    probs = np.where(table > 0, np.exp2((table.astype(np.float64) - ANS_LEVELS) / ANS_STEPS), 0.0)
    return constriction.stream.model.Categorical(probs, perfect=False)


def ans_encode(symbols: np.ndarray, alphabet: int) -> bytes:
    """Table (6 bits per symbol: 63 + 4*log2(p/p_max), 0 = unused) then the rANS words.

    A quarter-octave frequency grid costs ~0.002 bit per symbol against exact counts, and keeps the table
    within 1.5x of Huffman's nibbles, which matters for the many short streams of a small network.
    """
    counts = np.bincount(symbols, minlength=alphabet).astype(np.float64)
    table = np.zeros(alphabet, dtype=np.int64)
    used = counts > 0
    table[used] = np.clip(np.round(ANS_LEVELS + ANS_STEPS * np.log2(counts[used] / counts.max())), 1, ANS_LEVELS)
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(symbols.astype(np.int32), _ans_model(table))
    return pack_bits(table, ANS_TABLE_BITS) + coder.get_compressed().astype("<u4").tobytes()


def ans_decode(data: bytes, count: int, alphabet: int) -> np.ndarray:
    nt = (alphabet * ANS_TABLE_BITS + 7) // 8
    if len(data) < nt or (len(data) - nt) % 4:
        raise SqueezeNetError("ANS stream has a bad length")
    table = unpack_bits(data[:nt], ANS_TABLE_BITS, alphabet)
    words = np.frombuffer(data, "<u4", offset=nt).astype(np.uint32)
    if not table.any():
        raise SqueezeNetError("ANS table is empty")
    try:
        out = constriction.stream.stack.AnsCoder(words).decode(_ans_model(table), count)
    except ValueError as e:
        raise SqueezeNetError(f"ANS stream is corrupt: {e}") from None
    return out


def encode_stream(symbols: np.ndarray, alphabet: int, coders: tuple[str, ...] = ("raw", "huffman", "ans")) -> bytes:
    """One byte naming the coder, then its payload; the smallest of `coders` is kept."""
    symbols = np.asarray(symbols, dtype=np.int64)
    if len(symbols) and (symbols.min() < 0 or symbols.max() >= alphabet):
        raise ConfigError(f"symbols must lie in 0..{alphabet - 1}")
    out = []
    for name in coders:
        if name not in CODERS:
            raise ConfigError(f"unknown coder {name!r}; choose from {', '.join(CODERS)}")
        if name == "raw":
            out.append(bytes([RAW]) + pack_bits(symbols, width_of(alphabet)))
        elif len(symbols):  # the entropy coders need at least one symbol for their tables
            enc = huffman_encode if name == "huffman" else ans_encode
            out.append(bytes([CODERS[name]]) + enc(symbols, alphabet))
    if not out:
        out.append(bytes([RAW]))
    return min(out, key=len)


def decode_stream(data: bytes, count: int, alphabet: int) -> np.ndarray:
    """Inverse of `encode_stream`; `count` and `alphabet` come from the caller's validated header."""
    if not data:
        raise SqueezeNetError("empty stream")
    coder, body = data[0], data[1:]
    if coder == RAW:
        return unpack_bits(body, width_of(alphabet), count)
    if coder == HUFFMAN:
        return huffman_decode(body, count, alphabet)
    if coder == ANS:
        return ans_decode(body, count, alphabet)
    raise SqueezeNetError(f"unknown stream coder {coder}")


def stream_coder(data: bytes) -> str:
    return {v: k for k, v in CODERS.items()}.get(data[0], "?") if data else "?"


def entropy_bits(x: np.ndarray) -> float:
    """The ideal cost in bits of coding `x` with its own symbol frequencies."""
    if not len(x):
        return 0.0
    p = np.bincount(x) / len(x)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum() * len(x))


def choose_gap_bits(codes: np.ndarray, bits: int, widths: tuple[int, ...]) -> int:
    """The relative-index width among `widths` (0: dense, no index) with the fewest estimated bits: the entropy
    of the codes and gaps streams plus their tables."""
    best, best_cost = 0, entropy_bits(codes) + 8 * (1 << bits)
    for g in (w for w in widths if w):
        c, d = sparse_index(codes, g)
        cost = entropy_bits(c) + entropy_bits(d) + 8 * ((1 << bits) + (1 << g)) + 32
        if cost < best_cost:
            best, best_cost = g, cost
    return best
