"""The report's figures of its *3. Training* category: learning curves (also drawn live while a variant trains)."""

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .style import OTHER, PALETTE, SELECTED, TRAIN, VAL, registered, spread_band


def learning_curves(history: pd.DataFrame, variant: str, reference: float | None = None,
                    total_epochs: int | None = None) -> Figure:
    """Loss and accuracy per epoch, training vs validation, with the best validation epoch marked and, as a dashed
    line, a reference accuracy (the seed study's test accuracy). ``total_epochs``: a training still running, drawn
    on the axis of all its epochs."""
    epochs = history["epoch"]
    best = history.loc[history["val_accuracy"].idxmax()]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, metric, title in ((axes[0], "loss", "Log-loss"), (axes[1], "accuracy", "Accuracy")):
        ax.plot(epochs, history[metric], "o-", color=TRAIN, ms=3, label=f"training {metric}")
        ax.plot(epochs, history[f"val_{metric}"], "o-", color=VAL, ms=3, label=f"validation {metric}")
        for column, color in ((metric, TRAIN), (f"val_{metric}", VAL)):
            spread_band(ax, history, column, color)
        ax.axvline(best["epoch"], color=OTHER, ls=":", lw=1, label=f"best validation accuracy (epoch {int(best['epoch'])})")
        if metric == "accuracy" and reference is not None:
            ax.axhline(reference, color="black", ls="--", lw=0.8, label=f"seed study's test accuracy ({reference:.4f})")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.legend(frameon=False, fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if total_epochs:
            ax.set_xlim(0.5, total_epochs + 0.5)
    last = history.iloc[-1]
    of_total = f" of {total_epochs}" if total_epochs else ""
    if _seeds(history) > 1:
        variant = f"{variant} (mean of {_seeds(history)} seeds; bands: lowest to highest)"
    fig.suptitle(f"{variant}: validation accuracy {last['val_accuracy']:.3f}, log-loss {last['val_loss']:.3f} "
                 f"after {int(last['epoch'])}{of_total} epochs (training: {last['accuracy']:.3f}, {last['loss']:.3f})",
                 fontsize=10)
    fig.tight_layout()
    return fig


@registered("Learning curves", subcategory="Learning curves per variant")
def variant_learning_curves(histories: dict[str, pd.DataFrame], variant: str, reference: float | None = None) -> Figure:
    """``learning_curves`` of one variant, its seeds' histories as one band (``tables.histories_by_variant``)."""
    return learning_curves(histories[variant], variant, reference)


@registered("Validation curves of all variants", subcategory="All variants")
def all_learning_curves(histories: dict[str, pd.DataFrame], selection: dict, reference: float | None = None) -> Figure:
    """Validation loss and accuracy per epoch of every variant on one pair of axes; the selected one in red."""
    selected = selection["variant"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    others = [name for name in histories if name != selected]
    for i, name in enumerate(others + [selected] if selected in histories else others):
        history = histories[name]
        chosen = name == selected
        style = {"color": SELECTED if chosen else PALETTE[i % len(PALETTE)], "ls": "-" if i < len(PALETTE) else "--",
                 "lw": 2.6 if chosen else 1.2, "alpha": 1.0 if chosen else 0.75, "zorder": 3 if chosen else 2,
                 "label": f"{name} (selected)" if chosen else name}
        axes[0].plot(history["epoch"], history["val_loss"], **style)
        axes[1].plot(history["epoch"], history["val_accuracy"], **style)
        spread_band(axes[0], history, "val_loss", style["color"], alpha=0.1)
        spread_band(axes[1], history, "val_accuracy", style["color"], alpha=0.1)
    if reference is not None:
        axes[1].axhline(reference, color="black", ls="--", lw=0.8, label=f"seed study's test accuracy ({reference:.4f})")
    axes[0].set_title("Validation log-loss per epoch")
    axes[1].set_title("Validation accuracy per epoch")
    if any(_seeds(history) > 1 for history in histories.values()):
        fig.suptitle("Mean over each variant's seeds; bands from the lowest to the highest seed", fontsize=10)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].legend(frameon=False, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def _seeds(history: pd.DataFrame) -> int:
    """How many seeds a history (``tables.seed_band``) is the mean of; 1 for a single training's."""
    return int(history["seeds"].max()) if "seeds" in history else 1
