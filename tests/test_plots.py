"""The plots a person reads: titled, whole-epoch ticks, accuracy in %, top-1 and top-5 apart, 26 layers legible,
categorical sweeps as bars. Each figure is caught on its way to `save` and inspected through matplotlib."""

from __future__ import annotations

import pytest
from PIL import Image

from squeezenet import plotting
from squeezenet.compression.prune import plot_sensitivity
from squeezenet.experiments import explore
from squeezenet.models.registry import create_model
from squeezenet.training import curves

V1_0_NAMES = create_model("squeezenet1_0").layer_names()  # 26 weights, in network order below


@pytest.fixture
def figs(monkeypatch):
    """The figures saved during a test (they stay inspectable after `save` closes them)."""
    caught, real = [], plotting.save

    def save(fig, path, **kw):
        caught.append(fig)
        return real(fig, path, **kw)

    for module in (plotting, curves, explore):
        monkeypatch.setattr(module, "save", save)
    return caught


def _labels(ticks) -> list[str]:
    return [t.get_text() for t in ticks if t.get_text()]


def _history(epochs: int, val: bool) -> list[dict]:
    rows = [{"epoch": e, "train_loss": 2 / e, "train_acc": 0.2 + 0.05 * e, "lr": 0.1} for e in range(1, epochs + 1)]
    if val:
        for r in rows:
            r |= {"val_loss": r["train_loss"] * 1.1, "val_top1": r["train_acc"] - 0.05, "val_top5": 0.8 + r["lr"]}
    return rows


def test_curves_three_panels_titled_whole_epochs_percent(tmp_path, figs):
    png = curves.plot_curves(_history(7, val=True), tmp_path / "sqz_run" / "curves.png")
    (fig,) = figs
    loss, top1, top5 = fig.axes
    assert fig.get_suptitle() == "sqz_run"  # the run folder
    assert [len(a.lines) for a in (loss, top1, top5)] == [2, 2, 1]
    for ax in fig.axes:
        assert all(float(t).is_integer() for t in ax.get_xticks())
    assert all(t.endswith("%") and "." not in t for t in _labels(top1.get_yticklabels()))
    assert top1.get_ylim()[1] < 1  # fractions on the axis, shown as %
    w, h = Image.open(png).size
    assert w > 2.5 * h


def test_curves_without_val_split_draw_what_exists(tmp_path, figs):
    png = curves.plot_curves(_history(1, val=False), tmp_path / "r" / "curves.png", title="no val")
    (fig,) = figs
    assert [len(a.lines) for a in fig.axes] == [1, 1] and fig.get_suptitle() == "no val"
    assert all(float(t).is_integer() for t in fig.axes[0].get_xticks())  # a 1-epoch run: no 0.96, 0.98...
    assert Image.open(png).size[0] > Image.open(png).size[1]


def test_sensitivity_small_multiples_of_26_layers(tmp_path, figs):
    rows = [{"layer": n, "density": d, "score": 0.8 * d + 0.01 * (i % 5)}
            for i, n in enumerate(V1_0_NAMES) for d in (0.1, 0.3, 0.5, 1.0)]
    png = plot_sensitivity(rows, tmp_path / "s.png", V1_0_NAMES)
    (fig,) = figs
    titles = [a.get_title() for a in fig.axes]
    assert titles[:2] == ["conv1", "conv10"] and titles[2:] == [f"fire{i}" for i in range(2, 10)]
    assert sum(len(a.lines) for a in fig.axes) == 26
    assert [len(a.lines) for a in fig.axes[2:]] == [3] * 8  # squeeze1x1, expand1x1, expand3x3: a colour each
    assert len({a.get_ylim() for a in fig.axes}) == 1  # one y axis to compare layers on
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["squeeze1x1", "expand1x1", "expand3x3"]
    assert fig.get_suptitle() and all(t.endswith("%") for t in _labels(fig.axes[0].get_yticklabels()))
    assert Image.open(png).size[0] > 1000


def _sweep_rows(key: str, values: tuple) -> list[dict]:
    base = {"sr": 0.125, "pct3x3": 0.5, "bypass": "none"}
    return [base | {key: v, "name": f"{key}-{v}", "bytes_fp32": 3e6 * (1 + i), "top1": 0.6 + 0.03 * i,
                    "top5": 0.93 + 0.01 * i} for i, v in enumerate(values)]


def test_categorical_sweep_is_bars(tmp_path, figs):
    paths = explore.write_results(_sweep_rows("bypass", ("none", "simple", "complex")), tmp_path, "bypass sweep")
    (fig,) = figs
    assert fig.get_suptitle() == "bypass sweep" and len(fig.axes) == 2  # top-1 and top-5 apart
    for ax in fig.axes:
        assert len(ax.patches) == 3 and not ax.lines
        assert [t.split("\n")[0] for t in _labels(ax.get_xticklabels())] == ["none", "simple", "complex"]
        assert all(t.endswith("%") for t in _labels(ax.get_yticklabels()))
    assert Image.open(paths[2]).size[0] > Image.open(paths[2]).size[1]


def test_numeric_sweep_is_lines_with_markers(tmp_path, figs):
    explore.write_results(_sweep_rows("sr", (0.125, 0.25, 0.5)), tmp_path, "sr sweep")
    (fig,) = figs
    for ax in fig.axes:
        (line,) = ax.lines
        assert line.get_marker() == "o" and line.get_linestyle() == "-" and not ax.patches
        assert [t.get_text() for t in ax.texts] == ["sr 0.125", "sr 0.25", "sr 0.5"]
    top5 = _labels(fig.axes[1].get_yticklabels())  # 93..95%: fractional ticks need decimals, all the same number
    assert len(set(top5)) == len(top5) and len({len(t.split(".")[1]) for t in top5}) == 1


def test_percent_decimals_follow_the_tick_step():
    assert plotting._decimals([0.6, 0.62, 0.64]) == 0
    assert plotting._decimals([0.935, 0.94, 0.945]) == 1
    assert plotting._decimals([0.9925, 0.995]) == 2
    assert plotting._decimals([0.5]) == 0
