"""Sizes and encode/decode times of the .sqz coders on the authors' SqueezeNet v1.0 (ImageNet).

For the authors' 8-bit weights (re-encoded losslessly) and the same weights re-clustered to 6 bits, every coder
setting writes a file: fixed width (the authors' layout: fixed-width codes, 4-bit gaps, fp32 codebooks and
biases), Huffman only, ANS only, version 1's best stream coder, the context model only, and the default (per
layer the smaller of the context model and the best streams). Decoding is timed from bytes to a
state_dict (median of repeats), with the load meanwhile (`load_average`: was the machine idle). Results go to
results/benchmarks/compress.json.

    python benchmarks/compress.py [--repeats 7] [--out results/benchmarks/compress.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections import Counter
from pathlib import Path

import torch
from fresh import default_out
from timing import Load

import squeezenet
from squeezenet.atomic import write_text
from squeezenet.compression.quantize import quantize_model
from squeezenet.formats import sqz as sqzformat
from squeezenet.formats.deepcompression import read_net
from squeezenet.paths import authors_model_dir

SETTINGS = {
    "fixed width": dict(coders=("raw",), gap_bits=4, float_dtype="f32", codebook_dtype="f32"),
    "huffman": dict(coders=("raw", "huffman")),
    "ans": dict(coders=("raw", "ans")),
    "version 1 (best stream coder)": dict(coders=("raw", "huffman", "ans")),
    "context model": dict(coders=("context",)),
    "best (default)": dict(),
}


def timed(fn, repeats: int) -> tuple[object, float, float]:
    """Result, median wall time and median CPU time of this process (on a shared machine the CPU time is what
    the decoder costs; the wall time includes waiting for a core)."""
    wall, cpu, out = [], [], None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return out, statistics.median(wall), statistics.median(cpu)


def streams_by_coder(decoded: sqzformat.Decoded) -> dict[str, int]:
    """How many of the file's streams each coder won."""
    return dict(Counter(lay[k] for lay in decoded.layers for k in ("codes_coder", "index_coder") if lay.get(k)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", default=default_out("compress"))
    ap.add_argument("--sqz", nargs="*", default=[], help="existing .sqz files whose decoding is timed too "
                    "(e.g. the 6-bit output of `squeezenet compress`)")
    args = ap.parse_args()
    load = Load()
    torch.set_num_threads(1)
    net = authors_model_dir() / "compressed_SqueezeNet.net"
    weights = squeezenet.load(net)
    names = [k for k in weights.state_dict if k.endswith("weight")]
    q8 = {k: sqzformat.Quantized(lay.codes, lay.codebook, 8) for k, lay in zip(names, read_net(net).layers,
                                                                               strict=True)}
    q6 = quantize_model(weights.build(), 6, "optimal")
    rows = []
    for label, q, extra in [("authors 8-bit", q8, {"codebook_dtype": "f32"}),
                            ("re-clustered 6-bit (optimal)", q6, {})]:
        for setting, kw in SETTINGS.items():
            (data, _), t_enc, _ = timed(lambda q=q, kw=kw, extra=extra: sqzformat.encode(weights, q, **(extra | kw)),
                                        1)
            decoded, t_dec, c_dec = timed(lambda data=data: sqzformat.decode(data), args.repeats)
            _, t_build, _ = timed(lambda decoded=decoded: decoded.weights.build(), 3)
            coders = streams_by_coder(decoded)
            rows.append({"weights": label, "coder": setting, "bytes": len(data), "encode_s": t_enc,
                         "decode_s": t_dec, "decode_cpu_s": c_dec, "build_model_s": t_build,
                         "streams_by_coder": coders})
            print(f"{label:<30}{setting:<16}{len(data):>10,} bytes  encode {t_enc * 1e3:7.0f} ms  "
                  f"decode {t_dec * 1e3:6.1f} ms (cpu {c_dec * 1e3:6.1f})  (+ build model {t_build * 1e3:5.1f} ms)  "
                  f"{coders}")
    for f in map(Path, args.sqz):
        data = f.read_bytes()
        decoded, t_dec, c_dec = timed(lambda data=data: sqzformat.decode(data), args.repeats)
        coders = streams_by_coder(decoded)
        rows.append({"weights": f.name, "coder": "as stored", "bytes": len(data), "decode_s": t_dec,
                     "decode_cpu_s": c_dec, "streams_by_coder": coders})
        print(f"{f.name:<46}{len(data):>10,} bytes  decode {t_dec * 1e3:6.1f} ms (cpu {c_dec * 1e3:6.1f})  {coders}")
    result = {"benchmark": "compress", "source": str(net.name), "source_bytes": net.stat().st_size,
              "repeats": args.repeats, "torch_threads": 1, "machine": platform.machine(),
              "python": platform.python_version(), "load_average": load.record(), "rows": rows}
    out = Path(args.out)
    write_text(out, json.dumps(result, indent=1) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
