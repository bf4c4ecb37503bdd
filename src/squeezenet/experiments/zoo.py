"""The model zoo: every pretrained model the project knows, described from its weights' own metadata.

As timm and torchvision publish their model pages, nothing here is typed by hand: the size is the file's, the
parameters are counted from the tensors, the accuracy is the `evaluations` the weights carry (data set, images,
protocol and the record it came from, `squeezenet evaluate --json`), the provenance is their header's. The
documentation's build renders `zoo_markdown()` into the model zoo page (docs/hooks.py);
tests/test_generated_pages.py checks the page against the metadata and against `squeezenet evaluate` on a sample
of the data each figure names.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from squeezenet.errors import SqueezeNetError
from squeezenet.formats.pretrained import PRETRAINED, list_models, pretrained_weights
from squeezenet.formats.weights import BUNDLED, Weights, bundled_path
from squeezenet.paths import shared_dir

TRAIN_KEYS = ("data", "model", "epochs", "batch_size", "lr", "warmup_epochs", "label_smoothing", "image_size",
              "init_from", "freeze_features", "seed")  # what a reader of the provenance wants of a run's config
COMPRESSION_KEYS = ("profile", "quality", "density", "bits", "init", "rate", "retrain_epochs", "finetune_epochs",
                    "loss", "train_limit")


def percent(x: float) -> str:
    """A top-1 or top-5 share as the page prints it (the README's and the results' form: two decimals)."""
    return f"{100 * x:.2f}%"


def source_path(name: str) -> Path:
    """The file `create_model(name, pretrained=True)` reads: `$SQUEEZENET_WEIGHTS_<NAME>`, else the project's own."""
    env = os.environ.get(f"SQUEEZENET_WEIGHTS_{name.upper()}")
    return Path(env) if env else Path(PRETRAINED[name][0]())


def shown_path(path: Path) -> str:
    """A weights file as a reader finds it: under ../shared, or inside the package."""
    path = path.resolve()
    for root, label in ((shared_dir().resolve(), "../shared"), (Path(__file__).resolve().parents[1], "squeezenet")):
        if path.is_relative_to(root):
            return f"{label}/{path.relative_to(root).as_posix()}"
    return str(path)


def cli_name(path: Path) -> str:
    """What `--weights` takes for this file: a bundled model's name, else the path as `shown_path` gives it."""
    return next((k for k in BUNDLED if bundled_path(k).resolve() == path.resolve()), shown_path(path))


def _entry(names: list[str], path: Path, w: Weights) -> dict:
    meta = w.meta
    nonzero = sum(int(v.count_nonzero()) for v in w.state_dict.values())
    return {"names": names, "about": meta.get("about", ""), "path": shown_path(path), "bytes": path.stat().st_size,
            "format": meta.get("format") or path.suffix.lstrip("."), "cli": cli_name(path),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "arch": w.arch, "params": w.num_params,
            "nonzero": nonzero, "fp32_bytes": w.fp32_bytes, "num_classes": w.num_classes,
            "classes": ("ImageNet's 1000" if w.header(compact=True)["classes"] == "imagenet"
                        else "; ".join(w.classes)),
            "protocol": w.preprocessing.protocol, "evaluations": [dict(r) for r in meta.get("evaluations") or []],
            "meta": meta}


def zoo_entries() -> list[dict]:
    """One entry per weights file, the registered names that load it together; a file not at hand is an entry
    with `missing` (the error saying where it was looked for)."""
    entries: dict[Path, dict] = {}
    for name in list_models(pretrained=True):
        path = source_path(name).resolve()
        if path in entries:
            entries[path]["names"].append(name)
            continue
        try:
            entries[path] = _entry([name], path, pretrained_weights(name))
        except SqueezeNetError as e:
            entries[path] = {"names": [name], "missing": str(e)}
    return list(entries.values())


def _cell(v: object) -> str:
    """A value on one line of a markdown table cell."""
    return " ".join(str(v).replace("|", "/").split())


def _accuracy(e: dict) -> str:
    return "; ".join(f"{percent(r['top1'])} / {percent(r['top5'])} on {_cell(r['data']).split(' (')[0]}"
                     for r in e["evaluations"]) or "not recorded"


def _summary(entries: list[dict]) -> list[str]:
    lines = ["| model | weights | file bytes | parameters (non-zero) | classes | top-1 / top-5 |",
             "|---|---|---|---|---|---|"]
    for e in entries:
        names = ", ".join(f"`{n}`" for n in e["names"])
        if "missing" in e:
            lines.append(f"| {names} | not at hand when this page was built | | | | |")
            continue
        lines.append(f"| {names} | {_cell(e['about'])} | {e['bytes']:,} | {e['params']:,} ({e['nonzero']:,}) | "
                     f"{e['num_classes']} | {_accuracy(e)} |")
    return lines


def _evaluations(e: dict) -> list[str]:
    if not e["evaluations"]:
        return ["No evaluation is recorded with these weights."]
    lines = ["| data | images | top-1 | top-5 | preprocessing | record |", "|---|---|---|---|---|---|"]
    lines += [f"| {_cell(r['data'])} | {r['images']:,} | {percent(r['top1'])} | {percent(r['top5'])} | "
              f"{_cell(r.get('preprocessing', ''))} | `{_cell(r.get('record', ''))}` |" for r in e["evaluations"]]
    return lines


def _pairs(d: dict, keys: tuple[str, ...]) -> str:
    return ", ".join(f"{k} {_cell(d[k])}" for k in keys if d.get(k) is not None and d.get(k) not in ("", False))


def _provenance(e: dict) -> list[str]:
    meta = e["meta"]
    lines = [f"- file: `{e['path']}` ({e['format']}, {e['bytes']:,} bytes, sha256 `{e['sha256'][:16]}...`)"]
    if meta.get("prototxt"):
        lines.append(f"- architecture read from `{_cell(meta['prototxt'])}` beside it")
    if meta.get("trained_by"):
        lines.append(f"- trained by `{_cell(meta['trained_by'])}`")
    if isinstance(meta.get("train_config"), dict):
        lines.append(f"- training: {_pairs(meta['train_config'], TRAIN_KEYS)}")
    if isinstance(meta.get("metrics"), dict) and "val_top1" in meta["metrics"]:
        m = meta["metrics"]
        lines.append(f"- at the end of training (epoch {m.get('epoch', '?')}, before any later compression): "
                     f"val top-1 {percent(m['val_top1'])}" + (f", top-5 {percent(m['val_top5'])}" if "val_top5" in m
                                                                 else ""))
    if isinstance(meta.get("compression"), dict):
        lines.append(f"- compression (`squeezenet compress`): {_pairs(meta['compression'], COMPRESSION_KEYS)}")
    return lines


def _section(e: dict) -> list[str]:
    title = ", ".join(e["names"])
    if "missing" in e:
        return [f"## {title}", "", f"Not at hand when this page was built: {_cell(e['missing'])}"]
    first = e["names"][0]
    return [f"## {title}", "", f"{_cell(e['about'])[:1].upper()}{_cell(e['about'])[1:]}: "
            f"`squeezenet.create_model({first!r}, pretrained=True)`, or `--weights {e['cli']}` on the command line.",
            "", f"- {e['arch']}, {e['params']:,} parameters ({e['fp32_bytes']:,} bytes in fp32), {e['nonzero']:,} "
            f"of them non-zero; {e['num_classes']} classes: {_cell(e['classes'])[:300]}",
            f"- preprocessing: {_cell(e['protocol'])}", "", "### Accuracy", "", *_evaluations(e), "",
            "### Provenance", "", *_provenance(e)]


def zoo_markdown(entries: list[dict] | None = None) -> str:
    """The model zoo's tables and sections (markdown, headings from level 2), from `zoo_entries()`."""
    entries = zoo_entries() if entries is None else entries
    parts = [_summary(entries), *(_section(e) for e in entries)]
    return "\n\n".join("\n".join(p) for p in parts) + "\n"


def missing(entries: list[dict]) -> list[str]:
    """The errors of the entries whose weights were not at hand (a build should say so)."""
    return [e["missing"] for e in entries if "missing" in e]
