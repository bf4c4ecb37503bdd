"""Low-rank factorisation of AlexNet's fully connected layers (Denton et al., 2014): Table 2's SVD row.

The truncated SVD W ~ U_r S_r V_r^T is the best rank-r approximation in squared error (Eckart-Young). It is stored
as two layers, `first` = S_r^1/2 V_r^T (r x n, no bias) and `second` = U_r S_r^1/2 (m x r, W's bias):
r (m + n) + m parameters instead of m n + m. Splitting S evenly puts both factors on one scale, which matters when
they are then fine-tuned, pruned or quantized. The ranks go into the configuration (`AlexNet(ranks=...)`), so the
result is ordinary weights that `load` reads and `build` rebuilds.
"""

from __future__ import annotations

import torch

from squeezenet.errors import SqueezeNetError
from squeezenet.formats.weights import Weights
from squeezenet.models.alexnet import FC_NAMES, AlexNet, LowRankLinear
from squeezenet.models.registry import architecture


def lowrank_params(m: int, n: int, rank: int) -> int:
    """Parameters of an m x n layer (with bias) factorised at `rank`."""
    return rank * (m + n) + m


def parse_ranks(spec: str, model: AlexNet) -> dict[str, int]:
    """'fc6=256,fc7=128' as given, or one rank ('256') for every fc layer it makes smaller."""
    try:
        if "=" not in spec:
            r = int(spec)
            sizes = {k: m.weight.shape for k, m in model.layers().items() if k in FC_NAMES}
            return {k: r for k, (m, n) in sizes.items() if lowrank_params(m, n, r) < m * n + m}
        ranks = {k.strip(): int(v) for k, v in (item.split("=") for item in spec.split(","))}
    except ValueError:
        raise SqueezeNetError(f"bad ranks {spec!r}: expected e.g. 256 or fc6=256,fc7=128") from None
    if not set(ranks) <= set(FC_NAMES):
        raise SqueezeNetError(f"bad ranks {spec!r}: the fully connected layers are {', '.join(FC_NAMES)}")
    return ranks


def svd_factors(w: torch.Tensor, rank: int, oversample: int = 16, iters: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """(first, second) with second @ first the rank-`rank` truncated SVD of `w`.

    Randomized (Halko et al., 2011: `rank + oversample` random directions, `iters` power iterations): on a
    4096 x 4096 matrix its error was within 1% of the exact SVD's, in 2 s instead of 31 s (one thread). Exact when
    the rank is a large part of the smaller side (a thin matrix: the exact SVD is then as cheap).
    """
    w = w.detach().float()
    if 4 * (rank + oversample) >= min(w.shape):
        u, s, vh = torch.linalg.svd(w, full_matrices=False)
        v = vh.T
    else:
        u, s, v = torch.svd_lowrank(w, q=rank + oversample, niter=iters)
    root = s[:rank].sqrt()
    return (root[:, None] * v[:, :rank].T).contiguous(), (u[:, :rank] * root).contiguous()


def factorize(weights: Weights, ranks: dict[str, int]) -> Weights:
    """The same AlexNet with the fc layers named in `ranks` factorised; the other tensors are copied."""
    if weights.arch != "alexnet":
        raise SqueezeNetError(f"SVD factorises AlexNet's fully connected layers; these weights are {weights.arch}")
    model = weights.build()
    layers = model.layers()
    done = [k for k in ranks if isinstance(layers[k], LowRankLinear)]
    if done:
        raise SqueezeNetError(f"{done[0]} is already factorised")
    for k, r in ranks.items():
        if not 1 <= r <= min(layers[k].weight.shape):
            raise SqueezeNetError(f"rank {r} for {k}: must be in 1..{min(layers[k].weight.shape)}")
    config = weights.config | {"ranks": dict(weights.config.get("ranks") or {}) | ranks}
    state = dict(weights.state_dict)
    where = {m: n for n, m in model.named_modules()}
    for k, r in ranks.items():
        prefix = where[layers[k]]
        first, second = svd_factors(state.pop(f"{prefix}.weight"), r)
        state |= {f"{prefix}.first.weight": first, f"{prefix}.second.weight": second,
                  f"{prefix}.second.bias": state.pop(f"{prefix}.bias")}
    with torch.device("meta"):
        order = list(architecture("alexnet", config).state_dict())
    meta = dict(weights.meta) | {"svd_ranks": config["ranks"]}
    return Weights("alexnet", config, {k: state[k] for k in order}, weights.classes, weights.preprocessing,
                   weights.class_ids, meta)
