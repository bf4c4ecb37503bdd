"""Processes under torchrun: the process group, workers that stop with their launcher, a split decoded once.

Each process takes its slice of every global batch and DDP averages the gradients (see `loop`); rank 0 decodes
the images into the shared cache while the others wait for it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist

from squeezenet.data.cache import decode_cached
from squeezenet.data.folders import list_samples
from squeezenet.models.preprocessing import Preprocessing
from squeezenet.signals import die_with_parent
from squeezenet.training.recipes import TrainConfig


def init_processes() -> tuple[int, int, int]:
    """(rank, world size, local world size); initialises the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if "TORCHELASTIC_RUN_ID" in os.environ:  # a worker checkpoints (see `loop`) when its launcher dies
        die_with_parent()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")  # CPU tensors: gloo
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))


def load_split(root: Path, classes, pre: Preprocessing, cfg: TrainConfig, rank: int, world: int,
               exact: bool = False):
    """Rank 0 decodes (or finds) the cache; the other ranks wait for it, then everyone memory-maps it.

    The cache is resized as the model's preprocessing says (shorter side or warp); `exact` (validation) keeps the
    very pixels `evaluate` will see at the training crop, so that the two report the same figure."""
    samples = list_samples(root, classes)
    side, warp = pre.resize_size or cfg.image_size, pre.resize_mode == "warp"
    kw = {"warp": warp, "exact": pre if exact else None}
    if rank == 0:
        decoded = decode_cached(samples, side, cfg.cache_dir, cfg.skip_bad, progress=True, **kw)
    if world > 1:
        dist.barrier()
    if rank != 0:
        decoded = decode_cached(samples, side, cfg.cache_dir, cfg.skip_bad, progress=False, rebuild=False, **kw)
    return decoded
