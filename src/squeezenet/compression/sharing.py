"""Fine-tuning of shared weights (Deep Compression's trained quantization): each centroid moves by the summed
gradient of the weights assigned to it, zeros stay zero; optionally the weights move between levels too."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from squeezenet.compression.quantize import code_bits, rd_codes
from squeezenet.errors import ConfigError
from squeezenet.formats.weights import Quantized


class WeightSharing:
    """Centroid fine-tuning: after `backward`, `accumulate` turns weight gradients into centroid gradients;
    after the optimizer steps the centroids, `sync` writes the shared values back into the weights.

    The optimizer is given `parameters()` (and whatever unshared parameters should train, e.g. biases) but never
    the shared weights themselves. With `latent` (the weights before quantization) and `lambdas` (`rd_lambdas`),
    the weights train too: each latent weight gets its shared weight's gradient (straight through the
    quantizer) and `sync` re-assigns it to the level, zero included, of least (latent - level)^2 + lambda * bits,
    so fine-tuning also moves weights between levels instead of only moving the levels. Pruned positions stay zero.
    `pull` (per tensor, a weight per element, e.g. anchor x Fisher) adds pull x (latent - start)^2 to the loss:
    the weights are held near the uncompressed model, whose 1000-class behaviour a 10-class fine-tuning set
    cannot show.
    """

    def __init__(self, model: nn.Module, quantized: dict[str, Quantized], latent: dict[str, torch.Tensor] | None = None,
                 lambdas: dict[str, float] | None = None, pull: dict[str, torch.Tensor] | None = None) -> None:
        if (latent is None) != (lambdas is None):
            raise ConfigError("re-assigning weights needs both the latent weights and their lambdas")
        self.model = model
        self.codes = {n: torch.from_numpy(q.codes.astype(np.int64)).flatten() for n, q in quantized.items()}
        self.bits = {n: q.bits for n, q in quantized.items()}
        self.books = {n: nn.Parameter(torch.from_numpy(q.codebook[1:].astype(np.float32)).clone())
                      for n, q in quantized.items()}
        self.alive = {} if latent is None else {n: latent[n].flatten() != 0 for n in quantized}
        self.latent = {n: nn.Parameter(latent[n].flatten()[a].float().clone()) for n, a in self.alive.items()}
        self.lambdas = lambdas or {}
        self.start = {n: v.detach().clone() for n, v in self.latent.items()} if pull else {}
        self.pull = {n: pull[n].flatten()[a].float() for n, a in self.alive.items()} if pull else {}
        self.sync()

    def parameters(self) -> list[nn.Parameter]:
        return [*self.books.values(), *self.latent.values()]

    def accumulate(self) -> None:
        for n, book in self.books.items():
            p = self.model.get_parameter(n)
            if p.grad is None:
                continue
            g = torch.zeros(book.numel() + 1).scatter_add_(0, self.codes[n], p.grad.flatten())
            book.grad = g[1:].clone() if book.grad is None else book.grad + g[1:]
            if n in self.latent:
                self.latent[n].grad = p.grad.flatten()[self.alive[n]].clone()
                if n in self.pull:
                    self.latent[n].grad += 2 * self.pull[n] * (self.latent[n].detach() - self.start[n])
            p.grad = None

    @torch.no_grad()
    def sync(self, names: list[str] | None = None) -> None:
        """Write the levels (and re-assigned codes) into the weights of `names` (default: every shared tensor)."""
        for n in self.books if names is None else names:
            book = self.books[n]
            table = torch.cat([book.new_zeros(1), book])
            if n in self.latent:
                bits = code_bits(self.codes[n], len(table), self.codes[n].numel()).float()
                self.codes[n][self.alive[n]] = rd_codes(self.latent[n], table, 1.0, self.lambdas[n] * bits)
            p = self.model.get_parameter(n)
            p.copy_(table[self.codes[n]].view_as(p))

    def quantized(self) -> dict[str, Quantized]:
        """The current codes and codebooks, codebooks rounded to fp16 (and the model synced to them)."""
        with torch.no_grad():
            for book in self.books.values():
                book.copy_(book.half().float())
        self.sync()
        return {n: Quantized(self.codes[n].view_as(self.model.get_parameter(n)).numpy().astype(np.uint8),
                             np.concatenate([[0.0], self.books[n].detach().numpy()]).astype(np.float32),
                             self.bits[n])
                for n in self.books}
