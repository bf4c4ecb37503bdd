"""How faithfully a model W reproduces a reference R, image by image: top-1 agreement, the paired top-1 difference
with its exact 95% interval, and the mean KL divergence of R's softmax to W's.

Two models' accuracies on the same images are correlated: their difference is far less noisy than either figure
(on 2,050 images top-1 has a standard error of ~1 point, the paired difference of two close models a few tenths).
Only the discordant images count: b where W alone is right, c where R alone is. Given b + c, b is binomial with
p = 1/2 when the two are equally accurate (McNemar's exact test); the interval is Clopper-Pearson's for p, mapped to
the difference (b - c) / n = (b + c)(2p - 1) / n. Exact, so it holds for the handful of discordant images a
near-lossless compression leaves, where a normal approximation does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def _tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed in log space (n is a few thousand at most)."""
    if k <= 0:
        return 1.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    lp, lq = math.log(p), math.log1p(-p)
    terms = [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq
             for i in range(k, n + 1)]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def _solve(f, target: float) -> float:
    """p in [0, 1] with f(p) = target, f increasing (bisection to double precision)."""
    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) < target else (lo, mid)
    return (lo + hi) / 2


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact interval of a binomial proportion, k successes in n trials."""
    alpha = 1 - level
    low = 0.0 if k == 0 else _solve(lambda p: _tail(k, n, p), alpha / 2)
    high = 1.0 if k == n else _solve(lambda p: _tail(k + 1, n, p), 1 - alpha / 2)
    return low, high


def paired_interval(b: int, c: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The interval of the paired difference (b - c) / n: b images W alone gets right, c R alone, n in all."""
    if b + c == 0:
        return 0.0, 0.0
    low, high = clopper_pearson(b, b + c, level)
    return (b + c) * (2 * low - 1) / n, (b + c) * (2 * high - 1) / n


def compare(logits: torch.Tensor, reference: torch.Tensor, labels: Sequence[int]) -> dict:
    """Fidelity of `logits` (W) to `reference` (R) on the same images: agreement, paired_difference (W minus R),
    paired_ci95, kl (nats, mean over images), and the discordant counts behind the interval."""
    if logits.shape != reference.shape:
        raise ValueError(f"scores of shape {tuple(logits.shape)} and {tuple(reference.shape)} cannot be paired")
    y = torch.as_tensor(labels)
    w, r = logits.argmax(1), reference.argmax(1)
    b = int(((w == y) & (r != y)).sum())
    c = int(((w != y) & (r == y)).sum())
    n = len(y)
    kl = F.kl_div(F.log_softmax(logits.double(), 1), F.log_softmax(reference.double(), 1), log_target=True,
                  reduction="batchmean")
    return {"agreement": (w == r).double().mean().item(), "paired_difference": (b - c) / n,
            "paired_ci95": list(paired_interval(b, c, n)), "kl": kl.item(), "only_weights_right": b,
            "only_reference_right": c}
