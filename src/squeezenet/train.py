"""Training on an ImageNet-style folder: the recipe, the loop, checkpoints, bit-exact resume and DDP.

The whole loop is `train()`, read top to bottom. Speed comes from doing less work (airbench-style): images are
decoded once into a memory-mapped uint8 cache (`data.decode_cached`), batches are gathered from it and augmented
in one batched `grid_sample`, the network runs channels_last.

Resume is bit-exact because everything random is either in the checkpoint (model, optimizer, scheduler, the global
torch RNG that drives dropout, the epoch's data order) or derived from (seed, step) (the augmentation).
Distributed: torchrun starts the processes, each takes its slice of every global batch, DDP averages the
gradients, so the global batch (`batch_size`) and the result do not depend on the number of processes.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .alexnet import AlexNet
from .atomic import atomic_path, write_text
from .config import SqueezeNetConfig
from .data import center_crop, decode_cached, list_samples, random_resized_crop, random_resized_crop_params, to_nchw
from .errors import SqueezeNetError
from .model import SqueezeNet
from .preprocess import Preprocessing, preset
from .registry import create_model
from .weights import Weights, imagenet_classes, load, save

CHECKPOINT = "checkpoint.pt"


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


def _dist() -> tuple[int, int, int]:
    """(rank, world size, local world size); initialises the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")  # CPU tensors: gloo
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))


def _load_split(root: Path, classes, pre: Preprocessing, cfg: TrainConfig, rank: int, world: int):
    """Rank 0 decodes (or finds) the cache; the other ranks wait for it, then everyone memory-maps it.

    The cache is resized as the model's preprocessing says (shorter side or warp), so that evaluation during
    training is the centre crop the weights will be evaluated with later."""
    samples = list_samples(root, classes)
    side, warp = pre.resize_size or cfg.image_size, pre.resize_mode == "warp"
    if rank == 0:
        decoded = decode_cached(samples, side, cfg.cache_dir, cfg.skip_bad, progress=True, warp=warp)
    if world > 1:
        dist.barrier()
    if rank != 0:
        decoded = decode_cached(samples, side, cfg.cache_dir, cfg.skip_bad, progress=False, rebuild=False, warp=warp)
    return decoded


def build_model(cfg: TrainConfig, classes: list[str]) -> tuple[nn.Module, Preprocessing]:
    """A fresh model, or one started from `init_from` with a new classifier (conv10, fc8) when the classes differ.

    When the new classes are among the old ones (Imagenette's wnids in the authors' ImageNet model), the new
    classifier starts from the matching rows of the old one.
    """
    alexnet = {"image_size": cfg.image_size} if cfg.model == "alexnet" else {}
    if not cfg.init_from:
        kw = dict(cfg.model_overrides) | alexnet | {"num_classes": len(classes)}
        try:
            return create_model(cfg.model, **kw), preset("torchvision", cfg.image_size)
        except ValueError as e:
            raise SqueezeNetError(f"{e} (a recipe or option for another architecture?)") from None
    w = load(cfg.init_from)
    config = w.config | {k: v for k, v in cfg.model_overrides.items() if k == "dropout"} | {
        "num_classes": len(classes)}
    if w.arch == "squeezenet":
        model: nn.Module = SqueezeNet(SqueezeNetConfig.from_dict(config))
    else:
        model = AlexNet(**config | {"image_size": cfg.image_size})
    head = "classifier.1." if w.arch == "squeezenet" else "classifier.6."
    state = dict(w.state_dict)
    old_ids = w.class_ids or w.classes
    if old_ids != classes:
        keys = (head + "weight", head + "bias")
        if set(classes) <= set(old_ids) and all(k in state for k in keys):
            rows = torch.tensor([old_ids.index(c) for c in classes])
            state = state | {k: state[k][rows] for k in keys}
        else:
            state = {k: v for k, v in state.items() if not k.startswith(head)}
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise SqueezeNetError(f"{cfg.init_from} does not fit at {cfg.image_size} px: {str(e).splitlines()[-1]}") \
            from None
    return model, w.preprocessing.at_size(cfg.image_size)


def class_names(ids: list[str]) -> list[str]:
    """Readable names for ImageNet wnids (Imagenette's folders) when the shared class list is at hand."""
    try:
        wnids, names = imagenet_classes()
    except SqueezeNetError:
        return ids
    lookup = dict(zip(wnids, names, strict=True))
    return [lookup.get(c, c) for c in ids]


def lr_lambda(cfg: TrainConfig, total_steps: int, warmup_steps: int):
    """Linear warm-up, then the paper's poly (power 1) decay to zero at the last step."""
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, 1 - (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return f


@torch.no_grad()
def evaluate(model: nn.Module, val, pre: Preprocessing, size: int, rank: int, world: int,
             device: torch.device, batch: int = 200) -> dict:
    """Top-1/top-5/loss on this rank's shard, summed over ranks; for SqueezeNet also the share of conv10 outputs
    <= 0 (what a final ReLU zeroes: the symptom of the known stall)."""
    model.eval()
    net = model.module if hasattr(model, "module") else model
    dead = []
    final = getattr(net, "final_conv", None)
    hook = final.register_forward_hook(lambda m, i, o: dead.append((o <= 0).float().mean().item())) if final else None
    idx = torch.arange(rank, len(val), world)
    sums = torch.zeros(5, dtype=torch.float64)  # loss, top1, top5, n, dead
    for s in range(0, len(idx), batch):
        j = idx[s:s + batch].numpy()
        x = pre.normalize(center_crop(to_nchw(val.images[j]), size).to(device))
        y = torch.from_numpy(val.labels[j]).to(device)
        out = net(x.contiguous(memory_format=torch.channels_last))
        top5 = out.topk(min(5, out.shape[1]), 1).indices
        sums += torch.tensor([F.cross_entropy(out, y, reduction="sum").item(), (top5[:, 0] == y).sum().item(),
                              (top5 == y[:, None]).any(1).sum().item(), len(j), dead[-1] * len(j) if dead else 0],
                             dtype=torch.float64)
    if world > 1:
        dist.all_reduce(sums)
    n = max(sums[3].item(), 1)
    out = {"val_loss": sums[0].item() / n, "val_top1": sums[1].item() / n, "val_top5": sums[2].item() / n}
    if hook is None:
        return out
    hook.remove()
    return out | {"conv10_nonpositive": sums[4].item() / n}


def plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(ep, [h["train_loss"] for h in history], label="train")
    a.plot(ep, [h["val_loss"] for h in history], label="val")
    a.set(xlabel="epoch", ylabel="loss")
    a.legend()
    b.plot(ep, [h["train_acc"] for h in history], label="train top-1")
    b.plot(ep, [h["val_top1"] for h in history], label="val top-1")
    b.plot(ep, [h["val_top5"] for h in history], label="val top-5")
    b.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1))
    b.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def train(cfg: TrainConfig, resume: bool = False) -> dict:
    """Run (or continue) a training run in `cfg.out`; returns the last epoch's metrics."""
    rank, world, local_world = _dist()
    torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // local_world))
    out = Path(cfg.out)
    data = Path(cfg.data)
    if not (data / "train").is_dir():
        raise SqueezeNetError(f"{data} has no train/ folder (expected DIR/train/<class>/*.JPEG and DIR/val/...)")
    micro, rem = divmod(cfg.batch_size, cfg.accum * world)
    if rem or micro < 1:
        raise SqueezeNetError(f"batch size {cfg.batch_size} is not divisible by accum {cfg.accum} x {world} "
                              "process(es)")

    # data: decoded once, memory-mapped
    torch.manual_seed(cfg.seed)  # the initial weights
    model, pre = build_model(cfg, list_samples(data / "train").classes)
    train_set = _load_split(data / "train", None, pre, cfg, rank, world)
    val_set = _load_split(data / "val", train_set.classes, pre, cfg, rank, world) if (data / "val").is_dir() else None
    steps_per_epoch = len(train_set) // cfg.batch_size
    if steps_per_epoch < 1:
        raise SqueezeNetError(f"{len(train_set)} training images are fewer than one batch of {cfg.batch_size}")
    total_steps = steps_per_epoch * cfg.epochs

    # model and recipe
    if cfg.freeze_features:
        for p in model.features.parameters():
            p.requires_grad_(False)
    cuda = torch.cuda.is_available()  # one GPU per process (nccl) when there are GPUs, else the CPU (gloo)
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if cuda else torch.device("cpu")
    model = model.to(device, memory_format=torch.channels_last)
    net = model
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, total_steps, warmup))
    torch.manual_seed(cfg.seed + rank)  # dropout; per rank, restored from the checkpoint on resume
    epoch, step_in_epoch, history, order = 0, 0, [], None
    ckpt = out / CHECKPOINT
    if resume and ckpt.is_file():
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"][rank % len(state["rng"])])
        epoch, step_in_epoch, history, order = state["epoch"], state["step"], state["history"], state["order"]
    elif rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "config.json", json.dumps(asdict(cfg), indent=2))

    def save_checkpoint(epoch: int, step: int, order: torch.Tensor | None) -> None:
        rngs = [torch.get_rng_state()]
        if world > 1:
            rngs = [torch.empty_like(rngs[0]) for _ in range(world)]
            dist.all_gather(rngs, torch.get_rng_state())
        if rank == 0:
            state = {"model": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                     "rng": rngs, "epoch": epoch, "step": step, "order": order, "history": history}
            with atomic_path(ckpt) as tmp:
                torch.save(state, tmp)

    lo, hi = rank * micro * cfg.accum, (rank + 1) * micro * cfg.accum  # this rank's slice of a global batch
    global_step = epoch * steps_per_epoch + step_in_epoch
    while epoch < cfg.epochs and (cfg.max_steps is None or global_step < cfg.max_steps):
        if order is None:
            order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch))
        model.train()
        if cfg.freeze_features:
            net.features.eval()  # frozen BatchNorm statistics too
        t0, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
        bar = tqdm(total=steps_per_epoch, initial=step_in_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=rank != 0, dynamic_ncols=True)
        while step_in_epoch < steps_per_epoch and (cfg.max_steps is None or global_step < cfg.max_steps):
            batch = order[step_in_epoch * cfg.batch_size:(step_in_epoch + 1) * cfg.batch_size]
            # augmentation drawn for the whole global batch, then sliced: independent of the process count
            g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + global_step)
            theta = random_resized_crop_params(cfg.batch_size, g, (cfg.min_scale, 1.0))[lo:hi]
            mine = batch[lo:hi].numpy()
            for a in range(cfg.accum):
                j = mine[a * micro:(a + 1) * micro]
                x = random_resized_crop(to_nchw(train_set.images[j]), cfg.image_size, theta[a * micro:(a + 1) * micro])
                x = pre.normalize(x.to(device)).contiguous(memory_format=torch.channels_last)
                y = torch.from_numpy(train_set.labels[j]).to(device)
                sync = world == 1 or a == cfg.accum - 1
                with nullcontext() if sync else model.no_sync():
                    logits = model(x)
                    loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
                    (loss / cfg.accum).backward()
                loss_sum += loss.item() * len(j)
                correct += (logits.argmax(1) == y).sum().item()
                seen += len(j)
            opt.step()
            opt.zero_grad(set_to_none=True)
            sched.step()
            step_in_epoch += 1
            global_step += 1
            if not math.isfinite(loss_sum):
                raise SqueezeNetError(f"loss became {loss_sum} at step {global_step}; lower --lr")
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}",
                            img_s=f"{seen * world / (time.perf_counter() - t0):.0f}",
                            lr=f"{sched.get_last_lr()[0]:.4f}")
            if cfg.checkpoint_every and global_step % cfg.checkpoint_every == 0 and step_in_epoch < steps_per_epoch:
                save_checkpoint(epoch, step_in_epoch, order)
        bar.close()
        if step_in_epoch < steps_per_epoch:  # max_steps reached mid-epoch
            break
        stats = torch.tensor([loss_sum, correct, seen], dtype=torch.float64)
        if world > 1:
            dist.all_reduce(stats)
        row = {"epoch": epoch + 1, "step": global_step, "train_loss": stats[0].item() / max(stats[2].item(), 1),
               "train_acc": stats[1].item() / max(stats[2].item(), 1), "lr": sched.get_last_lr()[0],
               "seconds": round(time.perf_counter() - t0, 2)}
        if val_set is not None:
            row |= evaluate(model, val_set, pre, cfg.image_size, rank, world, device)
        row["seconds_total"] = round(row["seconds"] + (history[-1]["seconds_total"] if history else 0.0), 2)
        history.append(row)
        epoch, step_in_epoch, order = epoch + 1, 0, None
        save_checkpoint(epoch, 0, None)
        if rank == 0:
            write_text(out / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))
            plot_curves(history, out / "curves.png")
            print(json.dumps(row), flush=True)

    if rank == 0:
        weights = Weights.from_model(net, class_names(train_set.classes), pre, class_ids=train_set.classes,
                                     meta={"trained_by": "squeezenet train", "train_config": asdict(cfg),
                                           "metrics": history[-1] if history else {}})
        save(weights, out / "model.safetensors")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return history[-1] if history else {}

