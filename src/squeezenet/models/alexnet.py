"""AlexNet as Caffe's bvlc_alexnet (two towers: conv2, conv4, conv5 grouped; LRN): the paper's baseline.

At 227x227 and 1000 classes it has 60,965,224 parameters. fc6's input is 256 x s x s where s is the
last feature map's side, so at another resolution only fc6 changes size (e.g. 128 px: s = 3, fc6 9.4 M).
`ranks` replaces fully connected layers by their low-rank factorisation (`LowRankLinear`, Table 2's SVD row).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

import torch
from torch import nn

from squeezenet.errors import ConfigError
from squeezenet.models.squeezenet import conv_out, pool_out

INITS = ("paper", "kaiming")


FC_NAMES = ("fc6", "fc7", "fc8")


# bvlc_alexnet's fillers: weight std and constant bias per layer (0.1, not Krizhevsky's 1: 1 gave a flat loss)
CAFFE_FILLERS = {"conv1": (0.01, 0.0), "conv2": (0.01, 0.1), "conv3": (0.01, 0.0), "conv4": (0.01, 0.1),
                 "conv5": (0.01, 0.1), "fc6": (0.005, 0.1), "fc7": (0.005, 0.1), "fc8": (0.01, 0.0)}


def alexnet_feature_side(image_size: int) -> int:
    n = pool_out(conv_out(image_size, 11, 4))  # conv1, pool1
    n = pool_out(conv_out(n, 5, 1, 2))  # conv2, pool2
    return pool_out(n)  # conv3-5 keep the size, pool5


class LowRankLinear(nn.Module):
    """`second(first(x))` with W ~ second.weight @ first.weight of rank r: r (m + n) + m parameters, not m n + m."""

    def __init__(self, in_features: int, out_features: int, rank: int) -> None:
        super().__init__()
        self.first = nn.Linear(in_features, rank, bias=False)
        self.second = nn.Linear(rank, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))


@dataclass(frozen=True)
class AlexNetConfig:
    """AlexNet's few options; `ranks` factorises fully connected layers (fc6/fc7/fc8 -> rank)."""

    num_classes: int = 1000
    image_size: int = 227
    dropout: float = 0.5
    init: str = "paper"
    ranks: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Raise ConfigError/TypeError for options no AlexNet has (e.g. read from a forged file's header)."""
        if type(self.num_classes) is not int or type(self.image_size) is not int or not isinstance(
                self.dropout, (int, float)):
            raise TypeError("num_classes and image_size must be integers, dropout a number")
        if not 1 <= self.num_classes <= 100_000 or not 0 <= self.dropout < 1 or self.init not in INITS:
            raise ConfigError(f"need num_classes in 1..100000, dropout in [0, 1), init in {INITS}; got "
                              f"{self.num_classes}, {self.dropout}, {self.init!r}")
        if not 1 <= self.image_size <= 4096 or alexnet_feature_side(self.image_size) < 1:
            raise ConfigError(f"image size {self.image_size} is out of range for AlexNet")
        if not isinstance(self.ranks, dict) or not set(self.ranks) <= set(FC_NAMES) or any(
                type(r) is not int or not 1 <= r <= 4096 for r in self.ranks.values()):
            raise ConfigError(f"ranks must map some of {', '.join(FC_NAMES)} to integers in 1..4096, got "
                              f"{self.ranks!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AlexNetConfig:
        known = {f.name for f in fields(cls)}
        if not isinstance(d, dict) or set(d) - known:
            raise ConfigError(f"not an AlexNet configuration: {d!r}"[:200])
        return cls(**d)


class AlexNet(nn.Module):
    """bvlc_alexnet; `init="paper"` is its Gaussian fillers, `"kaiming"` He et al.'s (zero biases; fc8 keeps std 0.01).

    The Gaussian fillers (std 0.01/0.005) shrink the signal layer after layer, so the loss sits at ln(classes)
    for a long time. On a probe (4 Imagenette classes at 64 px, 108 SGD steps of 32 images, lr 0.005) it did not
    move from ln 4 = 1.386 (PyTorch's default init did not either), while with "kaiming" the validation loss fell
    to 1.22 and top-1 rose to 50%: the `alexnet` training recipe uses it. Kaiming's larger signal makes the first
    steps rough (the probe's first-epoch loss averaged 3.9; a zero fc8 did not help), hence the recipe's modest lr.
    """

    arch = "alexnet"

    def __init__(self, config: AlexNetConfig | None = None, **options) -> None:
        super().__init__()
        self.config = config = config or AlexNetConfig(**options)
        ranks, dropout, num_classes = config.ranks, config.dropout, config.num_classes
        side = alexnet_feature_side(config.image_size)

        def lrn() -> nn.Module:
            return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)

        def fc(name: str, n_in: int, n_out: int) -> nn.Module:
            return LowRankLinear(n_in, n_out, ranks[name]) if name in ranks else nn.Linear(n_in, n_out)

        self.features = nn.Sequential(
            nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(inplace=True), lrn(), nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(inplace=True), lrn(),
            nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, ceil_mode=True),
        )
        self.classifier = nn.Sequential(
            fc("fc6", 256 * side * side, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            fc("fc7", 4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            fc("fc8", 4096, num_classes),
        )
        if self.features[0].weight.is_meta:  # on the meta device only the shapes count (and normal_ there is slow)
            return
        for name, m in self.layers().items():
            std, bias = CAFFE_FILLERS[name]
            for p in m.parameters():
                if p.dim() == 1:
                    nn.init.constant_(p, bias if config.init == "paper" else 0.0)
                elif config.init == "paper" or name == "fc8":
                    nn.init.normal_(p, std=std)
                else:  # He et al.: the signal's variance kept through each ReLU layer
                    nn.init.kaiming_normal_(p, nonlinearity="relu")

    def layers(self) -> dict[str, nn.Module]:
        """The paper's layer names (conv1 .. fc8) -> modules."""
        convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
        fcs = [m for m in self.classifier if isinstance(m, (nn.Linear, LowRankLinear))]
        return dict(zip([f"conv{i}" for i in range(1, 6)] + list(FC_NAMES), convs + fcs, strict=True))

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def image_size(self) -> int:
        """The one input size fc6 fits."""
        return self.config.image_size

    @property
    def head_keys(self) -> tuple[str, ...]:
        """fc8's parameters: what a new set of classes replaces."""
        return tuple(f"classifier.6.{k}" for k in self.classifier[6].state_dict())

    def reset_classifier(self, num_classes: int) -> None:
        """A new fc8 for `num_classes` classes (N(0, 0.01), Caffe's), the rest kept."""
        self.config = replace(self.config, num_classes=num_classes)
        old = self.classifier[6]
        n_in = old.in_features if isinstance(old, nn.Linear) else old.first.in_features
        new = nn.Linear(n_in, num_classes)
        nn.init.normal_(new.weight, std=0.01)
        nn.init.zeros_(new.bias)
        self.config = replace(self.config, ranks={k: v for k, v in self.config.ranks.items() if k != "fc8"})
        self.classifier[6] = new

    def layer_names(self) -> dict[str, str]:
        """state_dict weight name -> 'conv1' .. 'fc8'; a factorised layer's factors 'fc6/first', 'fc6/second'."""
        where = {m: n for n, m in self.named_modules()}
        out = {}
        for layer, m in self.layers().items():
            if isinstance(m, LowRankLinear):
                out |= {f"{where[m]}.{part}.weight": f"{layer}/{part}" for part in ("first", "second")}
            else:
                out[f"{where[m]}.weight"] = layer
        return out

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(x, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
