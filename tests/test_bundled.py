"""The Imagenette model shipped inside the package: loads by name with no data and classifies real images."""

from squeezenet import load
from squeezenet.data import list_samples
from squeezenet.evaluate import evaluate


def test_bundled_model_classifies_real_imagenette_images(imagenette):
    w = load("imagenette")
    assert w.num_classes == 10 and w.class_ids[0] == "n01440764"
    samples = list_samples(imagenette / "val", w.class_ids)
    pick = [i for c in range(10) for i in [j for j, y in enumerate(samples.labels) if y == c][:4]]
    subset = type(samples)([samples.paths[i] for i in pick], [samples.labels[i] for i in pick], samples.classes)
    result = evaluate(w.build(), subset, w.preprocessing, progress=False)
    assert result["images"] == 40 and result["top1"] >= 0.6  # 80.7% on all 3,925 val images
