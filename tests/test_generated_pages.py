"""The documentation's generated pages: the model zoo against the weights' own metadata and against `squeezenet
evaluate` on a sample of the data each figure names; the command line reference against the parsers. The tests
change nothing: the pages are rendered in memory, evaluate reads and prints."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from squeezenet.cli import build_parser, main
from squeezenet.cli.reference import cli_markdown, split_default
from squeezenet.experiments.zoo import missing, source_path, zoo_entries, zoo_markdown
from squeezenet.formats.pretrained import list_models, pretrained_weights
from squeezenet.training.fidelity import clopper_pearson

SAMPLE = 60  # images per figure checked with evaluate (--limit: seeded, class-balanced)
ROW = re.compile(r"^\| (.+?) \| ([\d,]+) \| ([\d.]+)% \| ([\d.]+)% \| (.*?) \| `(.*?)` \|$", re.M)


@pytest.fixture(scope="module")
def zoo(shared) -> tuple[list[dict], str]:
    entries = zoo_entries()
    assert not missing(entries)
    return entries, zoo_markdown(entries)


def _section(page: str, names: list[str]) -> str:
    return page.split(f"\n## {', '.join(names)}\n", 1)[1].split("\n## ", 1)[0]


def test_the_zoo_page_is_the_weights_metadata(zoo):
    """Every pretrained name has an entry; its size, parameters and each recorded figure are on the page, read
    back from the page's tables to the rounding of the last digit shown."""
    entries, page = zoo
    assert sorted(n for e in entries for n in e["names"]) == sorted(list_models(pretrained=True))
    for e in entries:
        w = pretrained_weights(e["names"][0])
        path = source_path(e["names"][0])
        assert e["bytes"] == path.stat().st_size == w.meta.get("bytes", path.stat().st_size)
        assert f"| {e['bytes']:,} | {w.num_params:,} (" in page
        rows = ROW.findall(_section(page, e["names"]))
        recorded = w.meta["evaluations"]
        assert len(rows) == len(recorded) > 0
        for (data, images, top1, top5, protocol, record), r in zip(rows, recorded, strict=True):
            assert (data, int(images.replace(",", "")), protocol, record) == (
                r["data"], r["images"], r["preprocessing"], r["record"])
            assert abs(float(top1) / 100 - r["top1"]) <= 5e-5 and abs(float(top5) / 100 - r["top5"]) <= 5e-5


def test_the_zoo_figures_hold_on_a_sample(zoo, shared, tmp_path, monkeypatch, capsys):
    """`squeezenet evaluate` of each model on a class-balanced sample of the data a figure names (its first word is
    the folder under ../shared/data) lands within the sample's 99.9% Clopper-Pearson interval of that figure's
    top-1, with the weights' own preprocessing, the protocol the page names."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SQUEEZENET_CACHE", str(tmp_path / "cache"))
    for e in zoo[0]:
        for r in e["evaluations"]:
            folder = shared / "data" / r["data"].split()[0]
            assert main(["--quiet", "evaluate", "--weights", str(source_path(e["names"][0])), "--data", str(folder),
                         "--limit", str(SAMPLE), "--json"]) == 0
            got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
            assert got["images"] == SAMPLE and got["preprocessing"] == r["preprocessing"]
            lo, hi = clopper_pearson(round(got["top1"] * SAMPLE), SAMPLE, 0.999)
            assert lo <= r["top1"] <= hi, f"{e['names']} on {folder.name}: {got['top1']:.3f} of {SAMPLE}, " \
                                          f"recorded {r['top1']:.4f}"
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["cache"])


def test_the_cli_reference_has_every_flag_with_its_default():
    page = cli_markdown()
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        section = page.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flag = formatter._format_action_invocation(action)
            row = next((line for line in section.splitlines() if line.startswith(f"| `{flag}` |")), None)
            assert row is not None, f"{name}: {flag} missing"
            default = split_default(action, formatter)[1]
            assert row.split(" | ")[1] == (f"`{default}`" if default else ""), row
    epochs = next(line for line in page.split("\n## train\n")[1].splitlines() if line.startswith("| `--epochs"))
    assert "| `30` |" in epochs  # a dataclass field's default, named in its help (train's flags are unset)
