"""Bad or unusual input to the commands: labels.csv files, predict on folders and globs, sweep values (fixtures
made here from real images)."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from squeezenet.cli import main
from squeezenet.data.folders import list_samples
from squeezenet.errors import SqueezeNetError


@pytest.fixture
def photos(imagenette, tmp_path):
    """photos/a/1.JPEG, photos/a/2.JPEG, photos/b/3.jpg: real Imagenette val images, nested."""
    src = sorted((imagenette / "val").iterdir())[0]
    files = sorted(src.iterdir())[:3]
    for f, dst in zip(files, ("a/1.JPEG", "a/2.JPEG", "b/3.jpg"), strict=True):
        (tmp_path / "photos" / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, tmp_path / "photos" / dst)
    return tmp_path / "photos"


@pytest.mark.parametrize("content, expected", [
    (b"file,label\nx.JPEG,\xc2\xb2\n", "line 2"),  # a superscript two: a digit to str.isdigit, not to int()
    (b"file,label\n\x00\xff\xfe\x89PNG\n", "not a UTF-8 CSV"),
    (b"file,label\nx.JPEG,seven\n", "line 2"),
    (b"file,label\n", "lists no images"),
])
def test_a_bad_labels_csv_names_the_file_and_line(tmp_path, content, expected):
    (tmp_path / "labels.csv").write_bytes(content)
    with pytest.raises(SqueezeNetError, match=expected) as e:
        list_samples(tmp_path)
    assert "labels.csv" in str(e.value)


def test_predict_reads_folders_and_globs_into_csv_and_json(photos, tmp_path, capsys):
    assert main(["predict", "imagenette", str(photos), "--out", str(tmp_path / "p.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert len({r["file"] for r in rows}) == 3 and len(rows) == 15  # 3 images x top 5
    assert "wrote 3 predictions" in capsys.readouterr().out
    assert main(["predict", "imagenette", str(photos / "**" / "*.JPEG"), "--json", "--top", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["file"].split("/")[-1] for p in out["predictions"]] == ["1.JPEG", "2.JPEG"]
    assert main(["predict", "--weights", "imagenette", str(photos / "b" / "3.jpg"), "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("file,rank,index,name,probability\n")


@pytest.mark.parametrize("argv, expected", [
    (["predict", "imagenette", "nothing/*.jpg"], "no images match"),
    (["predict", "imagenette", "missing.jpg"], "no such image"),
    (["predict", "imagenette", "PHOTOS", "--out", "p.txt"], "must be .csv or .json"),
    (["predict", "imagenette", "PHOTOS", "--out", "p.csv", "--format", "json"], "does not match"),
    (["explore", "--sweep", "sr", "--values", "abc", "--data", "d", "--out", "o", "--dry-run"], "'abc' is not a"),
])
def test_bad_arguments_are_one_line(photos, argv, expected, capsys):
    assert main([str(photos) if a == "PHOTOS" else a for a in argv]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1


def _rc(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse's own exit, after its one line
        return e.code


@pytest.mark.parametrize("flags, named", [
    (["--epochs", "0"], "--epochs"), (["--epochs", "-1"], "--epochs"), (["--lr", "nan"], "--lr"),
    (["--min-scale", "-1"], "--min-scale"), (["--accum", "0"], "--accum"),
    (["--label-smoothing", "2"], "--label-smoothing"), (["--threads", "-1"], "--threads"),
    (["--seed", str(10 ** 23)], "--seed"), (["--warmup-epochs", "nan"], "--warmup-epochs"),
    (["--image-size", "100000"], "--image-size"), (["--batch-size", "1"], "--batch-size"),
    (["--base-e", "1000000000"], "--base-e"), (["--sr", "inf"], "--sr"),
])
def test_every_train_flag_is_checked_against_its_range(tiny, tmp_path, flags, named, capsys):
    assert _rc(["train", "--data", str(tiny), "--out", str(tmp_path / "r"), *flags]) == 2
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("argv, named", [
    (["summary", "squeezenet1_0", "--input-size", "100000"], "--input-size"),
    (["summary", "squeezenet1_0", "--base-e", "1000000000"], "--base-e"),
    (["evaluate", "imagenette", "--data", "d", "--image-size", "100000"], "--image-size"),
    (["compress", "imagenette", "--density", "0", "--out", "x.sqz"], "--density"),
    (["compress", "--weights", "imagenette", "--rdo", "--out", "x.sqz"], "--rdo"),
    (["compress", "--weights", "imagenette", "--reassign", "--out", "x.sqz"], "--reassign"),
    (["compress", "--weights", "imagenette", "--anchor", "1", "--out", "x.sqz"], "--anchor"),
    (["compress", "--weights", "imagenette", "--mixup", "0.4", "--loss", "both", "--out", "x.sqz"], "--mixup"),
])
def test_other_flags_are_checked_too(argv, named, capsys):
    assert _rc(argv) == 2
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1
