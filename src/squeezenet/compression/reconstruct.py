"""Block reconstruction after quantization (AdaRound, BRECQ, QDrop): each block of the compressed model (conv1, every
Fire module, the head with conv10) learns to reproduce the uncompressed model's output of that block.

Logit distillation on 10 classes' images tunes the network toward what those images show; a block's feature map is
class-agnostic, so matching it on a thousand unlabelled images keeps the 1000-class behaviour. Blocks go in order:
block k sees the compressed model's own input (the output of the blocks already reconstructed), so it also learns
to undo the error it inherits, and its target is the uncompressed block's output on the uncompressed input
(BRECQ). Then all blocks are tuned together, each still matching its own target. What trains is what
`sharing.WeightSharing` holds: the shared levels, the latent weights (re-assigned to the level of least error +
lambda x bits after every step, starting from the rate-distortion assignment) and the biases.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from squeezenet.compression.finetune import adam_cosine
from squeezenet.compression.sharing import WeightSharing
from squeezenet.errors import ConfigError


class _Head(nn.Module):
    """The classifier of a SqueezeNet as one block (dropout, conv10, ReLU, pool, flatten)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(x)


def blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of each block: a feature layer with convolutions and the layers after it that have none
    (batch norm, ReLU, pooling), then the head. Names are the model's parameter prefixes ('features.3',
    'classifier')."""
    if not (hasattr(model, "features") and hasattr(model, "forward_head")):
        raise ConfigError("block reconstruction needs a SqueezeNet (features, then a head)")
    groups: list[tuple[str, list[nn.Module]]] = []
    for name, child in model.features.named_children():
        if not groups or any(isinstance(m, nn.Conv2d) for m in child.modules()):
            groups.append((f"features.{name}", [child]))
        else:
            groups[-1][1].append(child)
    return [(n, nn.Sequential(*m)) for n, m in groups] + [("classifier", _Head(model))]


def _owned(name: str, prefix: str) -> bool:
    return name.startswith(prefix + ".")


def _loss(out: torch.Tensor, target: torch.Tensor, scale: float) -> torch.Tensor:
    """Squared error relative to the target's mean square, so every block's loss starts near the same size."""
    return F.mse_loss(out, target) / scale


def reconstruct(student: nn.Module, teacher: nn.Module, sharing: WeightSharing, images: list[torch.Tensor],
                steps: int, joint_steps: int, lr: float, seed: int = 0,
                log: Callable[[str], None] = print) -> list[dict]:
    """Block by block (`steps` each, on batches of `images`, the reconstruction set), then `joint_steps` of all
    blocks together. Returns a row per block: its relative squared error before and after."""
    student.eval()
    teacher.eval()
    gen = torch.Generator().manual_seed(seed)
    s_blocks, t_blocks = blocks(student), blocks(teacher)
    xs, xt, rows, scales = list(images), list(images), [], []
    for (name, s), (_, t) in zip(s_blocks, t_blocks, strict=True):
        with torch.no_grad():
            yt = [t(x) for x in xt]
            scale = float(sum((y.float() ** 2).mean() for y in yt) / len(yt)) or 1.0
            before = float(sum(_loss(s(x), y, scale) for x, y in zip(xs, yt, strict=True)) / len(xs))
        scales.append(scale)
        names = [n for n in sharing.books if _owned(n, name)]
        params = [sharing.books[n] for n in names] + [sharing.latent[n] for n in names if n in sharing.latent]
        params += [p for n, p in student.named_parameters() if _owned(n, name) and n not in sharing.books]

        def step(s=s, xs=xs, yt=yt, scale=scale) -> torch.Tensor:
            j = int(torch.randint(len(xs), (1,), generator=gen))
            return _loss(s(xs[j]), yt[j], scale)

        if steps and params:
            adam_cosine(params, lr, steps, step, sharing.accumulate, lambda names=names: sharing.sync(names),
                  f"reconstructing {name}")
        with torch.no_grad():
            xs = [s(x) for x in xs]
            after = float(sum(_loss(x, y, scale) for x, y in zip(xs, yt, strict=True)) / len(xs))
        xt = yt
        rows.append({"block": name, "error_before": before, "error_after": after})
        log(f"reconstruction {name}: relative squared error {before:.4f} -> {after:.4f}")
    if joint_steps:
        biases = [p for n, p in student.named_parameters() if n not in sharing.books]

        def joint() -> torch.Tensor:
            x = images[int(torch.randint(len(images), (1,), generator=gen))]
            loss, hs, ht = x.new_zeros(()), x, x
            for (_, s), (_, t), scale in zip(s_blocks, t_blocks, scales, strict=True):
                with torch.no_grad():
                    ht = t(ht)
                hs = s(hs)
                loss = loss + _loss(hs, ht, scale)
            return loss / len(scales)

        last = adam_cosine(sharing.parameters() + biases, lr, joint_steps, joint, sharing.accumulate, sharing.sync,
                     "reconstructing all blocks jointly")
        log(f"reconstruction, joint: mean relative squared error {last:.4f}")
    return rows
