"""Top-1/top-5 accuracy over a set of images, and top-k predictions for single images.

The model may be an `nn.Module` or any callable from a float32 NCHW tensor to logits (an ONNX Runtime session
wrapper, say). Images are decoded in DataLoader workers; an unreadable one stops the run with its file name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from squeezenet.data.augment import center_crop, to_nchw
from squeezenet.data.folders import Samples, load_image
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.weights import Weights
from squeezenet.models.preprocessing import Preprocessing
from squeezenet.progress import bar as progress_bar

Model = nn.Module | Callable[[torch.Tensor], object]


class _Images(Dataset):
    """Decoded, resized and cropped uint8 CHW images; a failure is returned, not raised, so it keeps its message."""

    def __init__(self, paths: Sequence[Path], preprocessing: Preprocessing) -> None:
        self.paths, self.preprocessing = list(paths), preprocessing

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, str | None]:
        try:
            return i, self.preprocessing.to_uint8(load_image(self.paths[i])), None
        except SqueezeNetError as e:
            return i, None, str(e)


def _as_list(items: list) -> list:
    return items


def _collate(items: list) -> tuple[torch.Tensor, torch.Tensor]:
    for _, _, error in items:
        if error is not None:
            raise SqueezeNetError(error)
    return torch.tensor([i for i, _, _ in items]), torch.stack([x for _, x, _ in items])


def _batches(paths: Sequence[Path], preprocessing: Preprocessing, batch_size: int, workers: int):
    loader = DataLoader(_Images(paths, preprocessing), batch_size=batch_size, num_workers=workers,
                        collate_fn=_as_list)
    for items in loader:
        yield _collate(items)


def _runner(model: Model) -> Callable[[torch.Tensor], torch.Tensor]:
    """A callable returning float logits; a module is switched to eval mode and channels_last (in place: on a CPU
    channels_last convolutions are several times faster)."""
    if isinstance(model, nn.Module):
        model.eval().to(memory_format=torch.channels_last)

        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return model(x.contiguous(memory_format=torch.channels_last))

        return run
    return lambda x: torch.as_tensor(model(x)).float()


def scores(model: Model, samples: Samples, preprocessing: Preprocessing, batch_size: int = 32,
           progress: bool = True, workers: int = 1) -> torch.Tensor:
    """The float logits of every image of `samples`, in order (N x classes); a label out of the model's range
    stops the run naming its image. The progress bar (on stderr, only on a terminal) shows the running top-1."""
    if len(samples) == 0:
        raise SqueezeNetError("no images to evaluate")
    run = _runner(model)
    labels = torch.tensor(samples.labels)
    out: list[torch.Tensor] = []
    correct = seen = 0
    bar = progress_bar(total=len(samples), desc="evaluate", unit="img", disable=None if progress else True,
                       leave=False)
    try:
        for idx, images in _batches(samples.paths, preprocessing, batch_size, workers):
            logits = run(preprocessing.normalize(images)).float()
            y = labels[idx]
            if y.min() < 0 or y.max() >= logits.shape[1]:
                bad = int(idx[(y < 0) | (y >= logits.shape[1])][0])
                raise SqueezeNetError(f"{samples.paths[bad]}: label {int(labels[bad])} is out of range for a "
                                      f"model with {logits.shape[1]} classes")
            out.append(logits)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(idx)
            bar.update(len(idx))
            bar.set_postfix(top1=f"{100 * correct / seen:.1f}%")
    finally:
        bar.close()
    return torch.cat(out)


def accuracy(logits: torch.Tensor, labels: Sequence[int]) -> dict:
    """{'top1', 'top5'} as fractions (top-5 is None for a model of 5 classes or fewer: it would always be 1)."""
    y = torch.as_tensor(labels)
    top = logits.topk(min(5, logits.shape[1]), dim=1).indices
    hits = top == y[:, None]
    return {"top1": hits[:, 0].float().mean().item(),
            "top5": hits.any(dim=1).float().mean().item() if logits.shape[1] > 5 else None}


def evaluate(model: Model, samples: Samples, preprocessing: Preprocessing, batch_size: int = 32,
             progress: bool = True, workers: int = 1) -> dict:
    """{'top1', 'top5' (fractions), 'images', 'classes', 'preprocessing', 'seconds', 'images_per_s'} of `model`
    on `samples`."""
    start = time.perf_counter()
    logits = scores(model, samples, preprocessing, batch_size, progress, workers)
    return figures(logits, samples, preprocessing, time.perf_counter() - start)


def figures(logits: torch.Tensor, samples: Samples, preprocessing: Preprocessing, seconds: float) -> dict:
    """`evaluate`'s report from scores already computed (`squeezenet evaluate` keeps them to pair two models)."""
    n = len(samples)
    return {**accuracy(logits, samples.labels), "images": n, "classes": samples.num_classes_present,
            "preprocessing": preprocessing.protocol, "seconds": seconds, "images_per_s": n / seconds}


def predict(model: Model, paths: Sequence[str | Path], preprocessing: Preprocessing, classes: Sequence[str],
            top: int = 5, batch_size: int = 32) -> list[dict]:
    """Per image: {'file', 'top': [{'index', 'name', 'probability'}, ...]} with the `top` most probable classes."""
    run = _runner(model)
    results: list[dict] = []
    bar = progress_bar(total=len(paths), desc="predict", unit="img", leave=False)
    for idx, images in _batches([Path(p) for p in paths], preprocessing, batch_size, workers=0):
        bar.update(len(idx))
        probs = torch.softmax(run(preprocessing.normalize(images)).float(), dim=1)
        if probs.shape[1] != len(classes):
            raise SqueezeNetError(f"the model has {probs.shape[1]} outputs but {len(classes)} class names")
        p, k = probs.topk(min(top, probs.shape[1]), dim=1)
        for i, row_p, row_k in zip(idx.tolist(), p.tolist(), k.tolist(), strict=True):
            results.append({"file": str(paths[i]), "top": [{"index": c, "name": classes[c], "probability": q}
                                                            for c, q in zip(row_k, row_p, strict=True)]})
    bar.close()
    return results


def scorer(samples: Samples, weights: Weights, limit: int | None = None) -> Callable[[nn.Module], float]:
    """top-1 on held-out images (a class-balanced sample of `limit`), for `compress(score=...)` and `sensitivity`.

    The images are decoded once, here: a score is then forward passes only (sensitivity asks for ~100 of them)."""
    subset = samples.sample(limit)
    pre = weights.preprocessing
    batches = progress_bar(_batches(subset.paths, pre, 64, 1), total=-(-len(subset) // 64), unit="batch",
                   desc=f"decoding {len(subset)} held-out images", leave=False)
    decoded = [(pre.normalize(x), torch.tensor(subset.labels)[i]) for i, x in batches]

    def score(model: nn.Module) -> float:
        run = _runner(model)
        return sum(int((run(x).argmax(1) == y).sum()) for x, y in decoded) / len(subset)

    return score


@torch.no_grad()
def evaluate_decoded(model: nn.Module, val, pre: Preprocessing, size: int, rank: int, world: int,
             device: torch.device, batch: int = 200) -> dict:
    """Top-1/top-5/loss on this rank's shard, summed over ranks; for SqueezeNet also the share of conv10 outputs
    <= 0 (what a final ReLU zeroes: the symptom of the known stall)."""
    model.eval()
    net = model.module if hasattr(model, "module") else model
    dead = []
    final = getattr(net, "final_conv", None)
    hook = final.register_forward_hook(lambda m, i, o: dead.append((o <= 0).float().mean().item())) if final else None
    idx = torch.arange(rank, len(val), world)
    sums = torch.zeros(5, dtype=torch.float64)  # loss, top1, top5, n, dead
    for s in range(0, len(idx), batch):
        j = idx[s:s + batch].numpy()
        x = pre.normalize(center_crop(to_nchw(val.images[j]), size).to(device))
        y = torch.from_numpy(val.labels[j]).to(device)
        out = net(x.contiguous(memory_format=torch.channels_last))
        top5 = out.topk(min(5, out.shape[1]), 1).indices
        sums += torch.tensor([F.cross_entropy(out, y, reduction="sum").item(), (top5[:, 0] == y).sum().item(),
                              (top5 == y[:, None]).any(1).sum().item(), len(j), dead[-1] * len(j) if dead else 0],
                             dtype=torch.float64)
    if world > 1:
        dist.all_reduce(sums)
    n = max(sums[3].item(), 1)
    out = {"val_loss": sums[0].item() / n, "val_top1": sums[1].item() / n}
    if len(val.classes) > 5:  # with 5 classes or fewer top-5 is always 1
        out["val_top5"] = sums[2].item() / n
    if hook is None:
        return out
    hook.remove()
    return out | {"conv10_nonpositive": sums[4].item() / n}
