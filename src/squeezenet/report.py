"""`squeezenet reproduce`: a Markdown report (with PNG plots) setting what this machine computes beside the paper.

Each section is a function `(out_dir) -> markdown`; sections that need data or results add themselves when those
exist, so the report always runs, in seconds, with nothing but the package.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from . import paper  # noqa: E402
from .atomic import atomic_path, write_text  # noqa: E402
from .registry import create_model  # noqa: E402
from .summary import summarize  # noqa: E402


def _params(name: str, **kw) -> int:
    return sum(p.numel() for p in create_model(name, **kw).parameters())


def _mb(params: int) -> float:
    return params * 4 / 1e6


def _md_table(head: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _savefig(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def section_table1(out: Path) -> str:
    """Table 1: per layer dims (at 227, the size the printed dims imply), parameters and MACs (at 224)."""
    model = create_model("squeezenet1_0")
    at227 = {r["name"]: r for r in summarize(model, 227)["layers"]}
    at224 = summarize(model, 224)
    rows, all_match = [], True
    for r in at224["layers"]:
        p_out, p_params, _, _ = paper.TABLE1[r["name"]]
        h, w, c = at227[r["name"]]["output"]
        ours_out = f"{h}x{w}x{c}"
        match = ours_out == p_out and (p_params is None or p_params == r["params"])
        all_match &= match
        rows.append([r["name"], ours_out, p_out, r["filter"], r["s1x1"] or "", r["e1x1"] or "", r["e3x3"] or "",
                     f"{r['params']:,}", f"{p_params:,}" if p_params else "", f"{r['macs'] / 1e6:.1f}",
                     "yes" if match else "**no**"])
    t = at224["total"]
    rows.append(["total", "", "", "", "", "", "", f"{t['params']:,}", f"{paper.TABLE1_TOTAL[0]:,}",
                 f"{t['macs'] / 1e6:.1f}", "yes" if t["params"] == paper.TABLE1_TOTAL[0] else "**no**"])
    table = _md_table(["layer", "output (ours, 227 input)", "output (paper)", "filter/stride", "s1x1", "e1x1",
                       "e3x3", "params (ours)", "params (paper)", "MMACs at 224 (ours)", "match"], rows)
    return (f"## Table 1: SqueezeNet v1.0, layer by layer\n\n{table}\n\n"
            f"Every row matches: **{'yes' if all_match else 'no'}**. MACs at 224x224: "
            f"{t['macs'] / 1e6:.1f} M (paper: {paper.MACS_224['squeezenet1_0'] / 1e6:.1f} M). The printed output "
            f"sizes (111x111 after conv1) are those of a 227x227 input, the crop the released Caffe models use; at "
            f"224 conv1 gives 109x109. fp32 size: {t['bytes_fp32']:,} bytes.\n")


def section_v1_1(out: Path) -> str:
    s0, s1 = summarize(create_model("squeezenet1_0"))["total"], summarize(create_model("squeezenet1_1"))["total"]
    rows = [["v1.0", f"{s0['params']:,}", "1,248,424", f"{s0['macs'] / 1e6:.1f}", "818.9"],
            ["v1.1", f"{s1['params']:,}", f"{paper.V1_1_PARAMS:,}", f"{s1['macs'] / 1e6:.1f}", "349.2"]]
    head = ["version", "params (ours)", "params (DeepScale)", "MMACs at 224 (ours)", "MMACs (reference)"]
    return ("## SqueezeNet v1.1\n\nconv1 becomes 64 filters of 3x3/2 and the pools move after conv1, fire3 and "
            "fire5.\n\n" + _md_table(head, rows)
            + f"\n\nComputation ratio v1.0 / v1.1: **{s0['macs'] / s1['macs']:.2f}x** (DeepScale: "
              f"{paper.V1_1_COMPUTE_SAVING}x) at {s1['params'] / s0['params']:.3f}x the parameters.\n")


def section_bypass(out: Path) -> str:
    rows = []
    for kind, (top1, top5, mb) in paper.TABLE3.items():
        n = _params("squeezenet1_0", bypass=kind)
        rows.append([kind, f"{n:,}", f"{_mb(n):.2f}", f"{mb}", f"{top1} / {top5}"])
    return ("## Table 3: bypass variants (sizes)\n\n"
            + _md_table(["variant", "params (ours)", "fp32 MB (ours)", "fp32 MB (paper)", "paper top-1 / top-5"],
                        rows)
            + "\n\nSimple bypass adds no parameter. Complex bypass adds four 1x1 shortcut convolutions (around fire2, "
              "4, 6, 8): our count is exact for the architecture as described; the paper's 7.7 MB does not follow "
              "from it. Accuracy needs training: see the design-space exploration when its results exist.\n")


def section_sweeps(out: Path) -> str:
    """Figure 3's x axis: model size along the SR and pct3x3 sweeps."""
    sr_vals = sorted(paper.SR_PARAMS)
    sr_params = [_params("squeezenet1_0", sr=v) for v in sr_vals]
    pct_params = [_params("squeezenet1_0", sr=0.5, pct3x3=v) for v in paper.PCT3X3_VALUES]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].plot(sr_vals, [_mb(n) for n in sr_params], "o-", label="ours (fp32 MB)")
    axes[0].plot(sr_vals, [_mb(paper.SR_PARAMS[v]) for v in sr_vals], "x--", label="paper's parameter counts")
    axes[0].set(xlabel="squeeze ratio SR", ylabel="model size (MB, fp32)", title="(a) SR sweep, pct3x3 = 0.5")
    axes[1].plot(paper.PCT3X3_VALUES, [_mb(n) for n in pct_params], "o-", label="ours (fp32 MB)")
    axes[1].plot([paper.PCT3X3_VALUES[0], paper.PCT3X3_VALUES[-1]], paper.PCT3X3_SIZE_MB, "x", ms=10,
                 label="paper's axis ends")
    axes[1].set(xlabel="pct3x3", ylabel="model size (MB, fp32)", title="(b) pct3x3 sweep, SR = 0.5")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    _savefig(fig, out / "figure3_sizes.png")
    rows_sr = [[v, f"{n:,}", f"{paper.SR_PARAMS[v] / 1e6:.2f} M", f"{_mb(n):.2f}"]
               for v, n in zip(sr_vals, sr_params, strict=True)]
    rows_pct = [[v, f"{n:,}", f"{_mb(n):.2f}"] for v, n in zip(paper.PCT3X3_VALUES, pct_params, strict=True)]
    return ("## Figure 3: model size along the metaparameter sweeps\n\n![sizes](figure3_sizes.png)\n\n"
            + _md_table(["SR", "params (ours)", "params (paper)", "fp32 MB"], rows_sr) + "\n\n"
            + _md_table(["pct3x3 (SR 0.5)", "params (ours)", "fp32 MB"], rows_pct)
            + f"\n\nThe pct3x3 sweep spans {_mb(pct_params[0]):.1f} to {_mb(pct_params[-1]):.1f} MB (paper: "
              f"{paper.PCT3X3_SIZE_MB[0]} to {paper.PCT3X3_SIZE_MB[1]} MB). The SR sweep's parameter counts match the "
              f"paper's text. The paper's size axis tops out at {paper.SR_SIZE_MB[1]:.0f} MB, the size of SR 0.75 "
              f"({_mb(sr_params[3]):.1f} MB here); SR 1.0 is {_mb(sr_params[4]):.1f} MB in fp32.\n")


SECTIONS: list[Callable[[Path], str]] = [section_table1, section_v1_1, section_bypass, section_sweeps]


def write_report(out: str | Path = "report") -> Path:
    """Write `out/README.md` (and its PNGs); return its path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    parts = ["# SqueezeNet, reproduced\n\nWritten by `squeezenet reproduce`: every figure below is computed by "
             "this package on this machine, set beside the paper's printed value.\n"]
    parts += [section(out) for section in SECTIONS]
    path = out / "README.md"
    write_text(path, "\n".join(parts))
    return path
