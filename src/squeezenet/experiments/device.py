"""What a SqueezeNet costs on a device, known before it is trained, and the space a search samples it from.

`costs` computes a configuration's figures from the project's own code, in about a second, without training:
- `ram`: what the C engine's firmware needs: the smallest memory plan's arena (layer by layer, or its first layers
  streamed row by row: `planner.smallest_plan`) plus the scores and the stack (`targets.firmware_ram`);
- `macs`: multiply-accumulates of the network (every weight, at the input size);
- `flash`: an estimate of the firmware after Deep Compression (the engine's fixed-width streams of a model pruned
  to DENSITY of its weights with 6-bit codes, a bias and a multiplier a channel, a codebook a layer, and the
  engine's code), from the bundled model's measured figures (69% of its weights kept, 0.97 stream bytes per kept
  weight, 7.2 KB of code and tables beside its 510 KB of weights);
- `sqz-bytes`: the same weights entropy-coded as a `.sqz`, at the bundled model's file-to-fixed-width ratio (0.936);
- `params`: the convolutions' weights and biases (the paper's model size).
Estimates, not measurements: the real figures come from `squeezenet compress` and `export --format c` once a
model is trained.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from squeezenet.deploy.cengine.graph import Conv, lower
from squeezenet.deploy.cengine.planner import smallest_plan
from squeezenet.deploy.cengine.stream import macs
from squeezenet.deploy.cengine.targets import firmware_ram
from squeezenet.errors import ConfigError
from squeezenet.models.registry import create_model

OBJECTIVES = ("ram", "flash", "macs", "sqz-bytes", "params")
DENSITY, BYTES_PER_KEPT, CODE_BYTES, FILE_RATIO = 0.69, 0.97, 7_200, 0.936
STEMS = ("squeezenet1_0", "squeezenet1_1")


@dataclass(frozen=True)
class Space:
    """The ranges a search samples (the paper's v1.0 and v1.1 lie inside the defaults): integer ranges are
    inclusive, in steps of `step`; `sizes` are the input sizes trained and deployed at."""

    base_e: tuple[int, int] = (32, 256)
    incr_e: tuple[int, int] = (0, 256)
    freq: tuple[int, int] = (1, 4)
    pct3x3: tuple[float, float] = (0.01, 0.99)
    sr: tuple[float, float] = (0.125, 1.0)
    stems: tuple[str, ...] = STEMS
    bypass: tuple[str, ...] = ("none", "simple", "complex")
    sizes: tuple[int, ...] = (224,)
    step: int = 16

    def check(self) -> None:
        for name in ("base_e", "incr_e", "freq", "pct3x3", "sr"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ConfigError(f"--{name.replace('_', '-')} {lo} {hi}: the low end is above the high end")
        if not set(self.stems) <= set(STEMS):
            raise ConfigError(f"--stems: choose among {', '.join(STEMS)}")

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def sample(self, trial) -> tuple[str, dict, int]:
        """(model, metaparameter overrides, input size) of an Optuna trial."""
        over = {"base_e": trial.suggest_int("base_e", *self.base_e, step=self.step),
                "incr_e": trial.suggest_int("incr_e", *self.incr_e, step=self.step),
                "freq": trial.suggest_int("freq", *self.freq),
                "pct3x3": trial.suggest_float("pct3x3", *self.pct3x3),
                "sr": trial.suggest_float("sr", *self.sr),
                "bypass": trial.suggest_categorical("bypass", list(self.bypass))}
        return trial.suggest_categorical("model", list(self.stems)), over, \
            trial.suggest_categorical("image_size", list(self.sizes))

    def references(self) -> list[dict]:
        """The paper's v1.0 and v1.1 as trials of this space (at its first size), for the front to be read against."""
        return [{"model": m, "base_e": 128, "incr_e": 128, "freq": 2, "pct3x3": 0.5, "sr": 0.125, "bypass": "none",
                 "image_size": self.sizes[0]} for m in self.stems]


def costs(model: str, overrides: dict, size: int, classes: int) -> dict:
    """The figures of a configuration at `size` x `size` with `classes` classes (see the module's docstring)."""
    net = create_model(model, **overrides, num_classes=classes)
    graph = lower(net, size)
    convs = [op.conv for op in graph.ops if isinstance(op, Conv)]
    weights = sum(math.ceil(c.weight.numel() * DENSITY) * BYTES_PER_KEPT + 8 * c.out_channels + 64 for c in convs)
    return {"ram": firmware_ram(smallest_plan(graph).arena, classes), "macs": macs(graph),
            "flash": round(weights + 768 + CODE_BYTES), "sqz-bytes": round(weights * FILE_RATIO),
            "params": sum(c.weight.numel() + (0 if c.bias is None else c.bias.numel()) for c in convs)}


def excluded(cost: dict, limits: dict) -> str | None:
    """Why a configuration cannot fit (the first limit it exceeds, with its figure), or None."""
    for key, limit in limits.items():
        if limit is not None and cost[key] > limit:
            return f"{key} {cost[key]:,} > {limit:,}"
    return None
