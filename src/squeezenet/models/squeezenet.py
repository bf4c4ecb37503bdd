"""The Fire module and the SqueezeNet network, built from a `SqueezeNetConfig`.

Module and attribute names follow torchvision (`features.3.squeeze.weight`, `classifier.1.weight`), so
torchvision checkpoints of v1.0/v1.1 load unchanged; the variants only add keys (`shortcut`, `*_bn`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from squeezenet.errors import ConfigError
from squeezenet.models.config import FireSpec, SqueezeNetConfig


def _relu(channels: int, batch_norm: bool) -> nn.Module:
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True)) if batch_norm else nn.ReLU(inplace=True)


class Fire(nn.Module):
    """squeeze 1x1 -> ReLU -> [expand 1x1, expand 3x3 (padding 1)] -> ReLU -> concat, plus an optional bypass.

    bypass: 'identity' (simple bypass, needs in == out channels) or 'conv' (complex bypass: a 1x1 convolution
    on the shortcut). The sum is not followed by a ReLU (paper, Section 6); with BatchNorm it is normalised.
    """

    def __init__(self, in_channels: int, s1x1: int, e1x1: int, e3x3: int, bypass: str = "none",
                 batch_norm: bool = False) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, e1x1 + e3x3
        self.squeeze = nn.Conv2d(in_channels, s1x1, kernel_size=1)
        self.squeeze_activation = _relu(s1x1, batch_norm)
        self.expand1x1 = nn.Conv2d(s1x1, e1x1, kernel_size=1)
        self.expand1x1_activation = _relu(e1x1, batch_norm)
        self.expand3x3 = nn.Conv2d(s1x1, e3x3, kernel_size=3, padding=1)
        self.expand3x3_activation = _relu(e3x3, batch_norm)
        if s1x1 > e1x1 + e3x3:
            raise ConfigError(f"squeeze s1x1={s1x1} must not exceed expand e1x1+e3x3={e1x1 + e3x3}")
        if bypass == "identity" and in_channels != self.out_channels:
            raise ConfigError(f"identity bypass needs in_channels == out_channels, got {in_channels} != "
                             f"{self.out_channels}")
        if bypass not in ("none", "identity", "conv"):
            raise ConfigError(f"unknown fire bypass {bypass!r}")
        self.bypass = bypass
        if bypass == "conv":
            self.shortcut = nn.Conv2d(in_channels, self.out_channels, kernel_size=1)
        # With BatchNorm, the sum of two non-negative maps doubles the mean of conv10's input and quadruples the
        # curvature along it: lr 0.1 diverges in the first epoch. Normalising the sum keeps the bypass variants
        # on the same recipe as the vanilla net (results/explore/README.md).
        self.sum_norm = nn.BatchNorm2d(self.out_channels) if batch_norm and bypass != "none" else nn.Identity()

    @classmethod
    def from_spec(cls, spec: FireSpec, bypass: str = "none", batch_norm: bool = False) -> Fire:
        return cls(spec.in_channels, spec.s1x1, spec.e1x1, spec.e3x3, bypass, batch_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze_activation(self.squeeze(x))
        out = torch.cat([self.expand1x1_activation(self.expand1x1(s)),
                         self.expand3x3_activation(self.expand3x3(s))], 1)
        if self.bypass == "identity":
            out = out + x
        elif self.bypass == "conv":
            out = out + self.shortcut(x)
        return self.sum_norm(out)


def conv_out(n: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    return (n + 2 * padding - kernel) // stride + 1


def pool_out(n: int, kernel: int = 3, stride: int = 2) -> int:
    """Max pool output size with ceil rounding (Caffe), as PyTorch's ceil_mode=True computes it."""
    out = -((n - kernel) // -stride) + 1
    if (out - 1) * stride >= n:  # the last window must start inside the input
        out -= 1
    return out


def min_input_size(config: SqueezeNetConfig) -> int:
    """The smallest square input every layer of this configuration accepts (conv1 and the pools shrink it)."""

    def fits(n: int) -> bool:
        n = conv_out(n, config.stem_kernel, config.stem_stride)
        for _ in config.pool_after:
            n = pool_out(n) if n >= 1 else 0
        return n >= 1

    return next(n for n in range(1, 4096) if fits(n))


class SqueezeNet(nn.Module):
    """Any member of the SqueezeNet family; see `SqueezeNetConfig`."""

    def __init__(self, config: SqueezeNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SqueezeNetConfig()
        self.min_input_size = min_input_size(config)
        layers: list[nn.Module] = [
            nn.Conv2d(3, config.stem_filters, kernel_size=config.stem_kernel, stride=config.stem_stride),
            _relu(config.stem_filters, config.batch_norm),
        ]
        if 1 in config.pool_after:
            layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
        for idx, spec in enumerate(config.fires(), start=2):
            layers.append(Fire.from_spec(spec, config.bypass_of(spec), config.batch_norm))
            if idx in config.pool_after:
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        final_conv = nn.Conv2d(config.fires()[-1].out_channels, config.num_classes, kernel_size=1,
                               padding=config.conv10_padding)
        self.classifier = nn.Sequential(
            nn.Dropout(p=config.dropout),
            final_conv,
            nn.ReLU(inplace=True) if config.final_relu else nn.Identity(),
            nn.AdaptiveAvgPool2d((1, 1)),
        )
        if not final_conv.weight.is_meta:  # on the meta device only the shapes count (and normal_ there is slow)
            self.reset_parameters(config.init)

    arch = "squeezenet"
    head_keys = ("classifier.1.weight", "classifier.1.bias")  # conv10: what a new set of classes replaces

    @property
    def num_classes(self) -> int:
        return self.config.num_classes

    @property
    def final_conv(self) -> nn.Conv2d:
        return self.classifier[1]

    def reset_classifier(self, num_classes: int) -> None:
        """A new conv10 for `num_classes` classes (N(0, 0.01), the paper's), the features kept (timm's name)."""
        self.config = self.config.replace(num_classes=num_classes)
        old = self.final_conv
        new = nn.Conv2d(old.in_channels, num_classes, kernel_size=1, padding=self.config.conv10_padding)
        nn.init.normal_(new.weight, mean=0.0, std=0.01)
        nn.init.zeros_(new.bias)
        self.classifier[1] = new.to(old.weight.device)

    def _fires(self) -> list[tuple[int, int, Fire]]:
        """(paper number, index in `features`, module) of every fire module: fire2 first."""
        fires = [(i, m) for i, m in enumerate(self.features) if isinstance(m, Fire)]
        return [(n, i, m) for n, (i, m) in enumerate(fires, start=2)]

    def layer_names(self) -> dict[str, str]:
        """state_dict weight name -> the paper's layer name: 'conv1', 'fire2/squeeze1x1', ..., 'conv10'."""
        names = {"features.0.weight": "conv1", "classifier.1.weight": "conv10"}
        for n, i, m in self._fires():
            for part in ("squeeze", "expand1x1", "expand3x3"):
                names[f"features.{i}.{part}.weight"] = f"fire{n}/{part}" + ("1x1" if part == "squeeze" else "")
            if m.bypass == "conv":
                names[f"features.{i}.shortcut.weight"] = f"fire{n}/shortcut"
        return names

    def norm_names(self) -> dict[str, str]:
        """BatchNorm module name -> the paper's name of what it normalises ('conv1 bn', 'fire2/squeeze1x1 bn'; a
        bypass sum's 'fire2/bypass bn', as the C engine names the sum), so that tables need no module paths."""
        if not self.config.batch_norm:
            return {}
        convs = self.layer_names()
        names = {"features.1.0": "conv1 bn"}
        for n, i, m in self._fires():
            for part in ("squeeze", "expand1x1", "expand3x3"):
                names[f"features.{i}.{part}_activation.0"] = convs[f"features.{i}.{part}.weight"] + " bn"
            if m.bypass != "none":
                names[f"features.{i}.sum_norm"] = f"fire{n}/bypass bn"
        return names

    def reset_parameters(self, init: str = "torchvision") -> None:
        """'paper': Caffe's Xavier (uniform, fan-in) and conv10 N(0, 0.01); 'torchvision': Kaiming uniform."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                if m is self.final_conv:
                    nn.init.normal_(m.weight, mean=0.0, std=0.01)
                elif init == "paper":
                    bound = math.sqrt(3.0 / (m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]))
                    nn.init.uniform_(m.weight, -bound, bound)
                else:
                    nn.init.kaiming_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last fire module's feature map (before dropout and conv10)."""
        if not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export():
            if x.dim() != 4 or x.shape[1] != 3:
                raise ConfigError(f"expected input of shape (N, 3, H, W), got {tuple(x.shape)}")
            if min(x.shape[-2:]) < self.min_input_size:
                raise ConfigError(f"input {x.shape[-2]}x{x.shape[-1]} is smaller than the minimum input size "
                                 f"{self.min_input_size}x{self.min_input_size} of this configuration")
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map -> logits: dropout, conv10, (ReLU), global average pool."""
        return torch.flatten(self.classifier(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))
