"""The records of a .sqz file's quantized tensors, and the cursor that reads a file's untrusted bytes.

Two layouts, the smaller kept per layer: version 1's streams (entry codes and relative-index gaps, each by the
best of `coders.CODERS`), and version 2's context-modelled stream (`context`), whose codebook is stored in value
order, so a layer read from it has its codes renumbered by value (the weights are the same).

    streams (Q16, Q32):  u8 bits, u8 gap_bits (0 = dense), u32 entries, codebook[2^bits - 1] (fp16 or fp32),
                         u32 + codes stream, [u32 + gaps stream]
    context (C16, C32):  u8 bits, u32 + payload (`context.encode`; codebook inside, fp16 or fp32)
"""

from __future__ import annotations

import struct

import numpy as np

from squeezenet.errors import ConfigError, SqueezeNetError
from squeezenet.formats import context
from squeezenet.formats.coders import (
    CODERS,
    choose_gap_bits,
    decode_stream,
    dense_from_index,
    encode_stream,
    sparse_index,
    stream_coder,
)
from squeezenet.formats.weights import Quantized

F32, F16, Q16, Q32, I64, C16, C32 = range(7)
STREAMS, CONTEXT = {Q16: "<f2", Q32: "<f4"}, {C16: "<f2", C32: "<f4"}
DEFAULT_CODERS = (*CODERS, "context")
GAP_BITS = (0, 2, 3, 4, 5, 6, 7, 8)  # 0: dense, the index is not stored


class Reader:
    """A cursor over untrusted bytes: every read states its size and is checked against what remains."""

    def __init__(self, data: bytes, end: int) -> None:
        self.data, self.pos, self.end = memoryview(data), 0, end

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or n > self.end - self.pos:
            raise SqueezeNetError(f"truncated file: {what} needs {n:,} bytes at offset {self.pos:,}, "
                                  f"{self.end - self.pos:,} remain")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))


def _streams_record(q: Quantized, flat: np.ndarray, gap_bits: int | None, coders: tuple[str, ...],
                    dt: str) -> tuple[bytes, dict]:
    g = choose_gap_bits(flat, q.bits, GAP_BITS) if gap_bits is None else gap_bits
    if g:
        entry_codes, gaps = sparse_index(flat, g)
    else:
        entry_codes, gaps = flat, np.zeros(0, np.int64)
    book = np.asarray(q.codebook[1:], dtype=dt).tobytes()
    cs = encode_stream(entry_codes, 1 << q.bits, coders)
    out = [struct.pack("<BBBI", Q16 if dt == "<f2" else Q32, q.bits, g, len(entry_codes)), book,
           struct.pack("<I", len(cs)), cs]
    info = {"gap_bits": g, "entries": len(entry_codes), "codebook_bytes": len(book), "codes_bytes": len(cs),
            "codes_coder": stream_coder(cs), "index_bytes": 0, "index_coder": ""}
    if g:
        gs = encode_stream(gaps, 1 << g, coders)
        out += [struct.pack("<I", len(gs)), gs]
        info |= {"index_bytes": len(gs), "index_coder": stream_coder(gs)}
    return b"".join(out), info


def _context_info(nbytes: int, bits: dict) -> dict:
    """A context record's bytes shared out as the streams' are: codebook, index (the states: which weights are
    kept, and their signs), codes (the magnitudes and the record's header)."""
    book, index = round(bits.get("codebook_bits", 0) / 8), round(bits.get("states_bits", 0) / 8)
    return {"gap_bits": 0, "codebook_bytes": book, "index_bytes": index, "codes_bytes": nbytes - book - index,
            "codes_coder": "context", "index_coder": "context"} | bits


def write(q: Quantized, gap_bits: int | None, coders: tuple[str, ...], codebook_dtype: str) -> tuple[bytes, dict]:
    """The smallest record of `coders` (stream coders and/or "context") for a quantized tensor, and its costs."""
    unknown = set(coders) - set(DEFAULT_CODERS)
    if unknown or not coders:
        raise ConfigError(f"unknown coder {sorted(unknown)[0] if unknown else 'list'!r}; choose from "
                          f"{', '.join(DEFAULT_CODERS)}")
    flat = np.ascontiguousarray(q.codes).reshape(-1)
    dt = "<f2" if codebook_dtype == "f16" else "<f4"
    options = []
    streams = tuple(c for c in coders if c != "context")
    if streams:
        options.append(_streams_record(q, flat, gap_bits, streams, dt))
    if "context" in coders:
        payload, bits = context.encode(np.asarray(q.codes), q.codebook, q.bits, dt)
        rec = struct.pack("<BBI", C16 if dt == "<f2" else C32, q.bits, len(payload)) + payload
        options.append((rec, _context_info(len(rec), bits) | {"entries": len(flat)}))
    rec, info = min(options, key=lambda o: len(o[0]))
    return rec, {"kind": "quantized", "bits": q.bits, "nonzero": int(np.count_nonzero(flat))} | info


def _stream(r: Reader, count: int, alphabet: int, what: str) -> tuple[np.ndarray, int, str]:
    (n,) = r.unpack("<I", what)
    data = bytes(r.take(n, what))
    return decode_stream(data, count, alphabet), n, stream_coder(data)


def _read_streams(r: Reader, kind: int, name: str, shape: tuple[int, ...]) -> tuple[Quantized, dict]:
    numel = int(np.prod(shape, dtype=np.int64))
    bits, g, entries = r.unpack("<BBI", f"{name} layer header")
    if not 1 <= bits <= 8 or g not in GAP_BITS or entries > numel or (g == 0 and entries != numel):
        raise SqueezeNetError(f"{name}: bad layer header (bits={bits}, gap_bits={g}, entries={entries:,} "
                              f"for {numel:,} weights)")
    dt = STREAMS[kind]
    book = np.frombuffer(r.take(((1 << bits) - 1) * np.dtype(dt).itemsize, f"{name} codebook"), dt)
    if not np.isfinite(book).all():
        raise SqueezeNetError(f"{name}: non-finite codebook")
    codes, nc, cc = _stream(r, entries, 1 << bits, f"{name} codes")
    info = {"bits": bits, "gap_bits": g, "entries": entries, "codebook_bytes": book.nbytes, "codes_bytes": nc,
            "codes_coder": cc, "index_bytes": 0, "index_coder": ""}
    if g:
        gaps, ng, gc = _stream(r, entries, 1 << g, f"{name} index")
        flat = dense_from_index(codes, gaps, numel)
        info |= {"index_bytes": ng, "index_coder": gc}
    else:
        flat = codes.astype(np.uint8)
    table = np.concatenate([[0.0], book.astype(np.float32)]).astype(np.float32)
    return Quantized(flat.reshape(shape), table, bits), info


def read(r: Reader, kind: int, name: str, shape: tuple[int, ...]) -> tuple[Quantized, dict]:
    """A quantized tensor's record after its kind byte; raises SqueezeNetError naming the tensor."""
    start = r.pos - 1
    if kind in STREAMS:
        q, info = _read_streams(r, kind, name, shape)
    else:
        bits, n = r.unpack("<BI", f"{name} layer header")
        if not 1 <= bits <= 8:
            raise SqueezeNetError(f"{name}: bad layer header (bits={bits})")
        payload = bytes(r.take(n, f"{name} context stream"))
        try:
            codes, table, parts = context.decode(payload, shape, bits, CONTEXT[kind])
        except SqueezeNetError as e:
            raise SqueezeNetError(f"{name}: {e}") from None
        q = Quantized(codes, table, bits)
        info = {"bits": bits, "entries": codes.size} | _context_info(r.pos - start, parts)
    return q, {"kind": "quantized", "nonzero": int(np.count_nonzero(q.codes))} | info
