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
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from squeezenet import progress
from squeezenet.atomic import write_text
from squeezenet.data.augment import random_resized_crop, random_resized_crop_params, to_nchw
from squeezenet.data.cache import DecodedImages
from squeezenet.data.folders import dataset, list_samples
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.safetensors import save
from squeezenet.formats.weights import Weights
from squeezenet.models.preprocessing import Preprocessing
from squeezenet.signals import Deferred, Stopped, deferred
from squeezenet.training.checkpoint import (
    CHECKPOINT,
    check_run_folder,
    load_checkpoint,
    lock_run_folder,
    restore_model,
    save_checkpoint,
)
from squeezenet.training.curves import plot_curves
from squeezenet.training.distributed import init_processes, load_split
from squeezenet.training.evaluation import evaluate_decoded
from squeezenet.training.recipes import TrainConfig, lr_lambda
from squeezenet.training.transfer import build_model, class_names


@dataclass
class _Run:
    """A training run in progress: what the loop reads and updates, and what a checkpoint keeps."""

    cfg: TrainConfig
    rank: int
    world: int
    pre: Preprocessing
    net: nn.Module  # the model itself
    model: nn.Module  # the same, or its DDP wrapper
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    train_set: DecodedImages
    val_set: DecodedImages | None
    device: torch.device
    micro: int  # images per micro-batch on this process
    steps_per_epoch: int
    epoch: int = 0
    step: int = 0  # optimizer steps into the epoch
    history: list = field(default_factory=list)
    order: torch.Tensor | None = None  # the epoch's data order
    partial: list = field(default_factory=lambda: [0.0, 0, 0, 0.0])  # the epoch so far: loss sum, correct, seen, s
    bar: Any = None  # the run's progress bar

    @property
    def global_step(self) -> int:
        return self.epoch * self.steps_per_epoch + self.step

    def running(self) -> bool:
        return self.cfg.max_steps is None or self.global_step < self.cfg.max_steps

    def checkpoint(self) -> None:
        partial = self.partial  # this process's share of the epoch so far; the checkpoint keeps the sum
        if self.world > 1:
            total = torch.tensor(partial[:3], dtype=torch.float64)
            dist.all_reduce(total)
            partial = total.tolist() + partial[3:]
        state = {"model": self.net.state_dict(), "optimizer": self.opt.state_dict(),
                 "scheduler": self.sched.state_dict(), "epoch": self.epoch, "step": self.step,
                 "order": self.order, "history": self.history, "partial": partial}
        save_checkpoint(Path(self.cfg.out) / CHECKPOINT, state, self.rank, self.world)


def _setup(cfg: TrainConfig, resume: bool) -> _Run:
    """Data decoded once, the model on its device (DDP-wrapped under torchrun), SGD and the schedule; the state of
    the last checkpoint when resuming."""
    rank, world, local_world = init_processes()
    torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // local_world))
    data = dataset(cfg.data)
    torch.manual_seed(cfg.seed)  # the initial weights
    net, pre = build_model(cfg, list_samples(data / "train").classes)
    train_set = load_split(data / "train", None, pre, cfg, rank, world)
    if not resume and len(train_set) < cfg.batch_size:
        cfg = _small_batch(cfg, len(train_set), rank)
    micro, rem = divmod(cfg.batch_size, cfg.accum * world)
    if rem or micro < 1:
        raise SqueezeNetError(f"batch size {cfg.batch_size} is not divisible by accum {cfg.accum} x {world} "
                              "process(es)")
    val_set = load_split(data / "val", train_set.classes, pre, cfg, rank, world, exact=True) \
        if (data / "val").is_dir() else None
    steps_per_epoch = len(train_set) // cfg.batch_size
    if steps_per_epoch < 1:
        raise SqueezeNetError(f"{len(train_set)} training images are fewer than one batch of {cfg.batch_size}")
    if cfg.freeze_features:
        for p in net.features.parameters():
            p.requires_grad_(False)
    cuda = torch.cuda.is_available()  # one GPU per process (nccl) when there are GPUs, else the CPU (gloo)
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if cuda else torch.device("cpu")
    net = net.to(device, memory_format=torch.channels_last)
    model = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if cuda else None) \
        if world > 1 else net
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, steps_per_epoch * cfg.epochs, warmup))
    torch.manual_seed(cfg.seed + rank)  # dropout; per rank, restored from the checkpoint on resume
    run = _Run(cfg, rank, world, pre, net, model, opt, sched, train_set, val_set, device, micro, steps_per_epoch)
    out = Path(cfg.out)
    if resume:
        _restore(run, load_checkpoint(out / CHECKPOINT), out / CHECKPOINT)
    elif rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "config.json", json.dumps(_absolute(asdict(cfg)), indent=2))
    return run


def _small_batch(cfg: TrainConfig, images: int, rank: int) -> TrainConfig:
    """A few dozen photos (transfer learning's usual start) get a batch that gives an epoch four steps or more: the
    largest power of two up to a quarter of them, and the learning rate scaled with it (linearly: at the same rate,
    40 photos a class lost a head the authors' model had right, results/train/transfer/); said, and in config.json."""
    batch = max(2, 1 << max(1, images // 4).bit_length() - 1)
    lr = cfg.lr * batch / cfg.batch_size
    if rank == 0:
        print(f"{images} training images are fewer than one batch of {cfg.batch_size}: batch {batch} and lr {lr:g} "
              "instead (--batch-size and --lr to choose)", file=sys.stderr)
    return replace(cfg, batch_size=batch, lr=lr)


def _restore(run: _Run, state: dict, path: Path) -> None:
    """The run as its checkpoint left it; a forged or mismatched one is one line naming the file."""
    restore_model(run.net, state["model"], path)
    try:
        run.opt.load_state_dict(state["optimizer"])
        run.sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"][run.rank % len(state["rng"])])
        run.epoch, run.step, run.history, run.order = (int(state["epoch"]), int(state["step"]), list(state["history"]),
                                                       state["order"])
        saved = state.get("partial", run.partial)  # rank 0 carries the sum, the others start from zero
        run.partial = list(saved) if run.rank == 0 else [0.0, 0, 0, saved[3]]
    except (RuntimeError, ValueError, TypeError, KeyError, IndexError, ZeroDivisionError) as e:
        raise SqueezeNetError(f"{path}: not a checkpoint of this run ({type(e).__name__}: {e})") from None


def _absolute(cfg: dict) -> dict:
    """Paths as absolute ones, so that `--resume` works from any working directory (a bundled name stays)."""
    return cfg | {k: str(Path(cfg[k]).resolve()) for k in ("data", "cache_dir", "init_from")
                  if cfg.get(k) and Path(cfg[k]).exists()}


def _optimizer_step(run: _Run) -> tuple[float, int, int]:
    """One step of the global batch (this process's slice, in `accum` micro-batches): (loss sum, correct, images)."""
    cfg, micro = run.cfg, run.micro
    lo, hi = run.rank * micro * cfg.accum, (run.rank + 1) * micro * cfg.accum  # this rank's slice
    batch = run.order[run.step * cfg.batch_size:(run.step + 1) * cfg.batch_size]
    # augmentation drawn for the whole global batch, then sliced: independent of the process count
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + run.global_step)
    theta = random_resized_crop_params(cfg.batch_size, g, (cfg.min_scale, 1.0))[lo:hi]
    mine = batch[lo:hi].numpy()
    loss_sum, correct, seen = 0.0, 0, 0
    for a in range(cfg.accum):
        j = mine[a * micro:(a + 1) * micro]
        x = random_resized_crop(to_nchw(run.train_set.images[j]), cfg.image_size, theta[a * micro:(a + 1) * micro])
        x = run.pre.normalize(x.to(run.device)).contiguous(memory_format=torch.channels_last)
        y = torch.from_numpy(run.train_set.labels[j]).to(run.device)
        sync = run.world == 1 or a == cfg.accum - 1
        with nullcontext() if sync else run.model.no_sync():
            logits = run.model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            (loss / cfg.accum).backward()
        loss_sum += loss.item() * len(j)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(j)
    run.opt.step()
    run.opt.zero_grad(set_to_none=True)
    run.sched.step()
    run.step += 1
    return loss_sum, correct, seen


def _epoch(run: _Run, stop: Deferred) -> bool:
    """Train until the end of the epoch (True) or `max_steps` (False); then metrics, checkpoint, curves.

    A stop signal is acted on between steps: a checkpoint, then `Stopped` (so `--resume` loses nothing)."""
    cfg = run.cfg
    if run.order is None:
        run.order = torch.randperm(len(run.train_set),
                                   generator=torch.Generator().manual_seed(cfg.seed * 1000 + run.epoch))
    run.model.train()
    if cfg.freeze_features:
        run.net.features.eval()  # frozen BatchNorm statistics too
    t0, start, done0 = time.perf_counter() - run.partial[3], time.perf_counter(), run.partial[2]
    while run.step < run.steps_per_epoch and run.running():
        stats = _optimizer_step(run)
        run.partial = [a + b for a, b in zip(run.partial, stats, strict=False)] + [time.perf_counter() - t0]
        loss_sum, correct, seen, seconds = run.partial
        if not math.isfinite(loss_sum):
            raise SqueezeNetError(f"loss became {loss_sum} at step {run.global_step}; lower --lr")
        run.bar.update(1)
        run.bar.set_postfix(epoch=f"{run.epoch + 1}/{cfg.epochs}", loss=f"{loss_sum / seen:.3f}",
                            acc=f"{correct / seen:.3f}", lr=f"{run.sched.get_last_lr()[0]:.4f}",
                            img_s=f"{(seen - done0) * run.world / (time.perf_counter() - start):.0f}")
        if _stop_requested(run, stop):
            run.checkpoint()
            raise Stopped(stop.signum or 15, f"stopped at step {run.global_step}: checkpoint written to "
                          f"{Path(cfg.out) / CHECKPOINT}; `squeezenet train --resume {cfg.out}` continues")
        if cfg.checkpoint_every and run.global_step % cfg.checkpoint_every == 0 and run.step < run.steps_per_epoch:
            run.checkpoint()
    if run.step < run.steps_per_epoch:  # max_steps reached mid-epoch: kept, so that --resume can go on
        run.checkpoint()
        return False
    _end_epoch(run, *run.partial)
    return True


def _stop_requested(run: _Run, stop: Deferred) -> bool:
    """Whether any process got a stop signal (agreed by all, since the checkpoint is a collective)."""
    flag = torch.tensor([stop.signum or 0])
    if run.world > 1:
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        stop.signum = stop.signum or int(flag) or None
    return bool(flag)


def _end_epoch(run: _Run, loss_sum: float, correct: int, seen: int, seconds: float) -> None:
    stats = torch.tensor([loss_sum, correct, seen], dtype=torch.float64)
    if run.world > 1:
        dist.all_reduce(stats)
    row = {"epoch": run.epoch + 1, "step": run.global_step, "train_loss": stats[0].item() / max(stats[2].item(), 1),
           "train_acc": stats[1].item() / max(stats[2].item(), 1), "lr": run.sched.get_last_lr()[0],
           "seconds": round(seconds, 4)}
    if run.val_set is not None:
        row |= evaluate_decoded(run.model, run.val_set, run.pre, run.cfg.image_size, run.rank, run.world,
                                run.device)
    row["seconds_total"] = round(row["seconds"] + (run.history[-1]["seconds_total"] if run.history else 0.0), 4)
    run.history.append(row)
    run.epoch, run.step, run.order, run.partial = run.epoch + 1, 0, None, [0.0, 0, 0, 0.0]
    run.checkpoint()
    if run.rank == 0:
        out = Path(run.cfg.out)
        write_text(out / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in run.history))
        plot_curves(run.history, out / "curves.png")
        run.bar.write(json.dumps(row))


def train(cfg: TrainConfig, resume: bool = False, overwrite: bool = False) -> dict:
    """Run (or continue) a training run in `cfg.out`; returns the last epoch's metrics. A folder that holds a run
    is refused unless `resume` (continue it) or `overwrite` (start again); one `train` at a time per folder."""
    lock = None
    if int(os.environ.get("RANK", "0")) == 0:
        check_run_folder(Path(cfg.out), resume, overwrite)
        lock = lock_run_folder(Path(cfg.out))
    try:
        return _train(cfg, resume)
    finally:
        if lock is not None:
            lock.close()


def _train(cfg: TrainConfig, resume: bool) -> dict:
    run = _setup(cfg, resume)
    total = min(cfg.epochs * run.steps_per_epoch, cfg.max_steps or 1 << 62)
    run.bar = progress.bar(total=total, initial=run.global_step, desc=f"training {Path(cfg.out).name}",
                           unit="step", disable=True if run.rank else None)
    with run.bar, deferred() as stop:
        while run.epoch < cfg.epochs and run.running() and _epoch(run, stop):
            pass
    if run.rank == 0:
        weights = Weights.from_model(run.net, class_names(run.train_set.classes), run.pre,
                                     class_ids=run.train_set.classes,
                                     meta={"trained_by": "squeezenet train", "train_config": asdict(run.cfg),
                                           "metrics": run.history[-1] if run.history else {}})
        save(weights, Path(cfg.out) / "model.safetensors")
    if run.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return run.history[-1] if run.history else {}
