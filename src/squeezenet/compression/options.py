"""What `compress` is asked to do (`CompressOptions`) and what it gives back (`Result`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from squeezenet.compression.prune import PROFILES
from squeezenet.compression.quantize import INITS
from squeezenet.errors import ConfigError
from squeezenet.formats.sqz import DEFAULT_CODERS, GAP_BITS
from squeezenet.formats.weights import Weights
from squeezenet.options import check, option

LOSSES = ("distill", "labels", "both")


@dataclass
class CompressOptions:
    """What to do; `profile`, `density` and `quality` are alternative pruning targets (None: no pruning).

    `svd` ('256' or 'fc6=256,fc7=128', see `lowrank.parse_ranks`) factorises AlexNet's fc layers first;
    `fc_bits` quantizes linear layers apart (AlexNet: 8-bit conv, 5-bit fc); `quantize=False` stops before
    quantization and keeps fp32 weights.
    """

    profile: str | None = option("table1", choices=(*PROFILES, "none"), help="per-layer densities: table1 "
                                 "(SqueezeNet's default), alexnet (Han et al. 2015, AlexNet's default), none")
    density: float | None = option(None, low=1e-6, high=1.0, help="one global magnitude threshold keeping this "
                                   "fraction of the weights")
    quality: float | None = option(None, low=0.0, high=100.0, help="prune |w| < QUALITY x std(w) per layer "
                                   "(Han et al.)")
    svd: str | None = option(None, help="factorise AlexNet's fc layers first: one rank for every fc layer it "
                             "shrinks (256) or per layer (fc6=256,fc7=128)")
    quantize: bool = option(True, help="quantize (off: fp32 weights, pruned and/or factorised, as .safetensors)")
    bits: int = option(6, low=1, high=8, help="bits per weight")
    fc_bits: int | None = option(None, low=1, high=8, help="bits of the fully connected layers (default: --bits; "
                                 "Deep Compression's AlexNet: 8 and 5)")
    init: str = option("linear", choices=INITS, help="k-means initialization; optimal: exact least squares by "
                       "dynamic programming")
    rate: float = option(0.0, low=0.0, high=1e3, help="with --init optimal: entropy-constrained clustering, "
                         "squared error traded for bits")
    rdo: bool = option(False, help="with --rate: each weight to the level (zero included) of least error + rate "
                       "x bits, not to its nearest")
    fisher_batches: int = option(0, low=0, high=10**6, help="weight the clustering by the Fisher information "
                                 "measured on N batches of --data")
    retrain_epochs: float = option(0.0, low=0.0, high=1000.0, help="retraining after pruning (gradual, AGP) "
                                   "and/or SVD")
    finetune_epochs: float = option(0.0, low=0.0, high=1000.0, help="centroid fine-tuning after quantization")
    reassign: bool = option(False, help="with --finetune-epochs: the weights train too (straight through the "
                            "quantizer) and are re-assigned to the levels, zero included, at every step by --rate's "
                            "cost")
    anchor: float = option(0.0, low=0.0, high=1e6, help="with --reassign and --fisher-batches: pull the weights "
                           "toward their uncompressed values, ANCHOR x the Fisher-weighted squared distance")
    mixup: float = option(0.0, low=0.0, high=100.0, help="with --loss distill: blend each training image with "
                          "another by a Beta(MIXUP, MIXUP) weight, so the teacher's targets span more classes")
    reconstruct_steps: int = option(0, low=0, high=10**6, help="block reconstruction after quantization: Adam steps "
                                    "per block (conv1, each Fire module, the head), then as many with all blocks "
                                    "together; the weights' levels and assignment and the biases train (0: off)")
    reconstruct_images: int = option(1024, low=1, high=10**6, help="unlabelled crops of --data the blocks are "
                                     "reconstructed on")
    lr_reconstruct: float = option(5e-5, low=1e-10, high=1.0, help="Adam learning rate of block reconstruction")
    crop_scale: float = option(0.35, low=0.01, high=1.0, help="smallest area fraction of a random resized crop in "
                               "fine-tuning and reconstruction")
    balance: bool = option(False, help="draw the training images so that the uncompressed model's top-1 "
                           "predictions spread over as many classes as they can")
    loss: str = option("distill", choices=LOSSES, help="soft targets from the uncompressed model, labels, or both")
    temperature: float = option(2.0, low=0.05, high=100.0, help="distillation temperature")
    lr_retrain: float = option(1e-4, low=1e-10, high=1.0, help="Adam learning rate of retraining")
    lr_finetune: float = option(3e-5, low=1e-10, high=1.0, help="Adam learning rate of the centroids")
    batch_size: int = option(32, low=1, high=65_536, help="images per fine-tuning step")
    train_limit: int | None = option(4000, low=1, high=10**8, help="training images used, a seeded "
                                     "class-balanced sample")
    gap_bits: int | None = option(None, choices=GAP_BITS, help="relative index width (0: dense); default: the "
                                  "smallest per layer")
    coders: tuple[str, ...] = option(DEFAULT_CODERS, help="coders tried per layer", cli=False)
    seed: int = option(0, low=0, high=2**31 - 1, help="seed of sampling and fine-tuning")

    def validate(self) -> None:
        check(self)
        if sum(x is not None for x in (self.profile, self.density, self.quality)) > 1:
            raise ConfigError("give at most one pruning target: profile, density or quality")
        if self.profile not in (None, "none", *PROFILES):
            raise ConfigError(f"unknown pruning profile {self.profile!r}; choose {', '.join(PROFILES)} or none")
        if not 1 <= self.bits <= 8 or not 1 <= (self.fc_bits or self.bits) <= 8:
            raise ConfigError(f"bits must be in 1..8, got {self.bits} (fc: {self.fc_bits})")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if min(self.retrain_epochs, self.finetune_epochs, self.fisher_batches, self.rate) < 0 or self.batch_size < 1:
            raise ConfigError("epochs, fisher_batches and rate must be >= 0 and batch_size >= 1")
        if self.rdo and not self.rate:
            raise ConfigError("--rdo needs --rate > 0 (and --init optimal)")
        if self.reassign and not self.finetune_epochs:
            raise ConfigError("--reassign needs --finetune-epochs > 0")
        if self.anchor and not (self.reassign and self.fisher_batches):
            raise ConfigError("--anchor needs --reassign and --fisher-batches > 0")
        if self.reconstruct_steps and not self.quantize:
            raise ConfigError("--reconstruct-steps reconstructs the quantized blocks: it needs quantization")
        if self.mixup and self.loss != "distill":
            raise ConfigError("--mixup needs --loss distill (a blend has no single label)")


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
