"""The training curves of a run (loss and accuracy per epoch), redrawn after every epoch as curves.png."""

from __future__ import annotations

from pathlib import Path

from squeezenet.plotting import save, subplots


def plot_curves(history: list[dict], path: Path) -> None:
    ep = [h["epoch"] for h in history]
    fig, (a, b) = subplots(1, 2, figsize=(10, 4))
    a.plot(ep, [h["train_loss"] for h in history], label="train")
    a.plot(ep, [h["val_loss"] for h in history], label="val")
    a.set(xlabel="epoch", ylabel="loss")
    a.legend()
    b.plot(ep, [h["train_acc"] for h in history], label="train top-1")
    b.plot(ep, [h["val_top1"] for h in history], label="val top-1")
    b.plot(ep, [h["val_top5"] for h in history], label="val top-5")
    b.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1))
    b.legend()
    save(fig, path, dpi=100)
