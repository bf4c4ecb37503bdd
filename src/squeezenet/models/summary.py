"""Table 1 for any model: per layer the output size, filter, s1x1/e1x1/e3x3, parameters and MACs.

Shapes come from a real forward pass (with hooks), so the table can never disagree with the network.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from squeezenet.models.alexnet import LowRankLinear
from squeezenet.models.squeezenet import Fire, SqueezeNet


@dataclass
class LayerRow:
    name: str
    output: tuple[int, int, int]  # H, W, C
    filter: str = ""
    s1x1: int | None = None
    e1x1: int | None = None
    e3x3: int | None = None
    bypass: str = ""
    params: int = 0
    macs: int = 0


def _macs(m: nn.Module, out: torch.Tensor) -> int:
    if isinstance(m, nn.Conv2d):
        k = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        return out.shape[1] * out.shape[2] * out.shape[3] * k
    if isinstance(m, nn.Linear):
        return m.in_features * m.out_features
    return 0


def _layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Top-level layers in the paper's naming; activations and dropout are folded away."""
    named, last_idx, counter = [], 1, {"conv": 0, "fc": 0}
    children = [("features", m) for m in model.features] + [("classifier", m) for m in model.classifier]
    for part, m in children:
        if isinstance(m, Fire):
            last_idx += 1
            named.append((f"fire{last_idx}", m))
        elif isinstance(m, nn.Conv2d):
            counter["conv"] += 1
            if isinstance(model, SqueezeNet):
                name = "conv1" if part == "features" else "conv10"
                last_idx = 1 if part == "features" else 10
            else:
                name, last_idx = f"conv{counter['conv']}", counter["conv"]
            named.append((name, m))
        elif isinstance(m, (nn.Linear, LowRankLinear)):
            last_idx = 5 + counter["fc"] + 1
            counter["fc"] += 1
            named.append((f"fc{last_idx}", m))
        elif isinstance(m, nn.MaxPool2d):
            named.append((f"maxpool{last_idx}", m))
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            named.append((f"avgpool{last_idx}", m))
        elif isinstance(m, nn.Sequential) and named:  # BatchNorm + ReLU after conv1: count with conv1
            named.append((named[-1][0], m))
    return named


def summarize(model: nn.Module, input_size: int = 224) -> dict:
    """{'layers': [LayerRow as dict...], 'total': {'params', 'macs', 'bytes_fp32'}, 'input_size'}."""
    rows: dict[str, LayerRow] = {}
    hooks = []
    for name, layer in _layers(model):
        row = rows.setdefault(name, LayerRow(name, (0, 0, 0)))
        row.params += sum(p.numel() for p in layer.parameters())
        if isinstance(layer, Fire):
            row.s1x1, row.e1x1, row.e3x3 = (layer.squeeze.out_channels, layer.expand1x1.out_channels,
                                            layer.expand3x3.out_channels)
            row.bypass = {"identity": "simple", "conv": "complex"}.get(layer.bypass, "")
        elif isinstance(layer, nn.Conv2d):
            row.filter = f"{layer.kernel_size[0]}x{layer.kernel_size[1]}/{layer.stride[0]} (x{layer.out_channels})"
        elif isinstance(layer, nn.MaxPool2d):
            row.filter = f"{layer.kernel_size}x{layer.kernel_size}/{layer.stride}"

        def record(mod, inp, out, row=row):
            if out.dim() == 4:
                row.output = (out.shape[2], out.shape[3], out.shape[1])
            else:
                row.output = (1, 1, out.shape[1])
            if isinstance(mod, nn.AdaptiveAvgPool2d):
                row.filter = f"{inp[0].shape[2]}x{inp[0].shape[3]}/1"

        hooks.append(layer.register_forward_hook(record))
        for sub in layer.modules():
            if isinstance(sub, (nn.Conv2d, nn.Linear)):
                hooks.append(sub.register_forward_hook(
                    lambda mod, inp, out, row=row: setattr(row, "macs", row.macs + _macs(mod, out))))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    layers = [asdict(r) for r in rows.values()]
    params = sum(p.numel() for p in model.parameters())
    return {"input_size": input_size, "layers": layers,
            "total": {"params": params, "macs": sum(r["macs"] for r in layers), "bytes_fp32": 4 * params}}


def format_table(summary: dict) -> str:
    """The summary as a fixed-width text table in Table 1's column order."""
    head = f"{'layer':<11}{'output':>14}  {'filter':<16}{'s1x1':>6}{'e1x1':>6}{'e3x3':>6}  {'bypass':<8}" \
           f"{'params':>12}{'MACs':>15}"
    lines = [head, "-" * len(head)]
    for r in summary["layers"]:
        h, w, c = r["output"]
        cells = [str(r[k]) if r[k] is not None else "" for k in ("s1x1", "e1x1", "e3x3")]
        lines.append(f"{r['name']:<11}{f'{h}x{w}x{c}':>14}  {r['filter']:<16}{cells[0]:>6}{cells[1]:>6}"
                     f"{cells[2]:>6}  {r['bypass']:<8}{r['params']:>12,}{r['macs']:>15,}")
    t = summary["total"]
    lines += ["-" * len(head), f"{'total':<75}{t['params']:>12,}{t['macs']:>15,}",
              f"fp32 size: {t['bytes_fp32']:,} bytes ({t['bytes_fp32'] / 2**20:.2f} MiB) at input "
              f"{summary['input_size']}x{summary['input_size']}"]
    return "\n".join(lines)


def fp32_bytes(model: nn.Module) -> int:
    """4 bytes for every value of the state_dict: a model's size as the paper counts it uncompressed."""
    return 4 * sum(v.numel() for v in model.state_dict().values())
