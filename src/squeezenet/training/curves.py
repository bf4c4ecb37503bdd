"""The training curves of a run (loss and accuracy per epoch), redrawn after every epoch as curves.png."""

from __future__ import annotations

from pathlib import Path

from squeezenet.plotting import integer_ticks, percent_axis, save, subplots

# panel -> (y label, [(history key, legend label)]); val_* keys exist only when the run had a val/ split
PANELS = {
    "loss": ("loss", [("train_loss", "train"), ("val_loss", "val")]),
    "top-1": ("top-1 accuracy", [("train_acc", "train"), ("val_top1", "val")]),
    "top-5": ("val top-5 accuracy", [("val_top5", "val")]),
}


def plot_curves(history: list[dict], path: str | Path, title: str | None = None) -> Path:
    """Loss, top-1 and top-5 on their own axes (top-5 sits near 100% and would flatten top-1), drawing only the
    series the history has: a run without a val/ split gets loss and train top-1. Titled by the run folder."""
    path = Path(path)
    present = {key for h in history for key in h}
    panels = {k: v for k, v in PANELS.items() if any(key in present for key, _ in v[1])}
    fig, axes = subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False, layout="constrained")
    for ax, (name, (ylabel, series)) in zip(axes[0], panels.items(), strict=True):
        for key, label in (s for s in series if s[0] in present):
            pts = [(h["epoch"], h[key]) for h in history if key in h]
            ax.plot(*zip(*pts, strict=True), marker="o", ms=3, label=label)  # markers: a 1-epoch run shows too
        ax.set(xlabel="epoch", ylabel=ylabel)
        integer_ticks(ax)
        if name != "loss":
            percent_axis(ax)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or path.parent.name)
    return save(fig, path, dpi=100)
