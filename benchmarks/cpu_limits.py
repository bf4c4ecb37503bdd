"""What bounds CPU inference here: the machine's peak MAC rate per precision, and OpenVINO's per-layer times.

The peak is cores x clock x MACs per cycle and core of the widest instruction of each kind that /proc/cpuinfo
reports: two 512-bit FMA ports (AVX-512: 2 x 16 fp32) or two 256-bit ones (AVX2: 2 x 8); VNNI's VPDPBUSD
multiplies four u8 x s8 pairs per 32-bit lane (AVX-512 VNNI: 2 x 64, AVX-VNNI: 2 x 32; plain AVX2 needs two
instructions for 32); AMX's TDPBUSD is 16x16x64 int8 MACs per 16 cycles (1024), TDPBF16PS 16x16x32 bf16 (512).
The clock is the one the kernel reports (under a hypervisor the nominal one; turbo would raise every peak alike).
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

import numpy as np

# per precision, widest first: (cpuinfo flag, MACs per cycle per core)
ISA_MACS = {
    "int8": [("amx_int8", 1024), ("avx512_vnni", 128), ("avx_vnni", 64), ("avx2", 32)],
    "bf16": [("amx_bf16", 512), ("avx512_bf16", 64)],
    "fp32": [("avx512f", 32), ("avx2", 16)],
}


def cpuinfo() -> tuple[set[str], float]:
    """The CPU's flags and its clock in GHz, from /proc/cpuinfo (empty and 0 where there is none)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return set(), 0.0
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    mhz = next((float(line.split(":", 1)[1]) for line in lines if line.startswith("cpu MHz")), 0.0)
    return set(flags), mhz / 1000


def peaks() -> dict:
    """Per precision: every instruction set found with its MACs/cycle/core and GMAC/s; `best` is the widest."""
    flags, ghz = cpuinfo()
    cores = len(os.sched_getaffinity(0))
    out: dict = {"cores": cores, "ghz": ghz, "derivation": "cores x GHz x MACs per cycle and core"}
    for precision, table in ISA_MACS.items():
        found = {isa: {"macs_per_cycle_per_core": m, "gmac_per_s": cores * ghz * m} for isa, m in table
                 if isa in flags}
        out[precision] = {"found": found, "best": next(iter(found), None)}
    return out


def peak_gmacs(peak: dict, precision: str) -> float | None:
    best = peak[precision]["best"]
    return peak[precision]["found"][best]["gmac_per_s"] if best else None


def _conv_macs(op) -> int:
    """MACs of a runtime-model Convolution: output elements x input channels x kernel (groups of one)."""
    out = [d.get_length() for d in op.get_output_partial_shape(0)]
    weights = [d.get_length() for d in op.input(1).get_partial_shape()]
    return int(np.prod(out)) * int(np.prod(weights[1:]))


def openvino_profile(model, x: np.ndarray, peak: float | None, runs: int = 15) -> dict:
    """Per-layer times of an `OvModel` on `x` (PERF_COUNT, the median of `runs`), by layer type and the slowest
    layers with their kernel and, for convolutions, MACs and GMAC/s against `peak`."""
    import openvino as ov

    model_ = model.model.clone()
    model_.reshape(list(x.shape))
    compiled = ov.Core().compile_model(model_, "CPU", model.config | {"PERF_COUNT": True, "NUM_STREAMS": 1})
    request = compiled.create_infer_request()
    request.infer({0: x})
    samples: dict[str, list[float]] = {}
    kinds: dict[str, tuple[str, str]] = {}
    for _ in range(runs):
        request.infer({0: x}, share_inputs=True)
        for p in request.profiling_info:
            samples.setdefault(p.node_name, []).append(p.real_time.total_seconds() * 1e3)
            kinds[p.node_name] = (p.node_type, p.exec_type)
    ops = {op.get_friendly_name(): op for op in compiled.get_runtime_model().get_ordered_ops()}
    layers = []
    for name, ts in samples.items():
        ms = statistics.median(ts)
        if ms <= 0:
            continue
        row = {"name": name, "type": kinds[name][0], "kernel": kinds[name][1], "ms": ms}
        op = ops.get(name)
        if op is not None and op.get_rt_info()["layerType"].astype(str) == "Convolution":
            macs = _conv_macs(op)
            row |= {"macs": macs, "gmac_per_s": macs / ms / 1e6}
            row |= {"peak_fraction": row["gmac_per_s"] / peak} if peak else {}
        layers.append(row)
    total = sum(r["ms"] for r in layers)
    by_type: dict[str, float] = {}
    for r in layers:
        by_type[r["type"]] = by_type.get(r["type"], 0.0) + r["ms"]
    layers.sort(key=lambda r: -r["ms"])
    return {"batch": len(x), "total_ms": total, "share_by_type": {k: v / total for k, v in
                                                                   sorted(by_type.items(), key=lambda kv: -kv[1])},
            "layers": [r | {"share": r["ms"] / total} for r in layers]}
