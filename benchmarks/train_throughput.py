"""Training throughput (images/s) of `squeezenet.train` on Imagenette against two baselines measured in the same run.

(a) a plain loop: a torch DataLoader that decodes the JPEGs with PIL every step (random resized crop, flip,
    normalise), the usual way, in the training process (0 workers: the same CPU budget as ours) and with
    `--workers` extra worker processes (which buy their speed with CPU time beyond ours);
(b) the same model step on random tensors already in memory: the compute bound.
Ours is timed as the difference between `train(max_steps=W + N)` and `train(max_steps=W)` with the decoded
cache already built, so start-up is not counted. Rounds are interleaved, each ratio is taken within its round
and reported as its median over the rounds with a 95% interval; the rounds go on until ours against each loop is
known to --tolerance (`timing.interleaved`), and `load_average` says whether the machine was idle. The plain
loop's data work alone (no model) is timed too: its share of the plain step says what a cache can save at most.

    python benchmarks/train_throughput.py [--image-size 128 --batch-size 64 --steps 20 --threads 1]
        [--rounds 6 --max-rounds 12 --tolerance 0.03]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from fresh import default_out
from PIL import Image
from timing import Load, add_arguments, interleaved, protocol, ratio

from squeezenet import create_model
from squeezenet.atomic import write_text
from squeezenet.data.folders import list_samples, load_image
from squeezenet.models.preprocessing import preset
from squeezenet.paths import shared_dir
from squeezenet.training.loop import train
from squeezenet.training.recipes import TrainConfig


class PilDataset(torch.utils.data.Dataset):
    """JPEG -> PIL random resized crop + flip -> normalised tensor, every time an item is read."""

    def __init__(self, samples, size: int, min_scale: float):
        self.samples, self.size, self.min_scale = samples, size, min_scale
        self.pre = preset("torchvision", size)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        im = load_image(self.samples.paths[i])
        w, h = im.size
        area = w * h * random.uniform(self.min_scale, 1.0)
        r = np.exp(random.uniform(np.log(3 / 4), np.log(4 / 3)))
        cw, ch = min(w, round((area * r) ** 0.5)), min(h, round((area / r) ** 0.5))
        x0, y0 = random.randint(0, w - cw), random.randint(0, h - ch)
        im = im.resize((self.size, self.size), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
        if random.random() < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        x = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1)
        return self.pre.normalize(x[None])[0], self.samples.labels[i]


def step_fn(args):
    model = create_model(args.model, num_classes=10, **MODEL_KW).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=2e-4)

    def step(x, y):
        F.cross_entropy(model(x.contiguous(memory_format=torch.channels_last)), y).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def bench_plain(args, workers: int) -> float:
    ds = PilDataset(list_samples(Path(args.data) / "train"), args.image_size, 0.35)
    dl = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=True, num_workers=workers,
                                     drop_last=True, persistent_workers=False)
    step, it = step_fn(args), iter(dl)
    for _ in range(args.warmup):
        step(*next(it))
    t = time.perf_counter()
    for _ in range(args.steps):
        step(*next(it))
    return args.steps * args.batch_size / (time.perf_counter() - t)


def bench_pil_only(args) -> float:
    """Images/s of the plain loop's data work alone (decode, crop, resize, flip, normalise), no model."""
    ds = PilDataset(list_samples(Path(args.data) / "train"), args.image_size, 0.35)
    n = args.steps * args.batch_size
    t = time.perf_counter()
    for i in range(n):
        ds[i * 7 % len(ds)]
    return n / (time.perf_counter() - t)


def bench_memory(args) -> float:
    step = step_fn(args)
    x = torch.randn(args.batch_size, 3, args.image_size, args.image_size)
    y = torch.randint(0, 10, (args.batch_size,))
    for _ in range(args.warmup):
        step(x, y)
    t = time.perf_counter()
    for _ in range(args.steps):
        step(x, y)
    return args.steps * args.batch_size / (time.perf_counter() - t)


def bench_ours(args, tmp: Path) -> float:
    def run(n: int) -> float:
        cfg = TrainConfig(data=args.data, out=str(tmp / f"run{n}"), model=args.model, model_overrides=MODEL_KW,
                          epochs=1, batch_size=args.batch_size, image_size=args.image_size, threads=args.threads,
                          max_steps=n, cache_dir=args.cache_dir)
        t = time.perf_counter()
        train(cfg)
        return time.perf_counter() - t
    short, long = run(args.warmup), run(args.warmup + args.steps)
    return args.steps * args.batch_size / (long - short)


MODEL_KW = {"batch_norm": True, "final_relu": False}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(shared_dir() / "data" / "imagenette2"))
    p.add_argument("--model", default="squeezenet1_1")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    add_arguments(p, rounds=6, max_rounds=12)
    p.add_argument("--threads", type=int, default=1, help="torch threads of the training process")
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="DataLoader workers of the plain loop")
    p.add_argument("--cache-dir")
    p.add_argument("--out", default=default_out("train_throughput"),
                    help="output JSON (default: a new file under results/benchmarks/)")
    args = p.parse_args()
    load = Load()
    torch.set_num_threads(args.threads)
    plain, plain_w, memory = "plain_pil_dataloader", f"plain_pil_dataloader_{args.workers}_workers", "memory_tensors"
    with tempfile.TemporaryDirectory() as tmp:
        train(TrainConfig(data=args.data, out=str(Path(tmp) / "cache"), model=args.model, epochs=1,
                          batch_size=args.batch_size, image_size=args.image_size, threads=args.threads, max_steps=1,
                          cache_dir=args.cache_dir))  # builds the decoded cache (not timed)
        runs = itertools.count()

        def one_round() -> dict[str, float]:
            r = {"ours": bench_ours(args, Path(tmp) / str(next(runs)))}
            torch.set_num_threads(args.threads)
            r |= {plain: bench_plain(args, 0), plain_w: bench_plain(args, args.workers), memory: bench_memory(args),
                  "pil_data_only": bench_pil_only(args)}
            print({k: round(v, 1) for k, v in r.items()}, flush=True)
            return r

        res, ratios = interleaved(one_round, [("ours", plain), ("ours", plain_w), ("ours", memory)], args,
                                  "interleaved rounds")
    out = {"what": "training images/s, SqueezeNet train step (SGD, BN variant), median of interleaved rounds",
           "settings": {k: v for k, v in vars(args).items() if k != "out"} | {"model_kw": MODEL_KW},
           "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
           "load_average": load.record(), "rounds": protocol(args),
           "images_per_s_median": {k: float(np.median(v)) for k, v in res.items()}, "images_per_s_rounds": res,
           "ratios": ratios,
           # no loop beats the compute bound: the most any loop can gain over the plain one
           "max_possible_vs_plain": ratio(res[memory], res[plain], args.tolerance),
           "data_share_of_plain_step": ratio(res[memory], res["pil_data_only"], args.tolerance)}
    write_text(args.out, json.dumps(out, indent=2) + "\n")
    keys = ("images_per_s_median", "ratios", "max_", "data_", "load_")
    print(json.dumps({k: v for k, v in out.items() if k.startswith(keys)}))


if __name__ == "__main__":
    main()
