"""The report's section on the C engine (`squeezenet export --format c`), from `benchmarks/c_engine.py`'s JSON
(results/benchmarks/c_engine.json) and its figure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def _kb(n) -> str:
    return f"{n / 1024:,.1f} KB" if isinstance(n, (int, float)) else "does not fit"


def _pct(x) -> str:
    return f"{100 * x:.2f}%" if isinstance(x, (int, float)) else ""


def _ms(q: dict) -> str:
    ms = q.get("ms", {})
    m4, m7 = ms.get("cortex_m4_168mhz"), ms.get("cortex_m7_216mhz")
    return (f"{q['instructions_per_image'] / 1e6:,.0f} M instructions; {m4[0]:,.0f}-{m4[1]:,.0f} ms at 168 MHz (M4), "
            f"{m7[0]:,.0f}-{m7[1]:,.0f} ms at 216 MHz (M7)") if m4 and m7 else ""


def _board(label: str, b: dict) -> list[list[str]]:
    if not b:
        return []
    if "error" in b:
        return [[f"firmware, {label}", b["error"]]]
    q = b.get("qemu", {})
    rows = [[f"firmware, {label}: flash / RAM (.data + .bss + stack)", f"{b['flash']:,} / {b['ram']:,} B "
             f"(arena {b['arena']:,} B, {b['stages_streamed']} stages streamed)"]]
    if q:
        rows += [[f"firmware, {label}: QEMU, same top-1 as the host / stack used",
                  f"{q['same_top1_as_host']} of {q['images']} images / {q['stack_used']:,} B"],
                 [f"firmware, {label}: per image", _ms(q)]]
    return rows


def _tflm(t: dict) -> list[list[str]]:
    if not t:
        return []
    if "error" in t:
        return [["TensorFlow Lite Micro", t["error"]]]
    c = t.get("compressed") or {}
    return [["TFLM, same int8 network: .tflite bytes / smallest arena",
             f"{t['model_bytes']:,} / {t['arena_bytes']:,} B"],
            ["TFLM: top-1 agreement with the C engine (disagreements at an int8 tie)",
             f"{_pct(t['agreement'])} of {t['images']:,} ({t['disagreements'] - t['tied_disagreements']} not tied)"],
            ["TFLM with its LUT weight compression: bytes / arena",
             f"{c['model_bytes']:,} / {c['arena_bytes']:,} B" if c else t.get("compressed_reason", "")]]


def _rows(name: str, m: dict) -> list[list[str]]:
    plans, mem, speed = m["plans"], m["memory"], m["speed"]
    acc, fw = m.get("accuracy", {}), m.get("firmware", {})
    rows = [["file (`.sqz`, entropy coded) / weights at fixed width", f"{m['file_bytes']:,} / "
             f"{mem['weights_fixed_width']:,} B"],
            ["arena: layer by layer / streamed row by row (smallest) / the plan for 256 KB",
             f"{plans['layers']['arena']:,} / {plans['stream']['arena']:,} / {plans['fit_256k']['arena']:,} B"],
            ["MACs: layer by layer / streamed", f"{plans['layers']['macs']:,} / {plans['stream']['macs']:,}"],
            ["dense int8 runtime (TFLite Micro style): weights / arena",
             f"{_kb(mem['dense_int8_weights'])} / {_kb(plans['dense_int8_runtime']['arena'])}"]]
    rows += _board("fits 256 KB", fw.get("fit_256k", {})) + _board("smallest", fw.get("stream", {}))
    rows += _board("smallest, dense int8 weights", fw.get("stream_dense_int8", {}))
    if "decoding_share_of_instructions" in fw:
        rows.append(["share of the streamed firmware's instructions spent decoding the weights",
                     _pct(fw["decoding_share_of_instructions"])])
    rows += [["host, ms per image: C engine / ORT int8 / ORT fp32 (1 thread)",
              " / ".join(f"{speed[k]['ms_per_image']:.2f}" for k in ("c engine", "onnxruntime int8",
                                                                      "onnxruntime fp32"))]]
    if acc:
        rows += [[f"top-1 on {m['data']} ({acc['images']:,} images): C engine / fp32 / ORT int8",
                  f"{_pct(acc['top1_c_engine'])} / {_pct(acc['top1_fp32'])} / {_pct(acc['top1_onnxruntime_int8'])}"],
                 ["host: streamed scores equal to layer by layer / to the integer reference",
                  f"{acc['streamed_scores_identical_to_layer_by_layer']:,} / "
                  f"{acc['scores_identical_to_reference']:,} of {acc['images']:,}"]]
    rows += _tflm(m.get("tflm", {}))
    return [[f"{name} ({m['image_size']} px)", *rows[0]]] + [["", *r] for r in rows[1:]]


def section_c_engine(out: Path, results: Path) -> str:
    path = results / "benchmarks" / "c_engine.json"
    if not path.is_file():
        return ""
    r = json.loads(path.read_text())
    rows = [row for name, m in r["models"].items() if "plans" in m for row in _rows(name, m)]  # this format's
    table = "\n".join("| " + " | ".join(x) + " |" for x in [["model", "figure", "value"], ["---"] * 3, *rows])
    figure = ""
    if path.with_suffix(".png").is_file():
        shutil.copyfile(path.with_suffix(".png"), out / "c_engine.png")
        figure = "\n\n![C engine](c_engine.png)"
    return ("## The compressed model run as it is: a C engine\n\n`squeezenet export WEIGHTS --format c` writes a "
            "C99 library that keeps the weights as Deep Compression stores them (per layer an int8 codebook, "
            "fixed-width codes and a relative index, decoded inside the convolution loops, zeros skipped) and runs "
            "8-bit activations in one statically planned arena, its first layers streamed row by row where the RAM "
            "budget asks for it; measured by `benchmarks/c_engine.py` "
            f"(host build `{r['host_flags']}`, Cortex-M4 `{r['arm_flags']}`, firmware under `{r.get('qemu', '')}`; "
            "ms from instruction counts at the cycles per instruction in the benchmark's CPI).\n\n" + table
            + figure + "\n")
