"""A run's checkpoint: everything random or learnt, so that a resume is bit-identical to an unbroken run.

Written atomically by rank 0 with every rank's RNG state; read with `weights_only=True`, so a file planted in a
run folder can hold no code, and a damaged one is a one-line error naming it.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

import torch
import torch.distributed as dist

from squeezenet.atomic import atomic_path
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.torchvision import safe_load

CHECKPOINT = "checkpoint.pt"
KEYS = {"model", "optimizer", "scheduler", "rng", "epoch", "step", "order", "history"}


def save_checkpoint(path: Path, state: dict, rank: int, world: int) -> None:
    """Add every rank's RNG state (gathered: a collective, so every rank calls this) and write on rank 0."""
    rngs = [torch.get_rng_state()]
    if world > 1:
        rngs = [torch.empty_like(rngs[0]) for _ in range(world)]
        dist.all_gather(rngs, torch.get_rng_state())
    if rank == 0:
        with atomic_path(path) as tmp:
            torch.save(state | {"rng": rngs}, tmp)


def load_checkpoint(path: Path) -> dict:
    state = safe_load(path, "checkpoint of this project")
    if not isinstance(state, dict) or not KEYS <= set(state):
        raise SqueezeNetError(f"{path}: not a checkpoint of this project (missing {sorted(KEYS - set(state or {}))})")
    return state


def check_run_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """A run folder is never silently replaced: a started or finished run is resumed or overwritten on purpose."""
    if resume and not (out / CHECKPOINT).is_file():
        raise SqueezeNetError(f"nothing to resume in {out}: no {CHECKPOINT} (start the run again with --overwrite)")
    done = [n for n in (CHECKPOINT, "model.safetensors") if (out / n).exists()]
    if not resume and done and not overwrite:
        raise SqueezeNetError(f"{out} already holds a run ({', '.join(done)}): --resume it, or --overwrite to start "
                              "again")


def lock_run_folder(out: Path):
    """Hold RUN/.lock for the whole run, so that two `train` into one folder at once are refused."""
    out.mkdir(parents=True, exist_ok=True)
    handle = open(out / ".lock", "a")  # noqa: SIM115  (held open until the process ends)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SqueezeNetError(f"{out} is in use by another `squeezenet train`") from None
    return handle
