"""Table 2 measured here, from real files: on the shared ImageNet subset (`authors_rows`: the authors' SqueezeNet
and our re-encodings of it) and on Imagenette (`measure`: AlexNet, its SVD, pruned and Deep Compression versions,
and SqueezeNet, all trained and compressed here).

On Imagenette each row is a weights file, sized as the paper counts it (`stored_bytes`: a `.sqz` is its file;
fp32 weights are 4 bytes a parameter, or, pruned, their non-zeros plus a 4-bit index) and scored (top-1, top-5) on
held-out images. The reduction is against the first row, AlexNet fp32 as trained here.
Benchmarks-only code (`benchmarks/table2.py`, `benchmarks/table2_imagenette.py`): `table2_imagenette.py` writes
the rows to results/table2/table2.json, which `squeezenet reproduce` lays beside the paper's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from squeezenet.compression.pipeline import reencode
from squeezenet.compression.quantize import quantize_model
from squeezenet.compression.sizes import alexnet_fp32_bytes, sparse_fp32_bytes
from squeezenet.data.folders import list_samples
from squeezenet.formats import sqz as sqzformat
from squeezenet.formats.weights import load
from squeezenet.training.evaluation import evaluate


def stored_bytes(path: str | Path) -> tuple[int, str]:
    """(bytes as the paper counts them, data type) of a weights file."""
    data = Path(path).read_bytes()
    if sqzformat.is_sqz(data):
        bits = sorted({lay["bits"] for lay in sqzformat.decode(data).layers if lay["kind"] == "quantized"}) or [16]
        return len(data), f"{bits[0]}-{bits[-1]} bit" if len(bits) > 1 else f"{bits[0]} bit"
    model = load(path).build()
    dense = 4 * sum(p.numel() for p in model.state_dict().values())
    return min(dense, sparse_fp32_bytes(model)), "32 bit"


def measure(rows: list[tuple[str, str, str | Path]], val_dir: str | Path | None = None, limit: int | None = None,
            log: Callable[[str], None] = print) -> list[dict]:
    """(network, compression, weights file) -> Table 2's columns; the first row is the reduction's reference.

    `nonzero` counts the stored values that are not zero (weights, biases, buffers): the paper's pruning row (9x)
    is such a count, its 27 MB 4 bytes for each of them with no index."""
    out = []
    for network, compression, path in rows:
        size, dtype = stored_bytes(path)
        w = load(path)
        row = {"network": network, "compression": compression, "data_type": dtype, "bytes": size,
               "file": Path(path).name, "nonzero": sum(int(torch.count_nonzero(v)) for v in w.state_dict.values()),
               "top1": None, "top5": None}
        if val_dir is not None:
            samples = list_samples(val_dir, w.class_ids or w.classes).sample(limit)
            log(f"evaluating {network}, {compression} ({path}) on {len(samples)} images")
            row |= {k: v for k, v in evaluate(w.build(), samples, w.preprocessing, progress=False).items()
                    if k in ("top1", "top5")}
        out.append(row)
    return [r | {"vs_alexnet": out[0]["bytes"] / r["bytes"], "nonzero_vs_alexnet": out[0]["nonzero"] / r["nonzero"]}
            for r in out]


def authors_rows(val_dirs: list[str | Path] = (), sqz6: str | Path | None = None, limit: int | None = None,
                 authors_net: str | Path | None = None, log: Callable[[str], None] = print) -> list[dict]:
    """Table 2's rows measured here: AlexNet fp32, SqueezeNet fp32, the authors' 8-bit file, ours at 8 and 6 bits.

    Sizes are bytes of real files (or 4 bytes per parameter for fp32). Ours at 8 bits re-encodes the authors'
    codes and codebooks losslessly; ours at 6 bits is `sqz6` (e.g. a fine-tuned `squeezenet compress` output),
    else the authors' weights re-clustered now without fine-tuning. Each of `val_dirs` (ImageNet images:
    imagenet-val-1300 and imagenet-sample-750) gives a top-1/top-5 per row, in `accuracy[folder name]`, with the
    weights' own preprocessing; identical weights are evaluated once.
    """
    from squeezenet.paths import authors_model_dir

    net = Path(authors_net) if authors_net else authors_model_dir() / "compressed_SqueezeNet.net"
    authors = load(net)
    data8 = reencode(authors, log=lambda _: None).data
    if sqz6 is not None:
        data6 = Path(sqz6).read_bytes()
        label6 = f"Deep Compression (ours, {Path(sqz6).name})"
    else:
        data6, _ = sqzformat.encode(authors, quantize_model(authors.build(), 6, "optimal"))
        label6 = "Deep Compression (ours, re-clustered, no fine-tuning)"
    ours6 = sqzformat.decode(data6).weights
    acc: dict[str, dict] = {"authors": {}, "ours6": {}}
    for folder in val_dirs:
        samples = list_samples(folder, authors.class_ids).sample(limit)
        for key, w in (("authors", authors), ("ours6", ours6)):
            log(f"evaluating {key} on {len(samples)} images of {Path(folder).name}")
            r = evaluate(w.build(), samples, w.preprocessing, progress=False)
            acc[key][Path(folder).name] = {k: r[k] for k in ("top1", "top5", "images", "classes", "preprocessing")}
    alexnet = alexnet_fp32_bytes()
    fp32 = 4 * sum(v.numel() for v in authors.state_dict.values())
    rows = [("AlexNet", "none", "32 bit", alexnet, None),
            ("SqueezeNet", "none (decoded authors' weights)", "32 bit", fp32, "authors"),
            ("SqueezeNet", "Deep Compression (authors' file)", "8 bit", net.stat().st_size, "authors"),
            ("SqueezeNet", "Deep Compression (ours, lossless re-encoding)", "8 bit", len(data8), "authors"),
            ("SqueezeNet", label6, "6 bit", len(data6), "ours6")]
    return [{"network": n, "compression": c, "data_type": t, "bytes": b, "vs_alexnet": alexnet / b,
             "accuracy": acc[k] if k else {}} for n, c, t, b, k in rows]
