"""The report's rate-accuracy section: our `.sqz` files against MPEG NNC's reference encoder (NNCodec), from
`benchmarks/rate_accuracy.py`'s JSON (results/compress/rate_accuracy.json) and its figure; each file's fidelity to
the authors' 8-bit model, image by image over the sets pooled, where the JSON has it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def _row(name: str, size: int, acc: dict, sets: list[str], extra: str = "", fidelity: dict | None = None) -> list[str]:
    f = fidelity or {}
    lo, hi = f.get("paired_ci95", (0, 0))
    return ([name, f"{size:,}"] + [f"{100 * acc[s]:.2f}%" if s in acc else "" for s in sets]
            + ([f"{100 * f['agreement']:.2f}%", f"{100 * f['paired_difference']:+.2f} ({100 * lo:+.2f} to "
                f"{100 * hi:+.2f})"] if f else ["", ""]) + [extra])


def section_rate_accuracy(out: Path, results: Path) -> str:
    path = results / "compress" / "rate_accuracy.json"
    if not path.is_file():
        return ""
    r = json.loads(path.read_text())
    sets = list(r["reference"]["accuracy"])
    top1 = {k: {s: a["top1"] for s, a in v["accuracy"].items()} for k, v in (("reference", r["reference"]),
                                                                              ("lossless", r["lossless"]))}
    rows = [_row(r["reference"]["name"], r["reference"]["bytes"], top1["reference"], sets),
            _row("ours, lossless re-encoding", r["lossless"]["bytes"], top1["lossless"], sets,
                 f"{r['lossless']['decode_ms']:.0f} ms", r["lossless"].get("fidelity"))]
    rows += [_row(f"ours, {p['name']}", p["bytes"], {s: a["top1"] for s, a in p["accuracy"].items()}, sets,
                  f"{p['decode_ms']:.0f} ms", p.get("fidelity")) for p in r.get("untuned", []) + r["ours"]]
    rows += [_row(f"NNCodec QP {p['qp']} ({r['nncodec_source']})", p["bytes"], p["top1"], sets) for p in r["nncodec"]]
    head = (["file", "bytes"] + [f"top-1 {s}" for s in sets]
            + ["top-1 agreement with the 8-bit model", "paired top-1 difference, points (95% interval)", "decode"])
    table = "\n".join("| " + " | ".join(x) + " |" for x in [head, ["---"] * len(head), *rows])
    png = path.with_suffix(".png")
    figure = ""
    if png.is_file():
        shutil.copyfile(png, out / "rate_accuracy.png")
        figure = "\n\n![rate-accuracy](rate_accuracy.png)"
    recipe = ", ".join(f"{k} {v}" for k, v in r["recipe"].items())
    return ("## Rate against accuracy: ours and MPEG NNC's reference encoder\n\n"
            f"The authors' ImageNet v1.0 through one recipe ({recipe}), `{r['knob']}` varied; NNCodec's points "
            f"are {r['nncodec_source']} (`benchmarks/rate_accuracy.py`). Agreement and paired difference (exact "
            f"McNemar interval) are over the sets pooled ({r.get('fidelity_images', 0):,} images).\n\n" + table
            + figure + "\n")
