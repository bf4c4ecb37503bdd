"""What `compress` is asked to do (`CompressOptions`) and what it gives back (`Result`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from squeezenet.compression.prune import PROFILES
from squeezenet.formats.weights import Weights

LOSSES = ("distill", "labels", "both")


@dataclass
class CompressOptions:
    """What to do; `profile`, `density` and `quality` are alternative pruning targets (None: no pruning).

    `svd` ('256' or 'fc6=256,fc7=128', see `lowrank.parse_ranks`) factorises AlexNet's fc layers first;
    `fc_bits` quantizes linear layers apart (AlexNet: 8-bit conv, 5-bit fc); `quantize=False` stops before
    quantization and keeps fp32 weights.
    """

    profile: str | None = "table1"
    density: float | None = None
    quality: float | None = None
    svd: str | None = None
    quantize: bool = True
    bits: int = 6
    fc_bits: int | None = None
    init: str = "linear"
    rate: float = 0.0
    fisher_batches: int = 0
    retrain_epochs: float = 0.0
    finetune_epochs: float = 0.0
    loss: str = "distill"
    temperature: float = 2.0
    lr_retrain: float = 1e-4
    lr_finetune: float = 3e-5
    batch_size: int = 32
    train_limit: int | None = 4000
    gap_bits: int | None = None
    coders: tuple[str, ...] = ("raw", "huffman", "ans")
    seed: int = 0

    def validate(self) -> None:
        if sum(x is not None for x in (self.profile, self.density, self.quality)) > 1:
            raise ValueError("give at most one pruning target: profile, density or quality")
        if self.profile not in (None, "none", *PROFILES):
            raise ValueError(f"unknown pruning profile {self.profile!r}; choose {', '.join(PROFILES)} or none")
        if not 1 <= self.bits <= 8 or not 1 <= (self.fc_bits or self.bits) <= 8:
            raise ValueError(f"bits must be in 1..8, got {self.bits} (fc: {self.fc_bits})")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if min(self.retrain_epochs, self.finetune_epochs, self.fisher_batches, self.rate) < 0 or self.batch_size < 1:
            raise ValueError("epochs, fisher_batches and rate must be >= 0 and batch_size >= 1")


@dataclass
class Result:
    """The compressed weights; `data` is the .sqz file, None when not quantized (the weights are fp32)."""

    weights: Weights
    data: bytes | None
    layers: list[dict]
    stages: list[dict] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        """The file's size, or the fp32 weights' as the paper counts them (see `fp32_layers`)."""
        return len(self.data) if self.data is not None else sum(lay["bytes"] for lay in self.layers)
