"""AlexNet as Caffe's bvlc_alexnet (two towers: conv2, conv4, conv5 grouped; LRN): the paper's baseline.

At 227x227 and 1000 classes it has 60,965,224 parameters. fc6's input is 256 x s x s where s is the
last feature map's side, so at another resolution only fc6 changes size (e.g. 128 px: s = 3, fc6 9.4 M).
"""

from __future__ import annotations

import torch
from torch import nn

from .model import conv_out, pool_out


def alexnet_feature_side(image_size: int) -> int:
    n = pool_out(conv_out(image_size, 11, 4))  # conv1, pool1
    n = pool_out(conv_out(n, 5, 1, 2))  # conv2, pool2
    return pool_out(n)  # conv3-5 keep the size, pool5


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 1000, image_size: int = 227, dropout: float = 0.5) -> None:
        super().__init__()
        side = alexnet_feature_side(image_size)
        if side < 1:
            raise ValueError(f"image size {image_size} is too small for AlexNet")
        self.image_size, self.num_classes = image_size, num_classes

        def lrn() -> nn.Module:
            return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)

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
            nn.Linear(256 * side * side, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, std=0.01 if isinstance(m, nn.Conv2d) else 0.005)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))
