"""Sizes as the paper counts them (Table 1's right half, Table 2's reduction) and their printed table.

fp32 weights are 4 bytes each (pruned: the non-zeros plus a 4-bit relative index); a `.sqz` is its file's bytes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from squeezenet.compression.options import Result
from squeezenet.compression.prune import (
    paper_names,
)
from squeezenet.compression.quantize import quantizable
from squeezenet.formats import sqz as sqzformat
from squeezenet.formats.weights import Weights
from squeezenet.models.registry import create_model
from squeezenet.models.squeezenet import SqueezeNet
from squeezenet.models.summary import fp32_bytes


def alexnet_fp32_bytes() -> int:
    """AlexNet's size in fp32 (the paper's 240 MB), the denominator of Table 2's "reduction" column."""
    with torch.device("meta"):
        return fp32_bytes(create_model("alexnet"))


def fp32_layers(model: nn.Module, sparse: bool) -> list[dict]:
    """Per tensor, what fp32 storage costs: weights dense, or (`sparse`: pruned) their non-zeros plus a 4-bit
    relative index (fillers ignored); biases and buffers dense."""
    weights = set(quantizable(model))
    rows = []
    for name, p in model.state_dict().items():
        row = {"name": name, "shape": list(p.shape), "numel": p.numel()}
        if name in weights:
            nz = int(torch.count_nonzero(p)) if sparse else p.numel()
            index = math.ceil(nz / 2) if sparse else 0
            row |= {"kind": "fp32", "bits": 32, "nonzero": nz, "codebook_bytes": 0, "codes_bytes": 4 * nz,
                    "index_bytes": index, "bytes": 4 * nz + index}
        else:
            row |= {"kind": "float32", "raw_bytes": 4 * p.numel(), "bytes": 4 * p.numel()}
        rows.append(row)
    return rows


def sparse_fp32_bytes(model: nn.Module) -> int:
    """Size after pruning alone: non-zero fp32 weights plus a 4-bit relative index (fillers ignored), dense biases."""
    return sum(row["bytes"] for row in fp32_layers(model, sparse=True))


def layer_table(result_layers: list[dict], model: nn.Module) -> list[dict]:
    """Per paper layer: parameters before/after pruning, density, bits and bytes of codebook, codes, index, bias;
    a BatchNorm is a row of its own, named after what it normalises (`norm_names`)."""
    names = paper_names(model)
    norms = model.norm_names() if isinstance(model, SqueezeNet) else {}
    rows: dict[str, dict] = {}
    for lay in result_layers:
        base = lay["name"].rsplit(".", 1)[0]
        layer = norms.get(base) or names.get(base + ".weight", base).split("/")[0]
        r = rows.setdefault(layer, {"layer": layer, "params": 0, "params_after": 0, "bits": None,
                                    "codebook_bytes": 0, "codes_bytes": 0, "index_bytes": 0, "bias_bytes": 0})
        r["params"] += lay["numel"]
        if "nonzero" in lay:  # a weight: quantized, or fp32 (`fp32_layers`)
            r["params_after"] += lay["nonzero"]
            r["bits"] = lay["bits"]
            for k in ("codebook_bytes", "codes_bytes", "index_bytes"):
                r[k] += lay[k]
        else:
            r["params_after"] += lay["numel"]
            r["bias_bytes"] += lay["raw_bytes"]
    for r in rows.values():
        r["density"] = r["params_after"] / r["params"]
        r["bytes"] = r["codebook_bytes"] + r["codes_bytes"] + r["index_bytes"] + r["bias_bytes"]
    return list(rows.values())


def report(result: Result) -> dict:
    """The JSON of `squeezenet compress --json`: layers, total_bytes, stages and the reductions."""
    rep = _report(result.weights, result.layers, result.bytes, result.stages)
    return rep | {"format": "sqz" if result.data is not None else "fp32"}


def file_report(data: bytes) -> dict:
    """The same table for an existing .sqz file (what `summary --weights model.sqz` prints)."""
    d = sqzformat.decode(data)
    return _report(d.weights, d.layers, len(data), [])


def _report(weights: Weights, layers: list[dict], total: int, stages: list[dict]) -> dict:
    model = weights.build()
    # against the input's fp32 (stage 0), which SVD makes differ from the result's architecture
    fp32 = stages[0]["bytes"] if stages else fp32_bytes(model)
    return {"layers": layer_table(layers, model), "total_bytes": total, "fp32_bytes": fp32, "vs_fp32": fp32 / total,
            "stages": stages, "format": "sqz"}


def _aligned(rows: list[list[str]]) -> list[str]:
    """Columns two spaces apart, each as wide as its widest cell: names left-aligned, figures right-aligned, so
    that a column's figures all end at the same offset."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)])
            for r in rows]


LAYER_KEYS = ("params", "params_after", "codebook_bytes", "codes_bytes", "index_bytes", "bias_bytes", "bytes")


def _layer_cells(name: str, r: dict, bits: str) -> list[str]:
    p, after, book, codes, index, bias, size = (f"{r[k]:,}" for k in LAYER_KEYS)
    return [name, p, after, f"{r['params_after'] / r['params']:.1%}", bits, book, codes, index, bias, size]


def format_report(rep: dict) -> str:
    """The per-layer table, the file's size against fp32, and the size after every stage (with its score)."""
    head = ["layer", "params", "after", "density", "bits", "codebook", "codes", "index", "bias", "bytes"]
    total = {k: sum(r[k] for r in rep["layers"]) for k in LAYER_KEYS}
    lines = _aligned([head, *(_layer_cells(r["layer"], r, str(r["bits"] or "")) for r in rep["layers"]),
                     _layer_cells("total", total, "")])
    rule = "-" * len(lines[0])
    lines = [lines[0], rule, *lines[1:-1], rule, lines[-1],
             ("file: {:,} bytes (header and framing included)" if rep.get("format", "sqz") == "sqz" else
              "fp32: {:,} bytes as the paper counts them (4 a weight; pruned: non-zeros plus a 4-bit index)").format(
                 rep["total_bytes"]) + f"; {rep['vs_fp32']:.1f}x smaller than fp32 ({rep['fp32_bytes']:,} bytes)"]
    if rep["stages"]:
        scored = any(s.get("score") is not None for s in rep["stages"])
        rows = [["stage", "bytes"] + (["score"] if scored else [])]
        for s in rep["stages"]:
            score = [f"{s['score']:.2%}" if s.get("score") is not None else ""] if scored else []
            rows.append([s["stage"], f"{s['bytes']:,}", *score])
        lines += ["", *_aligned(rows)]
    return "\n".join(lines)
