"""Deep Compression end to end: prune -> retrain -> quantize -> fine-tune the centroids -> encode (`.sqz`).

For AlexNet's rows of Table 2 the same pipeline starts with an optional SVD of the fc layers (`lowrank`) and can
stop before quantization (`quantize=False`): the SVD row and the network-pruning row are its fp32 results.

Retraining and centroid fine-tuning learn from labelled images when asked, and by default distil from the
uncompressed model (its softened outputs as targets), which needs no labels: that is how a 1000-class ImageNet
model is fine-tuned on Imagenette's images without drifting towards its 10 classes. The images used to evaluate
are never used to train (`check_disjoint`). Every stage's size is reported as Table 2 reports it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from squeezenet.compression.finetune import Batches, fisher, train_steps
from squeezenet.compression.lowrank import factorize, parse_ranks
from squeezenet.compression.options import CompressOptions, Result
from squeezenet.compression.prune import (
    PROFILES,
    Pruner,
    alexnet_densities,
    global_densities,
    std_densities,
    table1_densities,
)
from squeezenet.compression.quantize import layer_bits, quantizable, quantize_model, rd_lambdas
from squeezenet.compression.reconstruct import reconstruct
from squeezenet.compression.sharing import WeightSharing
from squeezenet.compression.sizes import fp32_layers, sparse_fp32_bytes
from squeezenet.data.folders import training_images
from squeezenet.errors import SqueezeNetError
from squeezenet.formats import sqz as sqzformat
from squeezenet.formats.weights import Weights
from squeezenet.models.alexnet import AlexNet
from squeezenet.models.summary import fp32_bytes


def default_profile(weights: Weights, svd: str | None) -> str | None:
    """Without a pruning target: none after SVD (Table 2's SVD row prunes nothing), else the paper's densities."""
    return None if svd else "alexnet" if weights.arch == "alexnet" else "table1"


def densities_for(model: nn.Module, opts: CompressOptions) -> dict[str, float] | None:
    if opts.density is not None:
        return global_densities(model, opts.density)
    if opts.quality is not None:
        return std_densities(model, opts.quality)
    if opts.profile in PROFILES and (opts.profile == "alexnet") != isinstance(model, AlexNet):
        raise SqueezeNetError(f"profile {opts.profile} does not fit a {type(model).__name__} (table1: SqueezeNet, "
                              "alexnet: AlexNet)")
    if opts.profile == "table1":
        return table1_densities(model)
    if opts.profile == "alexnet":
        return alexnet_densities(model)
    return None


class _Stages:
    """The size (and, with `score`, the accuracy) after every stage, logged as it is recorded."""

    def __init__(self, score: Callable[[nn.Module], float] | None, log: Callable[[str], None]) -> None:
        self.rows: list[dict] = []
        self.score, self.log = score, log

    def __call__(self, name: str, size: int, m: nn.Module | None) -> None:
        row = {"stage": name, "bytes": size}
        if self.score is not None:
            row["score"] = float(self.score(m)) if m is not None else self.rows[-1].get("score")
        self.rows.append(row)
        self.log(f"{name}: {size:,} bytes" + (f", score {row['score']:.4f}" if "score" in row else ""))


def _prune_and_retrain(model: nn.Module, teacher: nn.Module, batches, opts: CompressOptions,
                       steps: int) -> Pruner | None:
    """Prune to the target densities, gradually (four steps along the AGP curve) when retraining; retraining
    alone fine-tunes factorised layers."""
    dens = densities_for(model, opts)
    pruner = Pruner(model, dens) if dens else None
    if pruner and steps:
        k = 4
        for i in range(1, k + 1):
            pruner.prune(i / k)
            train_steps(model, teacher, batches, list(model.parameters()), max(1, steps // k), opts.lr_retrain,
                        opts, after_step=pruner.apply, desc=f"retraining, pruned {i}/{k} of the way")
    elif pruner:
        pruner.prune(1.0)
    elif steps:
        train_steps(model, teacher, batches, list(model.parameters()), steps, opts.lr_retrain, opts,
                    desc="retraining")
    if pruner:
        pruner.remove()
    return pruner


def _quantize(model: nn.Module, teacher: nn.Module, batches, opts: CompressOptions, steps: int,
              log: Callable[[str], None]) -> dict:
    """Weight sharing (Fisher-weighted when asked), then block reconstruction when asked, then the centroids (and
    with `reassign` the weights, from their values before quantization) fine-tuned for `steps` batches."""
    importance = fisher(model, batches, opts.fisher_batches) if opts.fisher_batches else None
    bits = opts.bits if opts.fc_bits is None else layer_bits(model, opts.bits, opts.fc_bits)
    learn = opts.reassign or opts.reconstruct_steps > 0  # the weights' assignment to levels trains too
    latent = {n: model.get_parameter(n).detach().clone() for n in quantizable(model)} if learn else None
    lambdas = rd_lambdas(model, opts.rate, importance) if learn else None
    quantized = quantize_model(model, bits, opts.init, opts.rate, importance, opts.rdo)
    if not (steps or opts.reconstruct_steps):
        return quantized
    pull = {n: opts.anchor * f for n, f in importance.items()} if opts.anchor else None
    sharing = WeightSharing(model, quantized, latent, lambdas, pull)
    if opts.reconstruct_steps:
        images = [batches()[0] for _ in range(-(-opts.reconstruct_images // opts.batch_size))]
        reconstruct(model, teacher, sharing, images, opts.reconstruct_steps, opts.reconstruct_steps,
                    opts.lr_reconstruct, opts.seed, log)
    if steps:
        biases = [p for n, p in model.named_parameters() if n not in quantized]
        train_steps(model, teacher, batches, sharing.parameters() + biases, steps, opts.lr_finetune, opts,
                    after_backward=sharing.accumulate, after_step=sharing.sync,
                    desc="fine-tuning the weights and centroids" if opts.reassign else "fine-tuning the centroids")
    return sharing.quantized()


def compress(weights: Weights, opts: CompressOptions, data_dir: str | Path | None = None,
             score: Callable[[nn.Module], float] | None = None, log: Callable[[str], None] = print) -> Result:
    """Run the pipeline on `weights`; `score(model)` (e.g. top-1 on held-out images) is recorded per stage."""
    opts.validate()
    training = opts.retrain_epochs > 0 or opts.finetune_epochs > 0 or opts.fisher_batches > 0 or \
        opts.reconstruct_steps > 0
    if training and data_dir is None:
        raise SqueezeNetError("retraining, fine-tuning, reconstruction and Fisher weighting need --data (training "
                              "images)")
    torch.manual_seed(opts.seed)
    teacher = weights.build()
    batches = Batches(weights, training_images(data_dir), opts) if training else None
    if batches is not None and opts.balance:
        log(f"balanced transfer set: the uncompressed model's top-1 on the {len(batches.decoded):,} training images "
            f"reaches {batches.balance(teacher)} classes; each image drawn with odds 1 / its class's count")

    def steps(epochs: float) -> int:
        return math.ceil(epochs * len(batches.decoded) / opts.batch_size) if epochs > 0 else 0

    stage = _Stages(score, log)
    stage("fp32", fp32_bytes(teacher), teacher)
    if opts.svd:
        weights = factorize(weights, parse_ranks(opts.svd, teacher))
    model = weights.build()
    if opts.svd:
        stage(f"SVD (rank {', '.join(f'{k} {r}' for k, r in weights.config['ranks'].items())})", fp32_bytes(model),
              model)
    pruner = _prune_and_retrain(model, teacher, batches, opts, steps(opts.retrain_epochs))
    if pruner:
        stage("pruned", sparse_fp32_bytes(model), model)
    elif opts.retrain_epochs:
        stage("fine-tuned", fp32_bytes(model), model)
    meta = dict(weights.meta) | {"compression": {k: v for k, v in asdict(opts).items() if k != "coders"}}
    out = Weights(weights.arch, weights.config, {k: v.detach().clone() for k, v in model.state_dict().items()},
                  weights.classes, weights.preprocessing, weights.class_ids, meta)
    if not opts.quantize:
        return Result(out, None, fp32_layers(model, sparse=pruner is not None), stage.rows)
    quantized = _quantize(model, teacher, batches, opts, steps(opts.finetune_epochs), log)
    out.state_dict = {k: v.detach().clone() for k, v in model.state_dict().items()}
    data, layers = sqzformat.encode(out, quantized, gap_bits=opts.gap_bits, coders=opts.coders)
    decoded = sqzformat.decode(data).weights
    label = f"{opts.bits}" if opts.fc_bits is None else f"{opts.bits}/{opts.fc_bits} (conv/fc)"
    stage(f"quantized {label}-bit, entropy coded", len(data), decoded.build())
    return Result(decoded, data, layers, stage.rows)


def _exact_in_f16(values: list[np.ndarray]) -> bool:
    return all(np.array_equal(np.asarray(v, np.float32).astype(np.float16).astype(np.float32), v) for v in values)


def reencode(weights: Weights, score: Callable[[nn.Module], float] | None = None,
             log: Callable[[str], None] = print) -> Result:
    """Lossless: the weights' own codebooks and codes (the authors' `.net`, a `.sqz`) entropy coded into `.sqz`.

    What `compress` does with no training data when the weights are already weight-shared: every value stays
    what it was (checked), so the accuracy does too. Codebooks and biases are stored in fp16 where that is exact.
    """
    if not weights.codebooks:
        raise SqueezeNetError("lossless re-encoding needs weight-shared weights (a Deep Compression .net or a .sqz)")
    books = [q.codebook for q in weights.codebooks.values()]
    others = [v.numpy() for k, v in weights.state_dict.items() if k not in weights.codebooks and v.is_floating_point()]
    data, layers = sqzformat.encode(weights, weights.codebooks, codebook_dtype="f16" if _exact_in_f16(books) else "f32",
                                    float_dtype="f16" if _exact_in_f16(others) else "f32")
    decoded = sqzformat.decode(data).weights
    if not all(torch.equal(decoded.state_dict[k], v.to(decoded.state_dict[k].dtype))
               for k, v in weights.state_dict.items()):
        raise SqueezeNetError("re-encoding is not lossless")  # would make every accuracy figure wrong
    stage = _Stages(score, log)
    stage("input (fp32)", weights.fp32_bytes, weights.build())
    bits = max(q.bits for q in weights.codebooks.values())
    stage(f"lossless: its {bits}-bit codebooks, coded", len(data), None)  # identical weights: scored once
    return Result(decoded, data, layers, stage.rows)
