"""`squeezenet reproduce`: a Markdown report (with PNG plots) setting what this machine computes beside the paper.

Each section is a function `(out_dir, results_dir) -> markdown`. The architecture sections are computed now; the
sections on training, compression and exploration read the measured results committed under `results/` (each
with the command that produced it) and are left out when there are none, so the report runs in seconds anywhere.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import torch

from squeezenet.atomic import write_text
from squeezenet.experiments import paper
from squeezenet.experiments.c_engine_report import section_c_engine
from squeezenet.experiments.explore import plot_sweep
from squeezenet.experiments.rate_report import section_rate_accuracy
from squeezenet.models.registry import create_model
from squeezenet.models.summary import summarize
from squeezenet.plotting import save, subplots
from squeezenet.training.curves import plot_curves


def _params(name: str, **kw) -> int:
    return sum(p.numel() for p in create_model(name, **kw).parameters())


def _mb(params: int) -> float:
    return params * 4 / 1e6


def _md_table(head: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def section_table1(out: Path, results: Path) -> str:
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


def section_v1_1(out: Path, results: Path) -> str:
    s0, s1 = summarize(create_model("squeezenet1_0"))["total"], summarize(create_model("squeezenet1_1"))["total"]
    rows = [["v1.0", f"{s0['params']:,}", "1,248,424", f"{s0['macs'] / 1e6:.1f}", "818.9"],
            ["v1.1", f"{s1['params']:,}", f"{paper.V1_1_PARAMS:,}", f"{s1['macs'] / 1e6:.1f}", "349.2"]]
    head = ["version", "params (ours)", "params (DeepScale)", "MMACs at 224 (ours)", "MMACs (reference)"]
    return ("## SqueezeNet v1.1\n\nconv1 becomes 64 filters of 3x3/2 and the pools move after conv1, fire3 and "
            "fire5.\n\n" + _md_table(head, rows)
            + f"\n\nComputation ratio v1.0 / v1.1: **{s0['macs'] / s1['macs']:.2f}x** (DeepScale: "
              f"{paper.V1_1_COMPUTE_SAVING}x) at {s1['params'] / s0['params']:.3f}x the parameters.\n")


def section_bypass(out: Path, results: Path) -> str:
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


def section_sweeps(out: Path, results: Path) -> str:
    """Figure 3's x axis: model size along the SR and pct3x3 sweeps."""
    sr_vals = sorted(paper.SR_PARAMS)
    sr_params = [_params("squeezenet1_0", sr=v) for v in sr_vals]
    pct_params = [_params("squeezenet1_0", sr=0.5, pct3x3=v) for v in paper.PCT3X3_VALUES]
    fig, axes = subplots(1, 2, figsize=(10, 3.8))
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
    save(fig, out / "figure3_sizes.png")
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


def _ratio(x: float) -> str:
    return f"{x:.1f}x" if x < 10 else f"{x:.0f}x"


def _pct(x) -> str:
    return "" if x is None or x == "" else f"{100 * float(x):.1f}%"


def section_training(out: Path, results: Path) -> str:
    """Training runs committed under results/train/<run>/ (metrics.jsonl, command.sh); curves drawn from them."""
    runs = sorted(p.parent for p in (results / "train").glob("*/metrics.jsonl"))
    if not runs:
        return ""
    rows, figs = [], []
    for run in runs:
        hist = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
        last = hist[-1]
        best = max(h.get("val_top1", 0) for h in hist)
        rows.append([run.name, len(hist), _pct(last.get("val_top1")), _pct(last.get("val_top5")), _pct(best),
                     f"{last.get('seconds_total', 0) / 60:.0f} min"])
        plot_curves(hist, out / f"train_{run.name}.png", title=run.name)
        figs.append(f"![{run.name}](train_{run.name}.png)")
    return ("## Training on Imagenette\n\nRuns of `squeezenet train` (the exact commands are in "
            "`results/train/<run>/command.sh`); Imagenette val, 3,925 images.\n\n"
            + _md_table(["run", "epochs", "val top-1", "val top-5", "best top-1", "training time"], rows)
            + "\n\n" + "\n\n".join(figs) + "\n")


_TABLE2_HEAD = ["network", "compression", "data type", "size", "vs AlexNet", "top-1", "top-5"]


def _table2(path: Path, beside: bool = False) -> tuple[dict, str, str]:
    """(the measured JSON, its rows as a Markdown table, the paper's Table 2 as one); `beside`: each measured row
    also carries the reduction and accuracy of the paper's row with the same network, compression and data type."""
    measured = json.loads(path.read_text())
    head = _TABLE2_HEAD + (["non-zero values (vs AlexNet)", "paper: vs AlexNet", "paper: top-1 / top-5"]
                           if beside else [])
    ref = {(n, c, t): [f"{x}x", f"{t1}% / {t5}%"] for n, c, t, _, x, t1, t5 in paper.TABLE2}
    rows = [[r["network"], r["compression"], r["data_type"], f"{r['bytes']:,}", _ratio(r["vs_alexnet"]),
             _pct(r.get("top1")), _pct(r.get("top5"))]
            + ([f"{r['nonzero']:,} ({_ratio(r['nonzero_vs_alexnet'])})"]
               + ref.get((r["network"], r["compression"], r["data_type"]), ["", ""]) if beside else [])
            for r in measured["rows"]]
    return measured, _md_table(head, rows), _table2_paper()


def _table2_paper() -> str:
    return _md_table(_TABLE2_HEAD, [[n, c, t, f"{mb} MB", f"{x}x", f"{t1}%", f"{t5}%"]
                                    for n, c, t, mb, x, t1, t5 in paper.TABLE2])


def section_table2(out: Path, results: Path) -> str:
    """Table 2 measured by `benchmarks/table2.py`-style runs, saved as results/compress/table2.json."""
    path = results / "compress" / "table2.json"
    if not path.is_file():
        return ""
    measured = json.loads(path.read_text())
    sets = list(dict.fromkeys(name for r in measured["rows"] for name in r.get("accuracy", {})))
    head = _TABLE2_HEAD[:5] + [f"top-1 / top-5 ({name})" for name in sets]
    rows = [[r["network"], r["compression"], r["data_type"], f"{r['bytes']:,}", _ratio(r["vs_alexnet"])]
            + [f"{_pct(a['top1'])} / {_pct(a['top5'])}" if (a := r.get("accuracy", {}).get(name)) else ""
               for name in sets] for r in measured["rows"]]
    protocol = next((a["preprocessing"] for r in measured["rows"] for a in r.get("accuracy", {}).values()), "")
    return ("## Table 2: Deep Compression\n\nMeasured here on the shared ImageNet images ("
            f"{measured.get('data', '')}; preprocessing: {protocol}; imagenet-sample-750 keeps the images' own "
            "aspect ratio and is the check that nothing was tuned to imagenet-val-1300); command: "
            f"`{measured.get('command', '')}`:\n\n" + _md_table(head, rows) + "\n\nThe paper (all 50,000 ImageNet "
            "validation images):\n\n" + _table2_paper() + "\n")


def section_table2_imagenette(out: Path, results: Path) -> str:
    """Table 2 with every network trained and compressed here on Imagenette: results/table2/table2.json."""
    path = results / "table2" / "table2.json"
    if not path.is_file():
        return ""
    measured, ours, theirs = _table2(path, beside=True)
    with torch.device("meta"):
        small, full = _params("alexnet", num_classes=10, image_size=128), _params("alexnet")
    return ("## Table 2 on Imagenette: AlexNet against SqueezeNet\n\nAlexNet (bvlc_alexnet) and SqueezeNet "
            "trained from scratch with `squeezenet train` at 128 px on Imagenette's 10 classes, compressed with "
            "`squeezenet compress`: SVD of the fc layers (Denton et al.), pruning to Han et al. 2015's densities, "
            "Deep Compression (pruning, 8-bit conv / 5-bit fc trained quantization, entropy coding). Sizes are "
            "bytes as the paper counts them (a `.sqz` file; fp32: 4 bytes a weight, pruned: non-zeros plus a "
            "4-bit index); the reduction is against our AlexNet fp32, which at 128 px and 10 classes has "
            f"{small / 1e6:.1f} M parameters, not {full / 1e6:.1f} M (fc6 and fc8 shrink): the ratios are comparable, "
            f"not the sizes. Accuracy on {measured.get('data', 'Imagenette val')}; command: "
            f"`{measured.get('command', '')}` (every command, in order: `{results}/table2/command.sh`; the verdict: "
            f"`{results}/table2/README.md`).\n\n" + ours + "\n\nThe paper (ImageNet, 1000 classes, 227 px):\n\n"
            + theirs + "\n")


def section_explore(out: Path, results: Path) -> str:
    """Figure 3 and Table 3 from the sweeps under results/explore/<sweep>/results.json."""
    sweeps = sorted(p.parent for p in (results / "explore").glob("*/results.json")
                    if not (p.parent / "pareto.csv").exists())
    searches = sorted(p.parent for p in (results / "explore").glob("*/pareto.csv"))
    if not sweeps and not searches:
        return ""
    parts = ["## Design-space exploration (Figure 3, Table 3) on Imagenette\n"]
    for search in searches:  # a search's front (squeezenet explore --search), with the figure it drew
        shutil.copyfile(search / "pareto.png", out / f"pareto_{search.name}.png")
        rows = list(csv.DictReader(io.StringIO((search / "pareto.csv").read_text())))
        table = [[r["trial"], r["model"], *(r[k][:6] for k in ("base_e", "incr_e", "freq", "pct3x3", "sr")),
                  r["bypass"], f"{int(r['ram']):,}", f"{int(r['macs']):,}", _pct(float(r["top1"])),
                  "yes" if r["on_front"] == "1" else "", r["reference"]] for r in rows]
        head = ["trial", "stem", "base_e", "incr_e", "freq", "pct3x3", "sr", "bypass", "RAM (B)", "MACs", "top-1",
                "on the front", "paper"]
        parts.append(f"### search: {search.name} (`{results}/explore/{search.name}/`: every trained configuration, "
                     "the Pareto front first)\n\n"
                     + _md_table(head, table) + f"\n\n![front](pareto_{search.name}.png)")
    for sweep in sweeps:
        rows = json.loads((sweep / "results.json").read_text())
        table = [[r["name"], f"{r['params']:,}", f"{r['bytes_fp32'] / 1e6:.2f}", _pct(r["top1"]), _pct(r["top5"]),
                  f"{r['train_seconds'] / 60:.0f} min"] for r in rows]
        head = ["configuration", "params", "fp32 MB", "top-1", "top-5", "training"]
        if sweep.name == "bypass":  # Table 3: the paper's ImageNet figures beside ours
            ref = {k: "{} / {} / {} MB".format(*v) for k, v in paper.TABLE3.items()}
            table = [row + [ref.get(r["bypass"], "")] for row, r in zip(table, rows, strict=True)]
            head.append("paper (ImageNet): top-1 / top-5 / size")
        parts.append(f"### {sweep.name}\n\n" + _md_table(head, table))
        plot_sweep(rows, out / f"explore_{sweep.name}.png", f"{sweep.name} sweep")
        parts.append(f"![{sweep.name}](explore_{sweep.name}.png)")
    if (results / "explore" / "README.md").is_file():
        parts.append("The comparison with the paper, configuration by configuration: `results/explore/README.md`.")
    return "\n\n".join(parts) + "\n"


def section_bundled(out: Path, results: Path) -> str:
    """The Imagenette model shipped inside the package (no data needed): what it is and how small."""
    from squeezenet.formats.weights import BUNDLED, bundled_path, load

    path = bundled_path("imagenette")
    w = load("imagenette")
    bits = w.meta.get("compression", {}).get("bits")
    return (f"## The bundled model: `squeezenet.load(\"imagenette\")`\n\nSqueezeNet v1.1 "
            f"(BatchNorm recipe) trained from scratch on Imagenette ({len(w.classes)} classes), run at "
            f"{w.preprocessing.crop_size} px ({w.preprocessing.protocol}), stored as {bits}-bit weight sharing, "
            f"entropy coded: **{path.stat().st_size:,} bytes** for {w.num_params:,} parameters ({w.fp32_bytes:,} "
            f"bytes in fp32); its accuracy is in the headline figures. Bundled models: {', '.join(BUNDLED)}.\n")


def section_headline(out: Path, results: Path) -> str:
    """Every `squeezenet evaluate --json` line of results/headline/command.sh, with the protocol it used."""
    path = results / "headline" / "evaluate.jsonl"
    if not path.is_file():
        return ""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    table = _md_table(["weights", "data", "images (classes)", "top-1", "top-5", "preprocessing"],
                      [[f"`{Path(r['weights']).name}`", Path(r["data"]).name, f"{r['images']:,} ({r['classes']})",
                        _pct(r["top1"]), _pct(r["top5"]), r["preprocessing"]] for r in rows])
    return ("## Headline figures\n\nEach row is `squeezenet evaluate --json` run by "
            f"`{results}/headline/command.sh`; each model with the preprocessing its weights were trained with. "
            "imagenet-sample-750 keeps the images' own aspect ratio: the check that nothing was tuned to "
            "imagenet-val-1300.\n\n" + table + "\n")


SECTIONS: list[Callable[[Path, Path], str]] = [section_headline, section_table1, section_v1_1, section_bypass,
                                               section_sweeps, section_bundled, section_training, section_table2,
                                               section_table2_imagenette, section_rate_accuracy, section_explore,
                                               section_c_engine]


def write_report(out: str | Path = "report", results: str | Path = "results") -> Path:
    """Write `out/README.md` (and its PNGs) from the package and the results folder; return its path."""
    out, results = Path(out), Path(results)
    out.mkdir(parents=True, exist_ok=True)
    parts = ["# SqueezeNet, reproduced\n\nWritten by `squeezenet reproduce`: every figure below is computed by "
             "this package on this machine, or read from the measured results in "
             f"`{results}/`, and set beside the paper's printed value.\n"]
    parts += [text for section in SECTIONS if (text := section(out, results))]
    path = out / "README.md"
    write_text(path, "\n".join(parts))
    return path
