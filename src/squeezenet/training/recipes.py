"""A training run as data: `TrainConfig` (saved as the run's config.json) and the named recipes that fill it.

A recipe is a set of defaults (architecture overrides, lr, batch, label smoothing) that explicit options win over;
`lr_lambda` is the schedule all recipes share: linear warm-up, then the paper's poly (power 1) decay to zero.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from squeezenet.errors import SqueezeNetError
from squeezenet.options import check, option


@dataclass
class TrainConfig:
    """Everything that defines a run; saved as RUN_DIR/config.json so `--resume` needs nothing else.

    The fields marked `recipe` are filled by the named recipe (`recipe_config`) unless given.
    """

    data: str = option(help="folder with train/<class>/*.JPEG and val/<class>/*.JPEG (or a labels.csv per split)")
    out: str = option(help="run folder: config.json, checkpoint.pt, metrics.jsonl, curves.png, model.safetensors")
    model: str = option("squeezenet1_1", help="architecture, a registry name (see `squeezenet summary`)")
    model_overrides: dict = option(default_factory=dict, help="configuration overrides", cli=False)
    epochs: int = option(30, help="epochs of training", low=1, high=100_000)
    batch_size: int = option(128, help="global batch per optimizer step, whatever the number of processes",
                             low=2, high=65_536, recipe=True)
    accum: int = option(1, help="gradient accumulation micro-batches (paper: 512 = 32 x 16)", low=1, high=4096,
                        recipe=True)
    lr: float = option(0.04, help="peak learning rate (SGD)", low=1e-8, high=10.0, recipe=True)
    momentum: float = option(0.9, help="SGD momentum", low=0.0, high=0.999)
    weight_decay: float = option(2e-4, help="weight decay", low=0.0, high=1.0, recipe=True)
    warmup_epochs: float = option(1.0, help="linear warm-up, in epochs", low=0.0, high=1000.0)
    label_smoothing: float = option(0.0, help="label smoothing", low=0.0, high=0.99, recipe=True)
    image_size: int = option(128, help="training crop side in pixels", low=16, high=1024)
    min_scale: float = option(0.35, help="random resized crop: smallest area fraction", low=0.01, high=1.0)
    seed: int = option(0, help="seed of the initial weights, data order and augmentation", low=0, high=2**31 - 1)
    checkpoint_every: int = option(0, help="also checkpoint every N optimizer steps (0: end of epoch only)",
                                   low=0, high=10**9)
    cache_dir: str | None = option(None, help="decoded-image cache (default $SQUEEZENET_CACHE or "
                                   "~/.cache/squeezenet)")
    skip_bad: bool = option(False, help="skip unreadable images with a warning")
    init_from: str | None = option(None, help="start from weights squeezenet.load reads (transfer)")
    freeze_features: bool = option(False, help="train the classifier only (with --init-from)", recipe=True)
    threads: int | None = option(None, help="torch threads per process (default: cores / processes)", low=1,
                                 high=1024)
    max_steps: int | None = option(None, help="stop after this many steps; the schedule still spans --epochs "
                                   "(probes)", low=1, high=10**9)

    def __post_init__(self) -> None:
        check(self)

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
    # Transfer (`--init-from`, its default recipe): the started weights keep their architecture and, unless told,
    # their resolution (`transfer.started_config`); no label smoothing and a tenth of bn's rate with a short warm-up:
    # a head started from the matching ImageNet rows is right already (on Imagenette classes, before any step)
    # and smoothing or lr 0.1 push its large logits below the final ReLU; the features frozen (--no-freeze-features
    # trains them too, with a lower --lr: at 0.01 the authors' v1.0 diverges) (results/train/transfer/)
    "transfer": {"model_overrides": {}, "lr": 0.01, "warmup_epochs": 0.2, "batch_size": 128, "accum": 1,
                 "label_smoothing": 0.0, "freeze_features": True},
}


def default_recipe(model: str, init_from: str | None = None) -> str:
    return "transfer" if init_from else "alexnet" if model == "alexnet" else "bn"


def recipe_config(recipe: str | None, model_overrides: dict | None = None, **options) -> TrainConfig:
    """A TrainConfig from a named recipe (None: the model's default); `options` (None = recipe default) and
    `model_overrides` win."""
    recipe = recipe or default_recipe(options.get("model") or TrainConfig.model, options.get("init_from"))
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
