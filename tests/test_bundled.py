"""The Imagenette model shipped inside the package: loads by name with no data and classifies real images."""

from squeezenet import load
from squeezenet.data.folders import list_samples
from squeezenet.training.evaluation import evaluate


def test_bundled_model_classifies_real_imagenette_images(imagenette):
    w = load("imagenette")
    assert w.num_classes == 10 and w.class_ids[0] == "n01440764"
    samples = list_samples(imagenette / "val", w.class_ids)
    pick = [i for c in range(10) for i in [j for j, y in enumerate(samples.labels) if y == c][:4]]
    subset = type(samples)([samples.paths[i] for i in pick], [samples.labels[i] for i in pick], samples.classes)
    result = evaluate(w.build(), subset, w.preprocessing, progress=False)
    assert result["images"] == 40 and result["top1"] >= 0.6  # 85.7% on all 3,925 val images


def test_sensitivity_command_on_real_images(imagenette, tmp_path):
    import json
    import subprocess
    import sys

    val = tmp_path / "val"
    for wnid in ("n01440764", "n03888257"):
        (val / wnid).mkdir(parents=True)
        for p in sorted((imagenette / "val" / wnid).iterdir())[:3]:
            (val / wnid / p.name).symlink_to(p)
    r = subprocess.run([sys.executable, "-m", "squeezenet", "sensitivity", "--weights", "imagenette", "--data",
                        str(val), "--limit", "6", "--densities", "0.0001", "1.0", "--out", str(tmp_path / "s")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = json.loads((tmp_path / "s" / "sensitivity.json").read_text())
    assert len(rows) == 2 * 26 and {r["name"] for r in rows} >= {"conv1", "fire9/expand3x3", "conv10"}
    full = [r["score"] for r in rows if r["density"] == 1.0]
    assert len(set(full)) == 1  # every layer restored after its probe
    assert (tmp_path / "s" / "sensitivity.png").stat().st_size > 10_000


def test_test_time_resolution_on_the_command_line(imagenette, tmp_path, capsys):
    """evaluate --image-size runs the net at another input size; convert --image-size stores it."""
    import json

    from squeezenet.cli import main

    val = tmp_path / "val"
    (val / "n01440764").mkdir(parents=True)
    for p in sorted((imagenette / "val" / "n01440764").iterdir())[:2]:
        (val / "n01440764" / p.name).symlink_to(p)
    out = tmp_path / "at96.safetensors"
    assert main(["convert", "imagenette", "--out", str(out), "--image-size", "96"]) == 0
    assert load(out).preprocessing == load("imagenette").preprocessing.at_size(96)
    capsys.readouterr()
    for w in ("imagenette", str(out)):
        assert main(["evaluate", "--weights", w, "--data", str(val), "--image-size", "96", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["images"] == 2
