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
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import sqzformat
from .alexnet import AlexNet
from .data import Samples, decode_cached, list_samples, random_resized_crop, random_resized_crop_params
from .errors import SqueezeNetError
from .evaluate import evaluate
from .lowrank import factorize, parse_ranks
from .prune import PROFILES, Pruner, alexnet_densities, global_densities, paper_names, std_densities, table1_densities
from .quantize import WeightSharing, layer_bits, quantizable, quantize_model
from .registry import create_model
from .weights import Weights

LOSSES = ("distill", "labels", "both")


def alexnet_fp32_bytes() -> int:
    """AlexNet's size in fp32 (the paper's 240 MB), the denominator of Table 2's "reduction" column."""
    with torch.device("meta"):
        return 4 * sum(p.numel() for p in create_model("alexnet").parameters())


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


def training_images(data_dir: str | Path | None) -> Path | None:
    """The folder to learn from: a dataset root (`DIR/train`, `DIR/val`, as `train --data` takes) means its train/."""
    if data_dir is None:
        return None
    return Path(data_dir) / "train" if (Path(data_dir) / "train").is_dir() else Path(data_dir)


def check_disjoint(train_dir: str | Path | None, eval_dir: str | Path | None) -> None:
    """Refuse to train on the evaluation images (same folder, or one inside the other)."""
    if train_dir is None or eval_dir is None:
        return
    a, b = Path(train_dir).resolve(), Path(eval_dir).resolve()
    if a == b or a in b.parents or b in a.parents:
        raise SqueezeNetError(f"training data {a} overlaps the evaluation data {b}: never train on evaluation images")


class _Batches:
    """Random augmented batches (random resized crop, flip) from the decoded-image cache, uint8 -> normalized."""

    def __init__(self, weights: Weights, data_dir: str | Path, opts: CompressOptions) -> None:
        samples = list_samples(data_dir, weights.class_ids or weights.classes)
        samples = samples.sample(opts.train_limit, opts.seed)
        self.pre = weights.preprocessing
        self.decoded = decode_cached(samples, self.pre.crop_size, warp=self.pre.resize_mode == "warp")
        self.gen = torch.Generator().manual_seed(opts.seed)
        self.batch_size = opts.batch_size

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(self.decoded), (self.batch_size,), generator=self.gen).sort().values.numpy()
        x = torch.from_numpy(np.ascontiguousarray(self.decoded.images[idx])).permute(0, 3, 1, 2)
        theta = random_resized_crop_params(len(idx), self.gen, scale=(0.35, 1.0))
        x = random_resized_crop(x, self.pre.crop_size, theta)
        return self.pre.normalize(x).contiguous(memory_format=torch.channels_last), \
            torch.from_numpy(self.decoded.labels[idx])


def train_steps(student: nn.Module, teacher: nn.Module | None, batches: Callable, params: list[nn.Parameter],
                steps: int, lr: float, opts: CompressOptions, after_backward: Callable[[], None] = lambda: None,
                after_step: Callable[[], None] = lambda: None, log: Callable[[str], None] = print) -> None:
    """Adam with a cosine learning rate over `steps` batches; the student stays in eval mode (no dropout noise)."""
    if steps == 0:
        return
    opt = torch.optim.Adam(params, lr=lr)
    student.eval()
    t0 = time.perf_counter()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        x, y = batches()
        out = student(x)
        loss = out.new_zeros(())
        if opts.loss in ("distill", "both"):
            with torch.no_grad():
                target = F.softmax(teacher(x) / opts.temperature, 1)
            loss = loss + F.kl_div(F.log_softmax(out / opts.temperature, 1), target,
                                   reduction="batchmean") * opts.temperature ** 2
        if opts.loss in ("labels", "both"):
            loss = loss + F.cross_entropy(out, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        after_backward()
        opt.step()
        after_step()
        if step % 20 == 0 or step == steps - 1:
            log(f"  step {step + 1}/{steps} loss {loss.item():.4f} ({time.perf_counter() - t0:.0f}s)")


def fisher(model: nn.Module, batches: Callable, n_batches: int) -> dict[str, torch.Tensor]:
    """Diagonal Fisher information of the conv weights, labels drawn from the model's own predictions.

    It says how much the loss feels a change of each weight, so it weights the k-means errors (and, with
    `rate`, sets one exchange rate between bits and loss for the whole network).
    """
    names = quantizable(model)
    params = [model.get_parameter(n) for n in names]
    acc = [torch.zeros_like(p) for p in params]
    model.eval()
    for _ in range(n_batches):
        x, _ = batches()
        out = model(x)
        y = torch.multinomial(F.softmax(out.detach().float(), 1), 1).squeeze(1)
        for a, g in zip(acc, torch.autograd.grad(F.cross_entropy(out, y), params), strict=True):
            a += g.detach() ** 2
    return {n: a / n_batches + 1e-3 * a.mean() / n_batches for n, a in zip(names, acc, strict=True)}


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


def fp32_layers(model: nn.Module, sparse: bool) -> list[dict]:
    """Per tensor, what fp32 storage costs: weights dense, or (`sparse`: pruned) their non-zeros plus a 4-bit
    relative index (fillers ignored); biases and buffers dense."""
    weights = set(quantizable(model))
    rows = []
    for name, p in model.state_dict().items():
        row = {"name": name, "shape": list(p.shape), "numel": p.numel()}
        if name in weights:
            nz = int(torch.count_nonzero(p)) if sparse else p.numel()
            index = math.ceil(nz / 2) if sparse else 0
            row |= {"kind": "fp32", "bits": 32, "nonzero": nz, "codebook_bytes": 0, "codes_bytes": 4 * nz,
                    "index_bytes": index, "bytes": 4 * nz + index}
        else:
            row |= {"kind": "float32", "raw_bytes": 4 * p.numel(), "bytes": 4 * p.numel()}
        rows.append(row)
    return rows


def sparse_fp32_bytes(model: nn.Module) -> int:
    """Size after pruning alone: non-zero fp32 weights plus a 4-bit relative index (fillers ignored), dense biases."""
    return sum(row["bytes"] for row in fp32_layers(model, sparse=True))


def compress(weights: Weights, opts: CompressOptions, data_dir: str | Path | None = None,
             score: Callable[[nn.Module], float] | None = None, log: Callable[[str], None] = print) -> Result:
    """Run the pipeline on `weights`; `score(model)` (e.g. top-1 on held-out images) is recorded per stage."""
    opts.validate()
    training = opts.retrain_epochs > 0 or opts.finetune_epochs > 0 or opts.fisher_batches > 0
    if training and data_dir is None:
        raise SqueezeNetError("retraining, fine-tuning and Fisher weighting need --data (training images)")
    torch.manual_seed(opts.seed)
    teacher = weights.build()
    batches = _Batches(weights, training_images(data_dir), opts) if training else None

    def steps(epochs: float) -> int:
        return math.ceil(epochs * len(batches.decoded) / opts.batch_size) if epochs > 0 else 0

    stages: list[dict] = []

    def stage(name: str, size: int, m: nn.Module) -> None:
        row = {"stage": name, "bytes": size}
        if score is not None:
            row["score"] = float(score(m))
        stages.append(row)
        log(f"{name}: {size:,} bytes" + (f", score {row['score']:.4f}" if "score" in row else ""))

    stage("fp32", 4 * sum(p.numel() for p in teacher.state_dict().values()), teacher)
    if opts.svd:
        weights = factorize(weights, parse_ranks(opts.svd, teacher))
    model = weights.build()
    if opts.svd:
        ranks = ", ".join(f"{k} {r}" for k, r in weights.config["ranks"].items())
        stage(f"SVD (rank {ranks})", 4 * sum(p.numel() for p in model.state_dict().values()), model)
    dens = densities_for(model, opts)
    pruner = Pruner(model, dens) if dens else None
    retrain = steps(opts.retrain_epochs)
    if pruner and retrain:
        k = 4  # gradual: four pruning steps along the AGP curve, retraining in between
        for i in range(1, k + 1):
            pruner.prune(i / k)
            train_steps(model, teacher, batches, list(model.parameters()), max(1, retrain // k), opts.lr_retrain,
                        opts, after_step=pruner.apply, log=log)
    elif pruner:
        pruner.prune(1.0)
    elif retrain:  # fine-tuning the factorised layers
        train_steps(model, teacher, batches, list(model.parameters()), retrain, opts.lr_retrain, opts, log=log)
    if pruner:
        pruner.remove()
        stage("pruned", sparse_fp32_bytes(model), model)
    elif retrain:
        stage("fine-tuned", 4 * sum(p.numel() for p in model.state_dict().values()), model)
    meta = dict(weights.meta) | {"compression": {k: v for k, v in asdict(opts).items() if k != "coders"}}

    def result() -> Weights:
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return Weights(weights.arch, weights.config, state, weights.classes, weights.preprocessing,
                       weights.class_ids, meta)

    if not opts.quantize:
        return Result(result(), None, fp32_layers(model, sparse=pruner is not None), stages)
    importance = fisher(model, batches, opts.fisher_batches) if opts.fisher_batches else None
    bits = opts.bits if opts.fc_bits is None else layer_bits(model, opts.bits, opts.fc_bits)
    quantized = quantize_model(model, bits, opts.init, opts.rate, importance)
    if opts.finetune_epochs:
        sharing = WeightSharing(model, quantized)
        biases = [p for n, p in model.named_parameters() if n not in quantized]
        train_steps(model, teacher, batches, sharing.centroids() + biases, steps(opts.finetune_epochs),
                    opts.lr_finetune, opts, after_backward=sharing.accumulate, after_step=sharing.sync, log=log)
        quantized = sharing.quantized()
    out = result()
    data, layers = sqzformat.encode(out, quantized, gap_bits=opts.gap_bits, coders=opts.coders)
    decoded = sqzformat.decode(data).weights
    # the authors' layout: fixed-width codes, 4-bit gaps, fp32 codebooks and biases (same weights, no entropy coding)
    fixed, _ = sqzformat.encode(out, quantized, gap_bits=4, coders=("raw",), float_dtype="f32", codebook_dtype="f32")
    label = f"{opts.bits}" if opts.fc_bits is None else f"{opts.bits}/{opts.fc_bits} (conv/fc)"
    stage(f"quantized {label}-bit, fixed width", len(fixed), decoded.build())
    stages.append({"stage": f"quantized {label}-bit, entropy coded", "bytes": len(data),
                   "score": stages[-1].get("score")})
    return Result(decoded, data, layers, stages)


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
    stages: list[dict] = []
    model = weights.build()
    for name, size in (("input (fp32)", 4 * sum(p.numel() for p in model.state_dict().values())),
                       (f"lossless: its {max(q.bits for q in weights.codebooks.values())}-bit codebooks, coded",
                        len(data))):
        stages.append({"stage": name, "bytes": size} | ({"score": float(score(model))} if score else {}))
        log(f"{name}: {size:,} bytes" + (f", score {stages[-1]['score']:.4f}" if score else ""))
        if score:  # identical weights: measured once, not twice
            score = (lambda v: lambda _: v)(stages[-1]["score"])
    return Result(decoded, data, layers, stages)


# ---- reporting: Table 1's right half and Table 2's reduction ----------------------------------------------------

def layer_table(result_layers: list[dict], model: nn.Module) -> list[dict]:
    """Per paper layer: parameters before/after pruning, density, bits and bytes of codebook, codes, index, bias."""
    names = paper_names(model)
    rows: dict[str, dict] = {}
    for lay in result_layers:
        base = lay["name"].rsplit(".", 1)[0]
        paper = names.get(base + ".weight", base)
        layer = paper.split("/")[0]
        r = rows.setdefault(layer, {"layer": layer, "params": 0, "params_after": 0, "bits": None,
                                    "codebook_bytes": 0, "codes_bytes": 0, "index_bytes": 0, "bias_bytes": 0})
        r["params"] += lay["numel"]
        if "nonzero" in lay:  # a weight: quantized, or fp32 (`fp32_layers`)
            r["params_after"] += lay["nonzero"]
            r["bits"] = lay["bits"]
            for k in ("codebook_bytes", "codes_bytes", "index_bytes"):
                r[k] += lay[k]
        else:
            r["params_after"] += lay["numel"]
            r["bias_bytes"] += lay["raw_bytes"]
    for r in rows.values():
        r["density"] = r["params_after"] / r["params"]
        r["bytes"] = r["codebook_bytes"] + r["codes_bytes"] + r["index_bytes"] + r["bias_bytes"]
    return list(rows.values())


def report(result: Result) -> dict:
    """The JSON of `squeezenet compress --json`: layers, total_bytes, stages and the reductions."""
    rep = _report(result.weights, result.layers, result.bytes, result.stages)
    return rep | {"format": "sqz" if result.data is not None else "fp32"}


def file_report(data: bytes) -> dict:
    """The same table for an existing .sqz file (what `summary --weights model.sqz` prints)."""
    d = sqzformat.decode(data)
    return _report(d.weights, d.layers, len(data), [])


def _report(weights: Weights, layers: list[dict], total: int, stages: list[dict]) -> dict:
    model = weights.build()
    rows = layer_table(layers, model)
    # against the input's fp32 (stage 0), which SVD makes differ from the result's architecture
    fp32 = stages[0]["bytes"] if stages else 4 * sum(p.numel() for p in model.state_dict().values())
    alexnet = alexnet_fp32_bytes()
    stages = [s | {"vs_alexnet": alexnet / s["bytes"]} for s in stages]
    return {"layers": rows, "total_bytes": total, "fp32_bytes": fp32, "vs_fp32": fp32 / total,
            "vs_alexnet": alexnet / total, "stages": stages, "format": "sqz"}


def format_report(rep: dict) -> str:
    head = (f"{'layer':<8}{'params':>12}{'after':>12}{'density':>9}{'bits':>5}{'codebook':>10}{'codes':>12}"
            f"{'index':>10}{'bias':>8}{'bytes':>12}")
    lines = [head, "-" * len(head)]
    for r in rep["layers"]:
        lines.append(f"{r['layer']:<8}{r['params']:>12,}{r['params_after']:>12,}{r['density']:>9.1%}"
                     f"{r['bits'] or '':>5}{r['codebook_bytes']:>10,}{r['codes_bytes']:>12,}{r['index_bytes']:>10,}"
                     f"{r['bias_bytes']:>8,}{r['bytes']:>12,}")
    t = {k: sum(r[k] for r in rep["layers"]) for k in ("params", "params_after", "codebook_bytes", "codes_bytes",
                                                         "index_bytes", "bias_bytes", "bytes")}
    lines += ["-" * len(head),
              f"{'total':<8}{t['params']:>12,}{t['params_after']:>12,}{t['params_after'] / t['params']:>9.1%}"
              f"{'':>5}{t['codebook_bytes']:>10,}{t['codes_bytes']:>12,}{t['index_bytes']:>10,}{t['bias_bytes']:>8,}"
              f"{t['bytes']:>12,}",
              ("file: {:,} bytes (header and framing included)" if rep.get("format", "sqz") == "sqz" else
               "fp32: {:,} bytes as the paper counts them (4 a weight; pruned: non-zeros plus a 4-bit index)").format(
                  rep["total_bytes"]) + f"; {rep['vs_fp32']:.1f}x smaller than fp32 ({rep['fp32_bytes']:,} bytes), "
              f"{rep['vs_alexnet']:.0f}x smaller than AlexNet fp32"]
    if rep["stages"]:
        lines += ["", f"{'stage':<44}{'bytes':>12}{'vs AlexNet':>12}{'score':>9}"]
        for s in rep["stages"]:
            sc = f"{s['score']:.2%}" if s.get("score") is not None else ""
            lines.append(f"{s['stage']:<44}{s['bytes']:>12,}{s['vs_alexnet']:>11.0f}x{sc:>9}")
    return "\n".join(lines)


def scorer(samples: Samples, weights: Weights, limit: int | None = None) -> Callable[[nn.Module], float]:
    """top-1 on held-out images (a class-balanced sample of `limit`), for `compress(score=...)`."""
    subset = samples.sample(limit)
    return lambda m: evaluate(m, subset, weights.preprocessing, progress=False)["top1"]
