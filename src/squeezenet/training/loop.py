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
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from squeezenet.atomic import atomic_path, write_text
from squeezenet.data.augment import random_resized_crop, random_resized_crop_params, to_nchw
from squeezenet.data.cache import decode_cached
from squeezenet.data.folders import list_samples
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.safetensors import save
from squeezenet.formats.weights import Weights, imagenet_classes, load
from squeezenet.models.preprocessing import Preprocessing, preset
from squeezenet.models.registry import architecture, create_model
from squeezenet.training.curves import plot_curves
from squeezenet.training.evaluation import evaluate_decoded
from squeezenet.training.recipes import TrainConfig, lr_lambda

CHECKPOINT = "checkpoint.pt"


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
        except SqueezeNetError as e:
            raise SqueezeNetError(f"{e} (a recipe or option for another architecture?)") from None
    w = load(cfg.init_from)
    config = w.config | {k: v for k, v in cfg.model_overrides.items() if k == "dropout"}
    if w.arch == "alexnet":
        config |= {"image_size": cfg.image_size}
    model = architecture(w.arch, config)
    state = dict(w.state_dict)
    old_ids = w.class_ids or w.classes
    if old_ids != classes:  # a new head; its rows taken from the old one when the classes are among the old
        model.reset_classifier(len(classes))
        keys = model.head_keys
        if set(classes) <= set(old_ids) and all(k in state and state[k].shape[0] == len(old_ids) for k in keys):
            rows = torch.tensor([old_ids.index(c) for c in classes])
            state = state | {k: state[k][rows] for k in keys}
        else:
            state = {k: v for k, v in state.items() if k not in keys and not k.startswith("classifier.6.")}
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
            row |= evaluate_decoded(model, val_set, pre, cfg.image_size, rank, world, device)
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
