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


def _rows(name: str, m: dict) -> list[list[str]]:
    mem, speed, acc, board = m["memory"], m["speed"], m.get("accuracy", {}), m.get("qemu", {})
    m4 = mem.get("cortex_m4") if isinstance(mem.get("cortex_m4"), dict) else {}
    rows = [["file (`.sqz`, entropy coded)", f"{m['file_bytes']:,} B"],
            ["weights at fixed width (codebooks, codes, index, biases)", f"{mem['weights_fixed_width']:,} B"],
            ["Cortex-M4 flash (code + weights, `arm-none-eabi-size`)", _kb(m4.get("flash")) if m4 else
             f"does not link: {mem.get('cortex_m4', '')}"],
            ["library objects: code + weights (class names apart) / fixed-width weights",
             f"{mem['code_and_weights']:,} B ({mem['code_and_weights_over_fixed_width']:.3f}x)"
             if "code_and_weights" in mem else ""],
            ["Cortex-M4 RAM (arena + heap + stack reserved)", _kb(m4.get("ram"))],
            ["arena (lower bound)", f"{mem['arena']:,} B ({mem['arena_lower_bound']:,} B)"],
            ["stack used under QEMU", f"{m4['stack_used']:,} B" if m4 else ""],
            ["dense int8 (TFLite Micro style): weights / arena", f"{_kb(mem['dense_int8']['weights'])} / "
                                                                   f"{_kb(mem['dense_int8']['arena'])}"],
            ["ms per image: C engine / ORT int8 / ORT fp32 (1 thread)",
             " / ".join(f"{speed[k]['ms_per_image']:.2f}" for k in ("c engine", "onnxruntime int8",
                                                                     "onnxruntime fp32"))],
            ["C engine time / ORT int8's (same rounds)", f"{speed['c engine / onnxruntime int8']:.2f}x"]]
    if acc:
        rows += [[f"top-1 on {acc['data']} ({acc['images']:,} images): C engine / fp32 / ORT int8",
                  f"{_pct(acc['top1_c_engine'])} / {_pct(acc['top1_fp32'])} / {_pct(acc['top1_onnxruntime_int8'])}"],
                 ["top-1 agreement with the integer reference (scores identical)",
                  f"{_pct(acc['top1_agreement_reference'])} ({_pct(acc['scores_identical_to_reference'])})"]]
    if board:
        rows.append(["QEMU (Cortex-M4): same top-1 as the host build", f"{board['same_top1_as_host']} of "
                                                                        f"{board['images']} images"])
    return [[f"{name} ({m['image_size']} px)", *rows[0]]] + [["", *r] for r in rows[1:]]


def section_c_engine(out: Path, results: Path) -> str:
    path = results / "benchmarks" / "c_engine.json"
    if not path.is_file():
        return ""
    r = json.loads(path.read_text())
    rows = [row for name, m in r["models"].items() for row in _rows(name, m)]
    table = "\n".join("| " + " | ".join(x) + " |" for x in [["model", "figure", "value"], ["---"] * 3, *rows])
    figure = ""
    if path.with_suffix(".png").is_file():
        shutil.copyfile(path.with_suffix(".png"), out / "c_engine.png")
        figure = "\n\n![C engine](c_engine.png)"
    return ("## The compressed model run as it is: a C engine\n\n`squeezenet export WEIGHTS --format c` writes a "
            "C99 library that keeps the weights as Deep Compression stores them (per layer an int8 codebook, "
            "fixed-width codes and a relative index, decoded inside the convolution loops, zeros skipped) and runs "
            "8-bit activations in one statically planned arena; measured by `benchmarks/c_engine.py` "
            f"(host build `{r['host_flags']}`, Cortex-M4 `{r['arm_flags']}`, 1 MB flash / 256 KB RAM linker "
            "script, run under qemu-system-arm).\n\n" + table + figure + "\n")
