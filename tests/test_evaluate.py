"""evaluate / predict on real images, checked against an independent numpy forward pass of the decoded weights."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import squeezenet
from squeezenet.cli import main
from squeezenet.data.folders import list_samples
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.deepcompression import read_net
from squeezenet.formats.weights import Weights
from squeezenet.models.preprocessing import TORCHVISION
from squeezenet.training.evaluation import evaluate, predict

NET = "compressed_SqueezeNet.net"


# ------------------------------------------------------------------ an independent reference: Caffe's net in numpy

def _conv_relu(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0) -> np.ndarray:
    """x (C, N, H, W) -> relu(conv(x)) (O, N, Ho, Wo), im2col as one matrix product."""
    o, c, kh, kw = w.shape
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (x.shape[2] - kh) // stride + 1, (x.shape[3] - kw) // stride + 1
    cols = np.stack([x[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
                     for i in range(kh) for j in range(kw)], axis=1)
    out = w.reshape(o, -1) @ cols.reshape(c * kh * kw, -1) + b[:, None]
    return np.maximum(out, 0).reshape(o, x.shape[1], ho, wo)


def _maxpool(x: np.ndarray) -> np.ndarray:
    """3x3/2 max pool, Caffe's rounding up."""
    n = -(-(x.shape[2] - 3) // 2) + 1
    p = (n - 1) * 2 + 3 - x.shape[2]
    x = np.pad(x, ((0, 0), (0, 0), (0, p), (0, p)), constant_values=-np.inf)
    out = x[:, :, :2 * n - 1:2, :2 * n - 1:2]
    for i in range(3):
        for j in range(3):
            out = np.maximum(out, x[:, :, i:i + 2 * n - 1:2, j:j + 2 * n - 1:2])
    return out


def _numpy_squeezenet(layers: dict, images: np.ndarray) -> np.ndarray:
    """The prototxt's graph by layer name: images (N, 3, H, W) -> logits (N, 1000)."""
    x = _maxpool(_conv_relu(images.transpose(1, 0, 2, 3), *layers["conv1"], stride=2))
    for i in range(2, 10):
        s = _conv_relu(x, *layers[f"fire{i}/conv1x1_1"])
        x = np.concatenate([_conv_relu(s, *layers[f"fire{i}/conv1x1_2"]),
                            _conv_relu(s, *layers[f"fire{i}/conv3x3_2"], pad=1)])
        if i in (4, 8):
            x = _maxpool(x)
    return _conv_relu(x, *layers["conv_final"], pad=1).mean(axis=(2, 3)).T


def _caffe_input(path) -> np.ndarray:
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    assert rgb.shape == (227, 227, 3)
    return rgb[:, :, ::-1].transpose(2, 0, 1) - np.array([104, 117, 123], np.float32)[:, None, None]


@pytest.fixture(scope="module")
def authors(authors_model) -> Weights:
    return squeezenet.load(authors_model / NET)


def test_accuracy_matches_a_numpy_forward_pass_on_100_images(authors, authors_model, imagenet_val):
    samples = list_samples(imagenet_val).sample(100)
    ours = evaluate(authors.build(), samples, authors.preprocessing, progress=False)
    assert ours["images"] == 100 and ours["images_per_s"] > 0

    layers = {lay.spec.name: (lay.weight, lay.bias) for lay in read_net(authors_model / NET).layers}
    images = np.stack([_caffe_input(p) for p in samples.paths])
    logits = np.concatenate([_numpy_squeezenet(layers, images[i:i + 10]) for i in range(0, 100, 10)])
    labels = np.array(samples.labels)
    top5 = np.argsort(-logits, axis=1)[:, :5]
    ref_top1, ref_top5 = (top5[:, 0] == labels).mean(), (top5 == labels[:, None]).any(axis=1).mean()
    assert ours["top1"] == pytest.approx(ref_top1, abs=0.011) and ours["top5"] == pytest.approx(ref_top5, abs=0.011)
    assert 0.6 < ref_top1 < 0.85 and 0.8 < ref_top5 < 0.99  # near the 71.5% / 90.8% of all 1,300

    x = torch.stack([authors.preprocessing(Image.open(p)) for p in samples.paths[:10]])
    with torch.inference_mode():
        torch_logits = authors.build()(x).numpy()
    np.testing.assert_allclose(torch_logits, logits[:10], atol=1e-3 * np.abs(logits).max())


def test_callable_model_and_folder_of_wnids(authors, imagenette, tmp_path):
    for wnid in ("n01440764", "n03888257"):  # tench (0), parachute (701)
        (tmp_path / wnid).mkdir()
        for p in sorted((imagenette / "val" / wnid).iterdir())[:4]:
            (tmp_path / wnid / p.name).symlink_to(p)
    samples = list_samples(tmp_path, classes=authors.class_ids)
    assert sorted(set(samples.labels)) == [0, 701]
    model = authors.build()
    as_module = evaluate(model, samples, authors.preprocessing, progress=False, workers=0)
    as_callable = evaluate(lambda x: model(x).detach().numpy(), samples, authors.preprocessing, progress=False)
    assert as_module["images"] == 8 and as_module["top5"] >= 0.75
    assert (as_module["top1"], as_module["top5"]) == (as_callable["top1"], as_callable["top5"])


def test_unreadable_image_is_named(authors, imagenet_val, tmp_path, capsys):
    src = sorted((imagenet_val / "images").iterdir())[:2]
    for p in src:
        (tmp_path / p.name).write_bytes(p.read_bytes())
    (tmp_path / src[1].name).write_bytes(src[1].read_bytes()[:300])
    (tmp_path / "labels.csv").write_text("file,label\n" + "".join(f"{p.name},1\n" for p in src))
    with pytest.raises(SqueezeNetError, match=src[1].name):
        evaluate(authors.build(), list_samples(tmp_path), authors.preprocessing, progress=False, workers=1)
    assert main(["evaluate", "--weights", str(imagenet_val.parent.parent / "weights" /
                                              "deep-compression-squeezenet-v1.0" / NET), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and src[1].name in err[0] and err[0].startswith("squeezenet: error:")


def test_labels_beyond_the_model(imagenet_val):
    model = squeezenet.create_model("squeezenet1_1", num_classes=10)
    with pytest.raises(SqueezeNetError, match="out of range"):
        evaluate(model, list_samples(imagenet_val).sample(4), TORCHVISION, progress=False, workers=0)


def test_predict(authors, imagenet_val):
    paths = sorted((imagenet_val / "images").iterdir())[:2]
    results = predict(authors.build(), paths, authors.preprocessing, authors.classes, top=3)
    assert [r["file"] for r in results] == [str(p) for p in paths]
    for r in results:
        probs = [t["probability"] for t in r["top"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
        assert all(t["name"] == authors.classes[t["index"]] for t in r["top"])


def test_cli_evaluate_and_predict(authors_model, imagenet_val, capsys):
    weights = str(authors_model / NET)
    assert main(["evaluate", "--weights", weights, "--data", str(imagenet_val), "--limit", "8", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["images"] == 8 and {"top1", "top5", "seconds", "images_per_s"} <= set(r)
    image = str(sorted((imagenet_val / "images").iterdir())[0])
    assert main(["predict", weights, image, "--top", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["predictions"][0]["top"]) == 2
    assert main(["predict", weights, image]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == image and len(lines) == 6 and "%" in lines[1]
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--weights", weights, "--data", str(imagenet_val), "--limit", "0"])
    assert e.value.code == 2 and "positive integer" in capsys.readouterr().err


# ------------------------------------------------------------------ fidelity to a reference, image by image

def test_paired_interval_by_hand():
    from math import comb

    from squeezenet.training.fidelity import clopper_pearson, compare, paired_interval

    # all 3 discordant images go the weights' way: the lower end solves p^3 = 0.025, the upper is 1
    assert paired_interval(3, 0, 10) == pytest.approx((3 * (2 * 0.025 ** (1 / 3) - 1) / 10, 0.3), abs=1e-9)
    # one each way out of 2: P(X >= 1) = 1 - (1 - p)^2 = 0.025 at the lower end, symmetric above
    low = 1 - 0.975 ** 0.5
    assert clopper_pearson(1, 2) == pytest.approx((low, 1 - low), abs=1e-9)
    assert paired_interval(1, 1, 50) == pytest.approx((2 * (2 * low - 1) / 50, 2 * (1 - 2 * low) / 50), abs=1e-9)
    lo, hi = clopper_pearson(5, 12)  # the defining tail sums, written out
    assert sum(comb(12, i) * lo ** i * (1 - lo) ** (12 - i) for i in range(5, 13)) == pytest.approx(0.025, abs=1e-9)
    assert sum(comb(12, i) * hi ** i * (1 - hi) ** (12 - i) for i in range(0, 6)) == pytest.approx(0.025, abs=1e-9)
    # 2 images, 3 classes: W right on image 0 only, R wrong on both; they agree on image 1
    w, r = torch.tensor([[3.0, 0, 0], [0, 0, 2]]), torch.tensor([[0.0, 3, 0], [0, 0, 1]])
    f = compare(w, r, [0, 1])
    assert (f["agreement"], f["paired_difference"], f["only_weights_right"], f["only_reference_right"]) == \
        (0.5, 0.5, 1, 0)
    same = compare(w, w.clone(), [0, 1])
    assert same["agreement"] == 1 and same["paired_difference"] == 0 and same["paired_ci95"] == [0, 0]
    assert same["kl"] == pytest.approx(0, abs=1e-12) and f["kl"] > 0


def test_cli_reference_pools_folders_across_runtimes(authors_model, shared, capsys):
    weights, data = str(authors_model / NET), [str(shared / "data" / d) for d in ("imagenet-val-1300",
                                                                                 "imagenet-sample-750")]
    assert main(["evaluate", weights, "--reference", weights, "--data", *data, "--limit", "3", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["images"] == 6 and r["agreement"] == 1 and r["paired_difference"] == 0 and r["paired_ci95"] == [0, 0]
    assert r["kl"] == pytest.approx(0, abs=1e-9) and r["reference"]["top1"] == r["top1"]
    assert (r["backend"], r["reference"]["backend"]) == ("torch", "torch")
    # the same network exported and run by ONNX Runtime against the torch weights: a few ulps apart, same answers
    assert main(["evaluate", weights, "--backend", "onnxruntime", "--reference", weights, "--data", *data,
                 "--limit", "4"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "(onnxruntime fp32)" in out[0] and "reference" in out[1] and out[2].startswith("agreement 100.00%")
    assert "95% CI +0.00 to +0.00" in out[2]
