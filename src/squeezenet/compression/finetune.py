"""The short training inside compression: pruning retraining and centroid fine-tuning, and the Fisher weights.

Batches are random resized crops of a class-balanced sample of training images, decoded once; the loss is
distillation from the uncompressed model by default (no labels needed, so a 1000-class model can be tuned on
Imagenette's images), labels, or both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from squeezenet import progress
from squeezenet.compression.options import CompressOptions
from squeezenet.compression.quantize import quantizable
from squeezenet.data.augment import center_crop, random_resized_crop, random_resized_crop_params, to_nchw
from squeezenet.data.cache import decode_cached
from squeezenet.data.folders import list_samples
from squeezenet.formats.weights import Weights


class Batches:
    """Random augmented batches (random resized crop, flip; with `mixup`, blends of two images) from the
    decoded-image cache, uint8 -> normalized."""

    def __init__(self, weights: Weights, data_dir: str | Path, opts: CompressOptions) -> None:
        samples = list_samples(data_dir, weights.class_ids or weights.classes)
        samples = samples.sample(opts.train_limit, opts.seed)
        self.pre = weights.preprocessing
        self.decoded = decode_cached(samples, self.pre.crop_size, warp=self.pre.resize_mode == "warp")
        self.gen = torch.Generator().manual_seed(opts.seed)
        self.batch_size, self.scale = opts.batch_size, (opts.crop_scale, 1.0)
        self.mixup, self.rng = opts.mixup, np.random.default_rng(opts.seed)
        self.odds: torch.Tensor | None = None  # a drawing weight per image (`balance`), else uniform

    def balance(self, teacher: nn.Module) -> int:
        """Draw each image with odds 1 / (images the teacher gives the same top-1, on its centre crop), so its
        predictions spread over as many classes as the images allow; returns how many classes they reach."""
        top = []
        with torch.no_grad():
            for i in progress.bar(range(0, len(self.decoded), 64), desc="teacher's classes", leave=False):
                x = center_crop(to_nchw(self.decoded.images[i:i + 64]), self.pre.crop_size)
                top.append(teacher(self.pre.normalize(x)).argmax(1))
        top = torch.cat(top)
        self.odds = 1.0 / torch.bincount(top).double()[top]
        return len(top.unique())

    def __call__(self, mix: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        idx = (torch.randint(len(self.decoded), (self.batch_size,), generator=self.gen) if self.odds is None else
               torch.multinomial(self.odds, self.batch_size, replacement=True, generator=self.gen))
        idx = idx.sort().values.numpy()
        x = torch.from_numpy(np.ascontiguousarray(self.decoded.images[idx])).permute(0, 3, 1, 2)
        theta = random_resized_crop_params(len(idx), self.gen, scale=self.scale)
        x = self.pre.normalize(random_resized_crop(x, self.pre.crop_size, theta))
        if self.mixup and mix:
            lam = torch.from_numpy(self.rng.beta(self.mixup, self.mixup, (len(idx), 1, 1, 1)).astype(np.float32))
            x = lam * x + (1 - lam) * x[torch.randperm(len(idx), generator=self.gen)]
        return x.contiguous(memory_format=torch.channels_last), \
            torch.from_numpy(self.decoded.labels[idx])


def adam_cosine(params: list[nn.Parameter], lr: float, steps: int, loss_fn: Callable[[], torch.Tensor],
                after_backward: Callable[[], None] = lambda: None, after_step: Callable[[], None] = lambda: None,
                desc: str = "training") -> float:
    """`steps` Adam steps on `loss_fn()` with a cosine learning rate, a progress bar named `desc` showing the loss;
    the last loss. The one optimisation loop of compression (retraining, fine-tuning, block reconstruction)."""
    if steps == 0:
        return 0.0
    opt = torch.optim.Adam(params, lr=lr)
    bar = progress.bar(range(steps), desc=desc, unit="step", leave=False)
    loss = torch.zeros(())
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        after_backward()
        opt.step()
        after_step()
        bar.set_postfix(loss=f"{loss.item():.4f}")
    return loss.item()


def train_steps(student: nn.Module, teacher: nn.Module | None, batches: Callable, params: list[nn.Parameter],
                steps: int, lr: float, opts: CompressOptions, after_backward: Callable[[], None] = lambda: None,
                after_step: Callable[[], None] = lambda: None, desc: str = "training") -> None:
    """`adam_cosine` over `steps` batches on distillation and/or labels; the student stays in eval mode (no
    dropout noise)."""
    student.eval()

    def loss_fn() -> torch.Tensor:
        x, y = batches()
        out = student(x)
        loss = out.new_zeros(())
        if opts.loss in ("distill", "both"):
            with torch.no_grad():
                target = F.softmax(teacher(x) / opts.temperature, 1)
            loss = loss + F.kl_div(F.log_softmax(out / opts.temperature, 1), target,
                                   reduction="batchmean") * opts.temperature ** 2
        if opts.loss in ("labels", "both"):
            loss = loss + F.cross_entropy(out, y)
        return loss

    adam_cosine(params, lr, steps, loss_fn, after_backward, after_step, desc)


def fisher(model: nn.Module, batches: Callable, n_batches: int) -> dict[str, torch.Tensor]:
    """Diagonal Fisher information of the conv weights, labels drawn from the model's own predictions.

    It says how much the loss feels a change of each weight, so it weights the k-means errors (and, with
    `rate`, sets one exchange rate between bits and loss for the whole network).
    """
    names = quantizable(model)
    params = [model.get_parameter(n) for n in names]
    acc = [torch.zeros_like(p) for p in params]
    model.eval()
    for _ in progress.bar(range(n_batches), desc="Fisher information", unit="batch", leave=False):
        x, _ = batches(mix=False)
        out = model(x)
        y = torch.multinomial(F.softmax(out.detach().float(), 1), 1).squeeze(1)
        for a, g in zip(acc, torch.autograd.grad(F.cross_entropy(out, y), params), strict=True):
            a += g.detach() ** 2
    return {n: a / n_batches + 1e-3 * a.mean() / n_batches for n, a in zip(names, acc, strict=True)}
