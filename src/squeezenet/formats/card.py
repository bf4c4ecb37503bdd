"""A model card (the Hugging Face Hub's README.md) written from the weights' own metadata, never by hand.

Everything a user needs before trusting a model is already in its weights' description: what it is, how it was
made, the accuracy measured on which data with which protocol, the preprocessing, its size. The card only renders
it, so a card cannot disagree with the weights it describes.
"""

from __future__ import annotations

from squeezenet.formats.weights import Weights

FRONT_MATTER = "---\nlibrary_name: squeezenet\npipeline_tag: image-classification\ntags:\n- squeezenet\n- pytorch\n---"
DETAILS = ("train_config", "compression")  # meta entries shown as key=value lists under Provenance


def _percent(x: object) -> str:
    return f"{100 * x:.2f}%" if isinstance(x, (int, float)) else "-"


def _text(v: object) -> str:
    """A metadata value on one line of markdown (a table cell cannot hold '|' or a line break)."""
    return " ".join(str(v).replace("|", "/").split())


def _scalars(d: dict) -> str:
    return ", ".join(f"{k}={_text(v)}" for k, v in d.items() if isinstance(v, (str, int, float, bool)))


def _evaluation(weights: Weights) -> list[str]:
    """The `evaluate --json` records stored with the weights, then the validation figures of their training run."""
    rows = [r for r in weights.meta.get("evaluations") or [] if isinstance(r, dict)]
    lines = ["## Evaluation", ""]
    if rows:
        lines += ["| data | images | top-1 | top-5 | preprocessing |", "|---|---|---|---|---|"]
        lines += [f"| {_text(r.get('data', '?'))} | {_text(r.get('images', '?'))} | {_percent(r.get('top1'))} | "
                  f"{_percent(r.get('top5'))} | {_text(r.get('preprocessing', '?'))} |" for r in rows]
        records = sorted({_text(r["record"]) for r in rows if "record" in r})
        lines += ["", "Each figure is measured with the weights' own preprocessing (`squeezenet evaluate --json`"
                  + (f"; recorded in {', '.join(records)})." if records else ").")]
    metrics, train = weights.meta.get("metrics"), weights.meta.get("train_config")
    if isinstance(metrics, dict) and "val_top1" in metrics:
        where = f" on {_text(train.get('data'))} at {_text(train.get('image_size'))} px" if isinstance(
            train, dict) else ""
        lines += ["", f"At the end of training (epoch {_text(metrics.get('epoch', '?'))}{where}, before any later "
                  f"compression): validation top-1 {_percent(metrics['val_top1'])}" + (
                      f", top-5 {_percent(metrics['val_top5'])}." if "val_top5" in metrics else ".")]
    if len(lines) == 2:
        lines += ["No evaluation is recorded with these weights; measure one with their protocol: "
                  "`squeezenet evaluate --weights DIR --data FOLDER --json`."]
    return lines


def _preprocessing(weights: Weights) -> list[str]:
    p = weights.preprocessing
    return ["## Preprocessing", "", f"{p.protocol}; then each pixel x {p.pixel_scale:.6g}, minus mean "
            f"{list(p.mean)}, divided by std {list(p.std)}. Trained weights are only right with the protocol they "
            "were trained with: `squeezenet.load(DIR).preprocessing` applies the one recorded with them."]


def _provenance(weights: Weights) -> list[str]:
    meta = weights.meta
    plain = _scalars({k: v for k, v in meta.items() if k not in ("about", "evaluations", "metrics", *DETAILS)})
    lines = [f"- recorded: {plain}"] if plain else []
    lines += [f"- {k}: {_scalars(meta[k])}" for k in DETAILS if isinstance(meta.get(k), dict)]
    return ["## Provenance", "", *lines] if lines else []


def _size(weights: Weights) -> list[str]:
    stored, classes = weights.meta.get("bytes"), weights.classes
    named = ("ImageNet's 1000" if weights.header(compact=True)["classes"] == "imagenet" else
             "; ".join(_text(c) for c in classes[:10]) + ("; ..." if len(classes) > 10 else ""))
    nonzero = sum(int(v.count_nonzero()) for v in weights.state_dict.values())
    source = f"; its source file {stored:,} bytes" if isinstance(stored, int) else ""
    return ["## Size", "", f"- {weights.num_params:,} parameters ({weights.fp32_bytes:,} bytes in fp32), "
            f"{nonzero:,} of them non-zero{source}", f"- {len(classes)} classes: {named}"]


def model_card(weights: Weights, name: str) -> str:
    """The README.md of a `save_pretrained` folder holding `weights` of the registered model `name`: what they
    are, how to load them, their preprocessing, the accuracy recorded with them, provenance and size."""
    about = _text(weights.meta.get("about") or "weights saved by the squeezenet package")
    model_class = "SqueezeNet" if weights.arch == "squeezenet" else "AlexNet"
    intro = [FRONT_MATTER, "", f"# {name}", "", f"{about[:1].upper()}{about[1:]}: `squeezenet.create_model("
             f"{name!r})` with the configuration in config.json, {weights.num_classes} classes."]
    use = ["## Use", "", "```python", "import squeezenet", f"model = squeezenet.{model_class}.from_pretrained(DIR)",
           "w = squeezenet.load(DIR)  # the same weights, with their classes and preprocessing",
           "print(w.classes[model(w.preprocessing(image)[None]).argmax()])", "```"]
    parts = [intro, use, _preprocessing(weights), _evaluation(weights), _provenance(weights), _size(weights)]
    return "\n\n".join("\n".join(p) for p in parts if p) + "\n"
