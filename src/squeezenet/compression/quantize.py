"""Trained quantization (weight sharing), Deep Compression's second stage.

Per layer, a 1-D k-means over the surviving (non-zero) weights gives 2^bits - 1 shared values; code 0 stays
reserved for zero, so pruning survives quantization. Linear initialization (evenly spaced between min and max)
is the default because it keeps the rare large weights that matter most (Han et al., Fig. 4); k-means++ and
density (quantile) initialization are there for comparison, and `optimal` starts Lloyd from the exact
least-squares solution (dynamic programming), which matters when re-clustering an already quantized model.
`sharing.WeightSharing` then fine-tunes them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from squeezenet.errors import ConfigError
from squeezenet.formats.weights import Quantized

INITS = ("linear", "kmeans++", "density", "optimal")


OPTIMAL_GROUPS = 1024  # the exact k-means runs over at most this many groups of values (bins of the sorted weights)


def _optimal_centroids(v: np.ndarray, k: int, imp: np.ndarray, penalty: float = 0.0) -> torch.Tensor:
    """Globally optimal 1-D k-means by dynamic programming over groups of sorted values (Wang & Song, 2011).

    Each value's squared error counts `imp` times (importance, e.g. the Fisher information of the weight). With
    `penalty` > 0 the clustering is entropy-constrained (Chou et al., 1989): a cluster holding n of the N values
    also costs `penalty` per bit of its ideal code length, n * log2(N / n), and fewer than k clusters may be used.
    The values are grouped (distinct values when there are few, else bins whose edges mix quantiles and an even
    grid, so both the dense centre and the tails are resolved); cluster boundaries fall between groups, and the
    cost of a cluster comes from exact prefix sums. Lloyd's iterations from a fixed start stop in a local
    optimum; on the authors' 8-bit SqueezeNet re-clustered to 6 bits this has 2-5x less squared error.
    """
    distinct, g = np.unique(v, return_inverse=True)
    if len(distinct) > OPTIMAL_GROUPS:
        half = OPTIMAL_GROUPS // 2
        edges = np.unique(np.concatenate([np.quantile(v, np.linspace(0, 1, half + 1)),
                                          np.linspace(v.min(), v.max(), half + 1)]))
        g = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(edges) - 2)
    cnt = np.bincount(g).astype(np.float64)
    s1, s2, w = np.bincount(g, imp * v), np.bincount(g, imp * v * v), np.bincount(g, imp)
    keep = cnt > 0
    s1, s2, w, cnt = s1[keep], s2[keep], np.maximum(w[keep], 1e-300), cnt[keep]
    n = len(w)
    k = min(k, n)
    S1, S2, W, C = (np.concatenate([[0.0], np.cumsum(a)]) for a in (s1, s2, w, cnt))
    i, j = np.arange(n + 1)[:, None], np.arange(n + 1)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        cost = np.where(j > i, S2[j] - S2[i] - (S1[j] - S1[i]) ** 2 / (W[j] - W[i]), np.inf)  # of groups [i, j)
        if penalty > 0:
            span = C[j] - C[i]
            cost += np.where(j > i, penalty * span * np.log2(C[-1] / span), 0.0)
    best, back, ends = cost[0], [], [cost[0][n]]
    for _ in range(1, k):
        total = best[:, None] + cost
        arg = total.argmin(0)
        back.append(arg)
        best = total[arg, np.arange(n + 1)]
        ends.append(best[n])
    bounds = [n]
    for arg in reversed(back[:int(np.argmin(ends))]):
        bounds.append(int(arg[bounds[-1]]))
    bounds = [0, *bounds[::-1]]
    c = [(S1[b] - S1[a]) / (W[b] - W[a]) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    return torch.tensor(sorted(c), dtype=torch.float64)


def kmeans_1d(values: torch.Tensor, k: int, init: str = "linear", iters: int = 50, seed: int = 0,
              importance: torch.Tensor | None = None, penalty: float = 0.0) -> torch.Tensor:
    """k sorted centroids of a 1-D sample by Lloyd's algorithm (assignment by the midpoints between centroids).

    `importance` weights each value's squared error; `penalty` (init 'optimal' only) makes the clustering
    entropy-constrained; see `_optimal_centroids`.
    """
    if init not in INITS:
        raise ConfigError(f"unknown k-means init {init!r}; choose one of {', '.join(INITS)}")
    if penalty and init != "optimal":
        raise ConfigError("rate (entropy-constrained clustering) needs init 'optimal'")
    v = values.detach().double().flatten()
    imp = torch.ones_like(v) if importance is None else importance.detach().double().flatten()
    imp = imp.clamp(min=1e-6 * float(imp.mean()) if imp.numel() else 0.0)  # zero importance would divide by zero
    if v.numel() == 0:
        return torch.zeros(k, dtype=torch.float64)
    lo, hi = v.min(), v.max()
    if init == "linear":
        c = torch.linspace(float(lo), float(hi), k, dtype=torch.float64)
    elif init == "optimal":
        c = _optimal_centroids(v.numpy(), k, imp.numpy(), penalty)
        if len(c) < k or penalty:  # fewer clusters than codes: pad the codebook (unused codes cost nothing)
            return torch.cat([c, c[-1:].expand(k - len(c))])
    elif init == "density":
        c = torch.quantile(v[torch.randperm(v.numel(), generator=torch.Generator().manual_seed(seed))[:1 << 20]],
                           torch.linspace(0, 1, k, dtype=torch.float64))
    else:
        g = torch.Generator().manual_seed(seed)
        c = v[torch.randint(v.numel(), (1,), generator=g)]
        for _ in range(1, k):
            d2 = ((v[:, None] - c[None, :]) ** 2).min(1).values
            c = torch.cat([c, v[torch.multinomial(d2 + 1e-30, 1, generator=g)]])
        c = c.sort().values
    # Lloyd on the sorted values: a cluster is the run between two midpoints, its sums two prefix-sum lookups, so an
    # iteration costs O(k log n) instead of O(n log k) (AlexNet's layers hold millions of weights)
    order = v.argsort()
    vs, ws = v[order], imp[order]
    cum_w, cum_wv = (torch.cat([ws.new_zeros(1), a.cumsum(0)]) for a in (ws, ws * vs))
    ends = torch.tensor([v.numel()])
    for _ in range(iters):
        edges = torch.cat([ends.new_zeros(1), torch.searchsorted(vs, (c[1:] + c[:-1]) / 2, right=True), ends])
        sums = cum_wv[edges[1:]] - cum_wv[edges[:-1]]
        mass = cum_w[edges[1:]] - cum_w[edges[:-1]]
        new = torch.where(mass > 0, sums / mass.clamp(min=1e-300), c).sort().values
        if torch.allclose(new, c, rtol=0, atol=1e-12):
            break
        c = new
    return c


def assign(w: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Codes of a tensor against sorted centroids: 0 for exact zeros, else 1 + the nearest centroid."""
    idx = torch.bucketize(w.detach().double().contiguous(), (centroids[1:] + centroids[:-1]) / 2) + 1
    return torch.where(w == 0, torch.zeros_like(idx), idx).to(torch.uint8)


RD_ITERS = 4  # assignment / centroid rounds of `rd_assign`
RD_CHUNK = 1 << 16  # weights costed against every level at once


def code_bits(code: torch.Tensor, n_levels: int, positions: int) -> torch.Tensor:
    """Ideal code length of each level, -log2 of its share of the tensor's positions; the positions `code` does
    not cover (pruned) count as zeros, and an unused level stays possible."""
    n = torch.bincount(code, minlength=n_levels).double()
    n[0] += positions - code.numel()
    return -torch.log2((n + 0.5) / (positions + 0.5 * n_levels))


def rd_codes(v: torch.Tensor, levels: torch.Tensor, im: torch.Tensor | float, rate_bits: torch.Tensor
              ) -> torch.Tensor:
    """Index of the level of least `im * (v - level)^2 + rate_bits[level]` for each value."""
    im = torch.as_tensor(im, dtype=v.dtype).expand_as(v)
    return torch.cat([(im[i:i + RD_CHUNK, None] * (v[i:i + RD_CHUNK, None] - levels) ** 2 + rate_bits).argmin(1)
                      for i in range(0, len(v), RD_CHUNK)])


def rd_assign(w: torch.Tensor, centroids: torch.Tensor, imp: torch.Tensor | None,
              penalty: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Rate-distortion optimised codes (NNC's RDOQ idea, with our codebook): each surviving weight takes the level,
    zero included, of least `imp * (w - level)^2 + penalty * bits`, the bits its level's ideal code length
    -log2(share of the tensor's positions) (significance and magnitude together, as the context coder spends
    them); then the levels move to their weights' weighted means and the shares are recounted, `RD_ITERS` times.
    Unlike the clustering's intervals, zero is a level: a small weight is pruned where its bits cost more than its
    error. Each weight's error counts the layer's mean importance `imp`, not its own: a diagonal Fisher estimate
    from a few batches is too noisy per weight (with it, weights whose estimate came out tiny were zeroed wholesale
    and the authors' v1.0 fell to 4% top-1). Returns (codes as `assign` gives them, sorted centroids)."""
    nz = w != 0
    v = w[nz].detach().double()
    im = torch.full_like(v, 1.0 if imp is None or not len(imp) else float(imp.double().mean()))
    c = centroids.clone()
    code = assign(v, c).long()
    for _ in range(RD_ITERS):
        levels = torch.cat([c.new_zeros(1), c])
        code = rd_codes(v, levels, im, penalty * code_bits(code, len(levels), w.numel()))
        mass = torch.zeros(len(levels), dtype=torch.float64).scatter_add_(0, code, im)
        sums = torch.zeros(len(levels), dtype=torch.float64).scatter_add_(0, code, im * v)
        c = torch.where(mass[1:] > 0, sums[1:] / mass[1:].clamp(min=1e-300), c).half().double()
    order = c.argsort()
    rank = torch.cat([torch.zeros(1, dtype=torch.long), 1 + order.argsort()])
    codes = torch.zeros(w.shape, dtype=torch.long)
    codes[nz] = rank[code]
    return codes.to(torch.uint8), c[order]


def _tensor_scale(v: torch.Tensor, imp: torch.Tensor | None) -> float:
    """Mean importance * w^2 of the surviving weights `v`: the squared error one unit of `rate` buys a bit for."""
    return float(((imp if imp is not None else 1.0) * v.double() ** 2).mean()) if v.numel() else 0.0


def _network_scale(model: nn.Module, importance: dict[str, torch.Tensor] | None) -> float | None:
    """With importance, one scale for the whole network (over all layers), so bits go where the loss needs them."""
    if importance is None:
        return None
    ws = [model.get_parameter(n).detach().double() for n in quantizable(model)]
    num = sum(float((importance[n].double() * w ** 2).sum()) for n, w in zip(quantizable(model), ws, strict=True))
    return num / sum(int((w != 0).sum()) for w in ws)


def rd_lambdas(model: nn.Module, rate: float, importance: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
    """Per weight tensor, the squared error a bit is worth in `rd_assign`'s cost divided by the layer's mean
    importance: (w - level)^2 + lambda * bits ranks the levels as `quantize_model` with `rdo` does."""
    scale, out = _network_scale(model, importance), {}
    for n in quantizable(model):
        w = model.get_parameter(n).detach()
        imp = None if importance is None else importance[n][w != 0]
        mean = float(imp.double().mean()) if imp is not None and imp.numel() else 1.0
        out[n] = rate * (_tensor_scale(w[w != 0], imp) if scale is None else scale) / mean
    return out


def quantize_tensor(w: torch.Tensor, bits: int = 6, init: str = "linear", rate: float = 0.0,
                    importance: torch.Tensor | None = None, scale: float | None = None,
                    rdo: bool = False) -> Quantized:
    """Weight sharing for one tensor; the codebook is rounded to fp16, the precision the .sqz file stores.

    With `rate`, a bit of code costs `rate * scale` in (importance-weighted) squared error; `scale` defaults to
    this tensor's mean importance * w^2, so the trade-off is the same relative one in every layer. `rdo` then
    assigns each weight by `rd_assign` instead of to its nearest level.
    """
    if not 1 <= bits <= 8:
        raise ConfigError(f"bits must be in 1..8, got {bits}")
    if rdo and not rate:
        raise ConfigError("rate-distortion optimised assignment (rdo) needs a rate > 0")
    nz = w != 0
    imp = None if importance is None else importance[nz]
    scale = _tensor_scale(w[nz], imp) if scale is None else scale
    c = kmeans_1d(w[nz], (1 << bits) - 1, init, importance=imp, penalty=rate * scale).half().double()
    codes, c = rd_assign(w, c, imp, rate * scale) if rdo else (assign(w, c), c)
    book = np.concatenate([[0.0], c.numpy()]).astype(np.float32)
    return Quantized(codes.numpy(), book, bits)


def quantizable(model: nn.Module) -> list[str]:
    """The weights Deep Compression shares: every convolution and linear weight."""
    return [f"{n}.weight" for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def layer_bits(model: nn.Module, conv_bits: int, fc_bits: int) -> dict[str, int]:
    """Bits per weight tensor: Deep Compression gave AlexNet's convolutions 8 bits and its fc layers 5."""
    return {f"{n}.weight": fc_bits if isinstance(m, nn.Linear) else conv_bits for n, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear))}


def quantize_model(model: nn.Module, bits: int | dict[str, int] = 6, init: str = "linear", rate: float = 0.0,
                   importance: dict[str, torch.Tensor] | None = None, rdo: bool = False) -> dict[str, Quantized]:
    """Quantize every conv/linear weight in place (the model then computes with the shared values).

    With `importance` (e.g. `compress.fisher`), squared errors are importance-weighted and one `rate` scale holds
    for the whole network (the mean importance * w^2 over all layers), so bits go where the loss needs them.
    """
    scale, out = _network_scale(model, importance), {}
    for name in quantizable(model):
        b = bits.get(name, 6) if isinstance(bits, dict) else bits
        p = model.get_parameter(name)
        q = quantize_tensor(p.data, b, init, rate, None if importance is None else importance[name], scale, rdo)
        p.data.copy_(torch.from_numpy(q.weight))
        out[name] = q
    return out
