"""Magnitude pruning, Deep Compression's first stage, with the per-layer targets of the paper's Table 1.

Targets are densities (the fraction of weights kept) per weight tensor: the `table1` profile (SqueezeNet), the
`alexnet` profile (Han et al. 2015's AlexNet, Table 2's "network pruning" row), one global threshold, or Han et
al.'s quality factor x the layer's standard deviation. `Pruner` holds the masks during retraining: pruned weights
get no gradient and are re-zeroed after every step (momentum and weight decay cannot revive them); with
`schedule`, the density falls gradually along the AGP cubic (Zhu & Gupta, 2017) instead of at once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from squeezenet import progress
from squeezenet.compression.quantize import quantizable
from squeezenet.errors import ConfigError
from squeezenet.models.alexnet import AlexNet
from squeezenet.models.squeezenet import SqueezeNet

# Table 1's sparsity column (as densities) per fire module: squeeze, expand1x1, expand3x3; fire8's e3x3 is printed
# 33% but the parameter count (and the released model) say 30%.
TABLE1_FIRES = {
    "fire2": (1.0, 1.0, 0.33), "fire3": (1.0, 1.0, 0.33), "fire4": (1.0, 1.0, 0.33), "fire5": (1.0, 1.0, 0.33),
    "fire6": (1.0, 0.5, 0.33), "fire7": (0.5, 1.0, 0.33), "fire8": (1.0, 0.5, 0.30), "fire9": (0.5, 1.0, 0.30),
}


TABLE1_CONV1, TABLE1_CONV10 = 1.0, 0.20


# Han et al. 2015 ("Learning both weights and connections"), Table 4: AlexNet's densities, 9x fewer parameters
HAN2015_ALEXNET = {"conv1": 0.84, "conv2": 0.38, "conv3": 0.35, "conv4": 0.37, "conv5": 0.37, "fc6": 0.09,
                   "fc7": 0.09, "fc8": 0.25}


PROFILES = ("table1", "alexnet")


def paper_names(model: SqueezeNet | AlexNet) -> dict[str, str]:
    """state_dict weight name -> the paper's layer name (the model's `layer_names`)."""
    return model.layer_names()


def table1_densities(model: SqueezeNet) -> dict[str, float]:
    """The paper's per-layer densities for any SqueezeNet (fire modules by position; shortcuts kept dense)."""
    out = {}
    for name, paper in paper_names(model).items():
        if paper == "conv1":
            out[name] = TABLE1_CONV1
        elif paper == "conv10":
            out[name] = TABLE1_CONV10
        elif paper.endswith("shortcut"):
            out[name] = 1.0
        else:
            fire, part = paper.split("/")
            out[name] = TABLE1_FIRES[fire][("squeeze1x1", "expand1x1", "expand3x3").index(part)]
    return out


def alexnet_densities(model: AlexNet) -> dict[str, float]:
    """Han et al. 2015's per-layer densities (both factors of a factorised layer get the layer's)."""
    return {name: HAN2015_ALEXNET[paper.split("/")[0]] for name, paper in paper_names(model).items()}


def global_densities(model: nn.Module, density: float) -> dict[str, float]:
    """Per-layer densities from one magnitude threshold over all conv/linear weights."""
    _check_density(density)
    names = quantizable(model)
    mags = torch.cat([model.get_parameter(n).detach().abs().flatten() for n in names])
    k = max(1, round(density * mags.numel()))
    threshold = mags.kthvalue(mags.numel() - k + 1).values
    out = {}
    for n in names:  # a layer is never emptied: at least its largest weight survives
        w = model.get_parameter(n).detach()
        out[n] = max(float((w.abs() >= threshold).float().mean()), 1 / w.numel())
    return out


def std_densities(model: nn.Module, quality: float) -> dict[str, float]:
    """Han et al.'s rule: prune |w| < quality x std(w), per layer."""
    out = {}
    for n in quantizable(model):
        w = model.get_parameter(n).detach()
        out[n] = max(float((w.abs() >= quality * w.std()).float().mean()), 1 / w.numel())
    return out


def _check_density(d: float) -> None:
    if not 0 < d <= 1:
        raise ConfigError(f"density must be in (0, 1], got {d}")


def magnitude_mask(w: torch.Tensor, density: float, current: torch.Tensor | None = None) -> torch.Tensor:
    """Keep the `density` largest |w| (ties broken by position); within `current` when given, masks only shrink."""
    _check_density(density)
    mag = w.detach().abs().flatten()
    if current is not None:
        mag = torch.where(current.flatten(), mag, torch.full_like(mag, -1.0))
    k = max(1, round(density * w.numel()))
    keep = torch.zeros(w.numel(), dtype=torch.bool)
    keep[mag.topk(k, sorted=False).indices] = True
    if current is not None:
        keep &= current.flatten()
    return keep.view_as(w)


def agp(step: int, total: int, final: float, initial: float = 1.0) -> float:
    """Automated gradual pruning: density falls along a cubic from `initial` to `final` over `total` steps."""
    t = min(max(step / max(total, 1), 0.0), 1.0)
    return final + (initial - final) * (1 - t) ** 3


class Pruner:
    """Holds masks on a model's weights: prunes, keeps pruned weights at zero during retraining."""

    def __init__(self, model: nn.Module, densities: dict[str, float]) -> None:
        for n, d in densities.items():
            _check_density(d)
            model.get_parameter(n)  # raises for an unknown name
        self.model, self.targets = model, dict(densities)
        self.masks = {n: torch.ones_like(model.get_parameter(n), dtype=torch.bool) for n in densities}
        self._hooks = [model.get_parameter(n).register_hook(lambda g, n=n: g * self.masks[n]) for n in densities]

    def prune(self, fraction: float = 1.0) -> None:
        """Move every layer `fraction` of the way (on the AGP curve) to its target density and apply the masks."""
        for n, final in self.targets.items():
            p = self.model.get_parameter(n)
            d = agp(round(fraction * 1000), 1000, final)
            self.masks[n] = magnitude_mask(p, d, self.masks[n])
        self.apply()

    @torch.no_grad()
    def apply(self) -> None:
        for n, m in self.masks.items():
            self.model.get_parameter(n).mul_(m)

    def remove(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def densities(self) -> dict[str, float]:
        return {n: float(m.float().mean()) for n, m in self.masks.items()}


def sensitivity(model: nn.Module, score: Callable[[nn.Module], float], densities: tuple[float, ...] = (
        0.1, 0.2, 0.3, 0.5, 0.7, 1.0), layers: list[str] | None = None) -> list[dict]:
    """Accuracy against density, one layer pruned at a time (no retraining): rows {layer, density, score}."""
    rows = []
    names = layers or quantizable(model)
    bar = progress.bar(total=len(names) * len(densities), desc="sensitivity", unit="point")
    for n in names:
        p = model.get_parameter(n)
        saved = p.detach().clone()
        for d in densities:
            with torch.no_grad():
                p.mul_(magnitude_mask(p, d))
                rows.append({"layer": n, "density": d, "score": float(score(model))})
                p.copy_(saved)
            bar.set_postfix(layer=n, density=d)
            bar.update(1)
    bar.close()
    return rows


def plot_sensitivity(rows: list[dict], path: str | Path, names: dict[str, str] | None = None) -> Path:
    """Small multiples of the paper's Fig. 5 (Deep Compression): one panel per module (fire2/squeeze1x1, expand1x1
    and expand3x3 in one panel, a colour each), a shared accuracy axis, so 26 curves stay readable."""
    from squeezenet.plotting import percent_axis, save, subplots

    panels: dict[str, dict[str, list]] = {}  # module -> role -> [(density, score)], in network order
    for r in rows:
        module, _, role = (names or {}).get(r["layer"], r.get("name", r["layer"])).partition("/")
        panels.setdefault(module, {}).setdefault(role, []).append((r["density"], r["score"]))
    roles = list(dict.fromkeys(role for p in panels.values() for role in p if role))  # one colour per role
    nrows = -(-len(panels) // 5)
    cols = -(-len(panels) // nrows)  # at most 5 a row, rows filled evenly
    fig, axes = subplots(nrows, cols, figsize=(2.4 * cols, 2 * nrows + 1), sharex=True, sharey=True,
                         squeeze=False, layout="constrained")
    for ax, (module, curves) in zip(axes.flat, panels.items(), strict=False):
        for role, pts in curves.items():
            color = f"C{roles.index(role)}" if role else "k"  # a lone layer (conv1, fc6) is black
            ax.plot(*zip(*sorted(pts), strict=True), marker="o", ms=3, color=color, label=role or None)
        ax.set_title(module, fontsize=9)
        ax.grid(alpha=0.3)
    for i in range(len(panels), nrows * cols):
        axes.flat[i].remove()
        axes.flat[i - cols].xaxis.set_tick_params(labelbottom=True)  # now the bottom of its column
    percent_axis(axes[0, 0], "x")
    percent_axis(axes[0, 0], "y")
    handles = {lab: h for ax in axes.flat[: len(panels)]
               for h, lab in zip(*ax.get_legend_handles_labels(), strict=True)}  # one entry per role
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="outside right upper")
    fig.supxlabel("density (weights kept)")
    fig.supylabel("accuracy")
    fig.suptitle("Pruning sensitivity: one layer pruned at a time, no retraining")
    return save(fig, path, dpi=120)
