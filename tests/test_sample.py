"""One sampler for every --limit: seeded, class-balanced, on real folders."""

from __future__ import annotations

import json
from collections import Counter

from conftest import REPO
from squeezenet.cli import main
from squeezenet.data.folders import list_samples


def test_sample_is_balanced_seeded_and_a_subset(imagenette):
    samples = list_samples(imagenette / "val")
    s = samples.sample(503, seed=3)
    counts = Counter(s.labels)
    assert len(s) == 503 and len(counts) == 10 and max(counts.values()) - min(counts.values()) <= 1
    assert s.paths == samples.sample(503, seed=3).paths != samples.sample(503, seed=4).paths
    assert set(s.paths) <= set(samples.paths) and len(set(s.paths)) == 503
    assert samples.sample(None) is samples and samples.sample(10**6) is samples


def test_a_small_class_gives_all_it_has(tmp_path, imagenette):
    for wnid, n in (("n01440764", 2), ("n03888257", 20)):
        (tmp_path / wnid).mkdir()
        for p in sorted((imagenette / "val" / wnid).iterdir())[:n]:
            (tmp_path / wnid / p.name).symlink_to(p)
    counts = Counter(list_samples(tmp_path).sample(12).labels)
    assert counts == {0: 2, 1: 10}


def test_evaluate_limit_covers_every_class_and_matches_the_full_set(imagenette, capsys):
    """--limit 500 on Imagenette val: all 10 classes, top-1 within 1.5 points of all 3,925 images (the full set's
    figure as `results/headline/command.sh` measured it)."""
    assert main(["evaluate", "--weights", "imagenette", "--data", str(imagenette / "val"), "--limit", "500",
                 "--json", "--workers", "2"]) == 0
    part = json.loads(capsys.readouterr().out)
    lines = [json.loads(x) for x in (REPO / "results" / "headline" / "evaluate.jsonl").read_text().splitlines()]
    full = next(r for r in lines if r["weights"] == "imagenette" and r["data"].endswith("imagenette2/val"))
    assert (part["images"], part["classes"], full["images"], full["classes"]) == (500, 10, 3925, 10)
    assert abs(part["top1"] - full["top1"]) <= 0.015
    assert part["preprocessing"] == full["preprocessing"]


def test_a_subset_model_is_evaluated_on_its_classes_of_an_imagenet_labels_csv(shared, capsys):
    """labels.csv indexes ImageNet's 1000 classes: the 10-class model reads the images of its own classes."""
    data = shared / "data" / "imagenet-sample-750"
    assert main(["evaluate", "--weights", "imagenette", "--data", str(data), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert 0 < r["images"] <= 50 and r["classes"] <= 10 and r["top1"] > 0.5
