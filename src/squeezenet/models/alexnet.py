"""AlexNet as Caffe's bvlc_alexnet (two towers: conv2, conv4, conv5 grouped; LRN): the paper's baseline.

At 227x227 and 1000 classes it has 60,965,224 parameters. fc6's input is 256 x s x s where s is the
last feature map's side, so at another resolution only fc6 changes size (e.g. 128 px: s = 3, fc6 9.4 M).
`ranks` replaces fully connected layers by their low-rank factorisation (`LowRankLinear`, Table 2's SVD row).
"""

from __future__ import annotations

import torch
from torch import nn

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


def _check(num_classes: int, image_size: int, dropout: float, init: str, ranks: dict) -> None:
    """Raise ValueError/TypeError for options no AlexNet has (e.g. read from a forged file's header)."""
    if type(num_classes) is not int or type(image_size) is not int or not isinstance(dropout, (int, float)):
        raise TypeError("num_classes and image_size must be integers, dropout a number")
    if num_classes < 1 or not 0 <= dropout < 1 or init not in INITS:
        raise ValueError(f"need num_classes >= 1, dropout in [0, 1), init in {INITS}; got {num_classes}, "
                         f"{dropout}, {init!r}")
    if alexnet_feature_side(image_size) < 1:
        raise ValueError(f"image size {image_size} is too small for AlexNet")
    if not isinstance(ranks, dict) or not set(ranks) <= set(FC_NAMES) or any(
            type(r) is not int or not 1 <= r <= 4096 for r in ranks.values()):
        raise ValueError(f"ranks must map some of {', '.join(FC_NAMES)} to integers in 1..4096, got {ranks!r}")


class AlexNet(nn.Module):
    """bvlc_alexnet; `init="paper"` is its Gaussian fillers, `"kaiming"` He et al.'s (zero biases; fc8 keeps std 0.01).

    The Gaussian fillers (std 0.01/0.005) shrink the signal layer after layer, so the loss sits at ln(classes)
    for a long time. On a probe (4 Imagenette classes at 64 px, 108 SGD steps of 32 images, lr 0.005) it did not
    move from ln 4 = 1.386 (PyTorch's default init did not either), while with "kaiming" the validation loss fell
    to 1.22 and top-1 rose to 50%: the `alexnet` training recipe uses it. Kaiming's larger signal makes the first
    steps rough (the probe's first-epoch loss averaged 3.9; a zero fc8 did not help), hence the recipe's modest lr.
    """

    def __init__(self, num_classes: int = 1000, image_size: int = 227, dropout: float = 0.5, init: str = "paper",
                 ranks: dict[str, int] | None = None) -> None:
        super().__init__()
        ranks = dict(ranks or {})
        _check(num_classes, image_size, dropout, init, ranks)
        side = alexnet_feature_side(image_size)
        self.num_classes, self.image_size = num_classes, image_size
        self.config = {"num_classes": num_classes, "image_size": image_size, "dropout": dropout, "init": init,
                       "ranks": ranks}

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
                    nn.init.constant_(p, bias if init == "paper" else 0.0)
                elif init == "paper" or name == "fc8":
                    nn.init.normal_(p, std=std)
                else:  # He et al.: the signal's variance kept through each ReLU layer
                    nn.init.kaiming_normal_(p, nonlinearity="relu")

    def layers(self) -> dict[str, nn.Module]:
        """The paper's layer names (conv1 .. fc8) -> modules."""
        convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
        fcs = [m for m in self.classifier if isinstance(m, (nn.Linear, LowRankLinear))]
        return dict(zip([f"conv{i}" for i in range(1, 6)] + list(FC_NAMES), convs + fcs, strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))
