"""The conventions users already know: torch.hub entry points, Hugging Face's save_pretrained / from_pretrained
folder (config.json, model.safetensors, a model card), offline, and a forged or mismatched folder refused."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

import squeezenet
from squeezenet.deploy.graph import check_images
from squeezenet.errors import SqueezeNetError
from squeezenet.formats.pretrained import PRETRAINED
from squeezenet.models.preprocessing import Preprocessing

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def offline(monkeypatch):
    """torch.hub may not fetch anything: its download and URL helpers fail the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"torch.hub tried the network: {args[:1]}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torch.hub, "urlopen", refuse)


def _images(model: torch.nn.Module, imagenet_val: Path) -> torch.Tensor:
    """4 real images with the preprocessing the model's weights were trained with."""
    return check_images(Preprocessing.from_dict(model.pretrained_cfg["preprocessing"]), imagenet_val, count=4)


def _logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model.eval()(x)


def test_hubconf_has_one_documented_entry_point_per_registered_model():
    spec = importlib.util.spec_from_file_location("hubconf", REPO / "hubconf.py")
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    # what torch.hub.list shows, and torch.hub.help prints (the entry point's docstring)
    assert [f for f in dir(hubconf) if callable(getattr(hubconf, f)) and not f.startswith("_")] == \
        squeezenet.list_models()
    assert hubconf.dependencies == ["torch"]
    doc = hubconf.squeezenet1_1.__doc__
    assert "conv1 64 filters 3x3" in doc and "pretrained=True: the bundled Imagenette v1.1" in doc
    assert "Deep Compression SqueezeNet v1.0" in hubconf.squeezenet1_0.__doc__
    assert "No pretrained weights" in hubconf.alexnet.__doc__
    assert hubconf.squeezenet1_0(num_classes=7).num_classes == 7


def test_torch_hub_load_gives_create_models_logits(imagenet_val, offline):
    hub = torch.hub.load(str(REPO), "squeezenet1_1", pretrained=True, source="local", verbose=False)
    ours = squeezenet.create_model("squeezenet1_1", pretrained=True)
    x = _images(ours, imagenet_val)
    assert not hub.training and hub.pretrained_cfg["architecture"] == "squeezenet1_1"
    assert torch.equal(_logits(hub, x), _logits(ours, x))


@pytest.mark.parametrize("name, figures", [
    ("squeezenet1_0", ["| 71.54% | 90.85% | warp to 256x256, centre crop 227", "| 57.20% | 77.87% |",
                       "1,248,424 parameters", "its source file 675,763 bytes", "ImageNet's 1000"]),
    ("squeezenet1_1", ["imagenette2/val (all of Imagenette's validation images) | 3925 | 85.71% | 98.85% | "
                       "shorter side to 182, centre crop 160, RGB", "validation top-1 84.66%", "bits=6",
                       "tench, Tinca tinca"]),
])
def test_save_pretrained_folder_round_trip(name, figures, imagenet_val, tmp_path):
    ours = squeezenet.create_model(name, pretrained=True)
    folder = ours.save_pretrained(tmp_path / name)
    assert sorted(os.listdir(folder)) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert (config["architecture"], config["arch"], config["num_classes"]) == (name, "squeezenet", ours.num_classes)
    assert config["model_args"] | {"num_classes": config["num_classes"]} == json.loads(json.dumps(
        ours.config.to_dict()))
    rebuilt = squeezenet.create_model(config["architecture"], num_classes=config["num_classes"], **config["model_args"])
    assert rebuilt.config == ours.config  # timm's convention: config.json alone rebuilds the network

    back = squeezenet.SqueezeNet.from_pretrained(folder)
    x = _images(ours, imagenet_val)
    assert not back.training and torch.equal(_logits(back, x), _logits(ours, x))
    assert back.pretrained_cfg["architecture"] == name and back.pretrained_cfg["source"] == str(folder)
    w = squeezenet.load(folder)
    assert (w.classes, w.preprocessing.to_dict(), w.meta) == (ours.pretrained_cfg["classes"],
                                                              ours.pretrained_cfg["preprocessing"],
                                                              ours.pretrained_cfg["meta"])
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: squeezenet") and f"# {name}\n" in card
    assert PRETRAINED[name][1][1:] in card and w.preprocessing.protocol in card
    for figure in figures:
        assert figure in card
    assert card == squeezenet.model_card(w, name)


def test_measured_figures_are_the_recorded_ones():
    """The cards' figures are results/headline/evaluate.jsonl's, line for line."""
    lines = [json.loads(line) for line in (REPO / "results/headline/evaluate.jsonl").read_text().splitlines()]
    for name, (_, _, measured) in PRETRAINED.items():
        weights = "imagenette" if name == "squeezenet1_1" else "compressed_SqueezeNet.net"
        for m in measured:
            line = next(r for r in lines if r["weights"].endswith(weights) and
                        r["data"].endswith(m["data"].split()[0]))
            assert {k: line[k] for k in ("images", "top1", "top5", "preprocessing")} == {
                k: m[k] for k in ("images", "top1", "top5", "preprocessing")}


def test_save_pretrained_of_a_model_without_weights_and_of_a_new_head(tmp_path):
    fresh = squeezenet.create_model("squeezenet1_0_caffe", num_classes=3)
    folder = fresh.save_pretrained(tmp_path / "fresh")
    assert json.loads((folder / "config.json").read_text())["architecture"] == "squeezenet1_0_caffe"
    w = squeezenet.load(folder)
    assert w.classes == ["0", "1", "2"] and w.preprocessing.protocol.startswith("shorter side to 256")
    assert "No evaluation is recorded" in (folder / "README.md").read_text()

    tuned = squeezenet.create_model("squeezenet1_1", pretrained=True, num_classes=4)
    card = tuned.save_pretrained(tmp_path / "tuned", classes=list("abcd")).joinpath("README.md").read_text()
    assert "with a new 4-class classifier" in card and "85.71%" not in card and "4 classes: a; b; c; d" in card
    with pytest.raises(SqueezeNetError, match="3 class names for a model with 4 outputs"):
        tuned.save_pretrained(tmp_path / "wrong", classes=list("abc"))

    alex = squeezenet.create_model("alexnet", num_classes=3, image_size=67, ranks={"fc6": 4, "fc7": 4})
    back = squeezenet.AlexNet.from_pretrained(alex.save_pretrained(tmp_path / "alex"))
    x = torch.randn(1, 3, 67, 67)
    assert back.config == alex.config and torch.equal(_logits(back, x), _logits(alex, x))


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return squeezenet.create_model("squeezenet1_1", num_classes=3).save_pretrained(tmp_path_factory.mktemp("s") / "m")


def _forge(saved: Path, tmp_path: Path, config: object = None, text: str | None = None) -> Path:
    folder = Path(shutil.copytree(saved, tmp_path / "forged"))
    if config is not None or text is not None:
        (folder / "config.json").write_text(text if text is not None else json.dumps(config))
    return folder


def _edit(saved: Path, **changes) -> dict:
    config = json.loads((saved / "config.json").read_text())
    return config | changes


@pytest.mark.parametrize("forge, message", [
    (lambda s, t: _forge(s, t, text="{not json"), "config.json: not valid JSON"),
    (lambda s, t: _forge(s, t, text="[" * 100 + "]" * 100), "nested deeper than"),
    (lambda s, t: _forge(s, t, text=" " * (1 << 20) + "{}"), "more than a config.json holds"),
    (lambda s, t: _forge(s, t, config=[1, 2]), "not a save_pretrained config.json"),
    (lambda s, t: _forge(s, t, config={"architecture": "squeezenet1_1"}), "needs architecture, arch"),
    (lambda s, t: _forge(s, t, config=_edit(s, architecture="resnet50")), "'resnet50' is not a registered model"),
    (lambda s, t: _forge(s, t, config=_edit(s, architecture="alexnet")), "builds a alexnet, but arch is 'squeezenet'"),
    (lambda s, t: _forge(s, t, config=_edit(s, num_classes="3")), "num_classes must be an integer"),
    (lambda s, t: _forge(s, t, config=_edit(s, num_classes=1000)), "another network than model.safetensors holds "
                                                                  "(num_classes differs)"),
    (lambda s, t: _forge(s, t, config=_edit(s, model_args=_edit(s)["model_args"] | {"sr": 0.25})), "(sr differs)"),
    (lambda s, t: Path(shutil.copytree(s, t / "f", ignore=shutil.ignore_patterns("config.json"))),
     "no config.json (not a folder written by save_pretrained)"),
    (lambda s, t: Path(shutil.copytree(s, t / "f", ignore=shutil.ignore_patterns("*.safetensors"))),
     "no model.safetensors beside its config.json"),
])
def test_a_bad_folder_is_refused_in_one_line(saved, tmp_path, forge, message):
    folder = forge(saved, tmp_path)
    for read in (squeezenet.SqueezeNet.from_pretrained, squeezenet.load):
        with pytest.raises(SqueezeNetError) as e:
            read(folder)
        assert message in str(e.value) and "\n" not in str(e.value)


def test_another_architecture_or_a_pickle_is_refused(saved, tmp_path):
    with pytest.raises(SqueezeNetError, match="names squeezenet1_1, a squeezenet; AlexNet.from_pretrained reads"):
        squeezenet.AlexNet.from_pretrained(saved)

    class Planted:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    folder = _forge(saved, tmp_path)
    torch.save({"features.0.weight": Planted()}, folder / "model.safetensors")
    with pytest.raises(SqueezeNetError, match="model.safetensors: not a safetensors file"):
        squeezenet.SqueezeNet.from_pretrained(folder)
    assert not (tmp_path / "ran").exists()
