"""A training run as data: `TrainConfig` (saved as the run's config.json) and the named recipes that fill it.

A recipe is a set of defaults (architecture overrides, lr, batch, label smoothing) that explicit options win over;
`lr_lambda` is the schedule all recipes share: linear warm-up, then the paper's poly (power 1) decay to zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from squeezenet.errors import SqueezeNetError


@dataclass
class TrainConfig:
    """Everything that defines a run; saved as RUN_DIR/config.json so `--resume` needs nothing else."""

    data: str
    out: str
    model: str = "squeezenet1_1"
    model_overrides: dict = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 128  # global batch per optimizer step, whatever the number of processes
    accum: int = 1  # micro-batches per step: the paper's 512 = 32 x 16
    lr: float = 0.04
    momentum: float = 0.9
    weight_decay: float = 2e-4
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.0
    image_size: int = 128
    min_scale: float = 0.35  # random resized crop: smallest area fraction
    seed: int = 0
    checkpoint_every: int = 0  # optimizer steps between mid-epoch checkpoints (0: end of epoch only)
    cache_dir: str | None = None
    skip_bad: bool = False
    init_from: str | None = None
    freeze_features: bool = False
    threads: int | None = None
    max_steps: int | None = None  # stop early (probes, tests); the schedule still spans `epochs`

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# Named recipes (defaults that explicit options override). "paper" is the DeepScale solver with the paper's
# architecture as it is; on Imagenette it stalls at chance (conv10 outputs all <= 0 under the final ReLU, see
# results/train/); "no-final-relu" drops that ReLU; "bn" (the default) also adds BatchNorm and trains fastest.
RECIPES: dict[str, dict] = {
    "bn": {"model_overrides": {"batch_norm": True, "final_relu": False}, "lr": 0.1, "batch_size": 128, "accum": 1,
           "label_smoothing": 0.1},
    "no-final-relu": {"model_overrides": {"final_relu": False}, "lr": 0.04, "batch_size": 128, "accum": 1,
                      "label_smoothing": 0.0},
    "paper": {"model_overrides": {"init": "paper"}, "lr": 0.04, "batch_size": 512, "accum": 16,
              "label_smoothing": 0.0},
    # AlexNet (`--model alexnet`, its default recipe): SGD with bvlc_alexnet's momentum 0.9 and decay 5e-4, but
    # Kaiming-initialised (with Caffe's Gaussians the loss does not move in a short run, see AlexNet); lr 0.01, not
    # the probe's 0.005 at batch 32 scaled linearly (0.02): the early jumps grow with lr whatever the batch
    "alexnet": {"model_overrides": {"init": "kaiming"}, "lr": 0.01, "batch_size": 128, "accum": 1,
                "weight_decay": 5e-4, "label_smoothing": 0.1},
}


def default_recipe(model: str) -> str:
    return "alexnet" if model == "alexnet" else "bn"


def recipe_config(recipe: str | None, model_overrides: dict | None = None, **options) -> TrainConfig:
    """A TrainConfig from a named recipe (None: the model's default); `options` (None = recipe default) and
    `model_overrides` win."""
    recipe = recipe or default_recipe(options.get("model") or TrainConfig.model)
    if recipe not in RECIPES:
        raise SqueezeNetError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    r = RECIPES[recipe]
    d = r | {k: v for k, v in options.items() if v is not None}
    arch = {} if d.get("init_from") else r["model_overrides"]  # started weights keep their architecture
    return TrainConfig(**d | {"model_overrides": arch | (model_overrides or {})})


def lr_lambda(cfg: TrainConfig, total_steps: int, warmup_steps: int):
    """Linear warm-up, then the paper's poly (power 1) decay to zero at the last step."""
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, 1 - (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return f
