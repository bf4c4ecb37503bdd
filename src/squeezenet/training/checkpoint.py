"""A run's checkpoint: everything random or learnt, so that a resume is bit-identical to an unbroken run.

Written atomically by rank 0 with every rank's RNG state; read with `weights_only=True`, so a file planted in a
run folder can hold no code, and a damaged one is a one-line error naming it.
"""

from __future__ import annotations

import fcntl
import io
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from squeezenet.atomic import write_bytes
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.torchvision import MAX_STATE_DICT_BYTES, safe_load
from squeezenet.formats.weights import mismatch

CHECKPOINT = "checkpoint.pt"
KEYS = {"model", "optimizer", "scheduler", "rng", "epoch", "step", "order", "history"}
MAX_CHECKPOINT_BYTES = 2 * MAX_STATE_DICT_BYTES  # the weights, the optimizer's momentum of each, the sample order


def save_checkpoint(path: Path, state: dict, rank: int, world: int) -> None:
    """Add every rank's RNG state (gathered: a collective, so every rank calls this) and write on rank 0."""
    rngs = [torch.get_rng_state()]
    if world > 1:
        rngs = [torch.empty_like(rngs[0]) for _ in range(world)]
        dist.all_gather(rngs, torch.get_rng_state())
    if rank == 0:
        buf = io.BytesIO()
        torch.save(state | {"rng": rngs}, buf)
        write_bytes(path, buf.getvalue())  # a full disk: an OSError naming the file, not torch's RuntimeError


def load_checkpoint(path: Path) -> dict:
    """A run's state as `save_checkpoint` wrote it; an empty, truncated, planted or foreign file is one line."""
    state = safe_load(path, "checkpoint of this project", MAX_CHECKPOINT_BYTES)
    if not isinstance(state, dict) or not KEYS <= set(state):
        missing = sorted(KEYS - set(state)) if isinstance(state, dict) else sorted(KEYS)
        raise SqueezeNetError(f"{path}: not a checkpoint of this project (missing {', '.join(missing)})")
    model = state["model"]
    if not isinstance(model, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in model.items()):
        raise SqueezeNetError(f"{path}: not a checkpoint of this project ('model' is not a state_dict)")
    return state


def restore_model(net: nn.Module, state_dict: dict, path: Path) -> None:
    """`net.load_state_dict` of a checkpoint's weights: those of another architecture (a run folder resumed with
    other model options) are one line naming the file and the first mismatch, not PyTorch's list of them all."""
    try:
        net.load_state_dict(state_dict)
    except RuntimeError:
        what = mismatch({k: tuple(v.shape) for k, v in net.state_dict().items()},
                        {k: tuple(v.shape) for k, v in state_dict.items()})
        raise SqueezeNetError(f"{path}: checkpoint of another architecture: {what or 'tensors do not load'}") from None


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
