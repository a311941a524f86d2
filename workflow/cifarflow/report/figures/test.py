"""The report's figures of its *6. Test* category: the selected model on the test split."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ...evaluate.evaluation import most_confused_pairs
from .style import CORRECT, TEST, TRAIN, VAL, WRONG, registered, tiled


@registered("Confusion matrix")
def confusion_matrix(confusion: pd.DataFrame) -> Figure:
    """The test confusion matrix twice: image counts, and each row divided by its class's size (recall on the diagonal)."""
    counts = confusion.to_numpy()
    normalized = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    n = len(confusion)
    size = max(5.0, 0.5 * n) if n <= 20 else max(10.0, 0.12 * n)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size + 2, size + 0.8))
    panels = ((axes[0], counts, "Counts", "{:d}"), (axes[1], normalized, "Row-normalized (recall)", "{:.2f}"))
    for ax, values, title, fmt in panels:
        shown = ax.imshow(values, cmap="Blues", vmin=0)
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
        ticks = np.arange(n)
        small = {"fontsize": 8 if n <= 20 else 4}
        ax.set_xticks(ticks, confusion.columns, rotation=90, **small)
        ax.set_yticks(ticks, confusion.index, **small)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(title)
        ax.grid(False)
        if n <= 20:
            threshold = values.max() / 2
            for i in range(n):
                for j in range(n):
                    ax.text(j, i, "0" if values[i, j] == 0 else fmt.format(values[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if values[i, j] > threshold else "black")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    fig.suptitle(f"Confusion matrix of the test split ({counts.sum():,} images, accuracy {accuracy:.4f})")
    fig.tight_layout()
    return fig


@registered("Per-class precision, recall and F1")
def class_metrics(classification_report: pd.DataFrame) -> Figure:
    """Precision, recall and F1 of each class on the test split, with the macro averages as lines."""
    report = classification_report.copy()
    classes = [c for c in report.index if c not in ("accuracy", "macro avg", "weighted avg", "micro avg")]
    per_class = report.loc[classes]
    metrics = [("precision", TRAIN), ("recall", VAL), ("f1-score", TEST)]
    y = np.arange(len(classes))
    height = 0.8 / len(metrics)
    fig, ax = plt.subplots(figsize=(8, max(3.5, 0.42 * len(classes) + 1.2)))
    for i, (metric, color) in enumerate(metrics):
        values = per_class[metric].astype(float)
        average = float(report.loc["macro avg", metric]) if "macro avg" in report.index else float(values.mean())
        ax.barh(y + (i - 1) * height, values, height, color=color, label=f"{metric} (macro average {average:.3f})")
        ax.axvline(average, color=color, ls="--", lw=1)
    ax.set_yticks(y, [f"{c}  (n={int(float(s))})" for c, s in zip(classes, per_class["support"])],
                  fontsize=8 if len(classes) <= 20 else 5)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("score")
    ax.grid(axis="y", visible=False)
    accuracy = float(report.loc["accuracy"].iloc[0]) if "accuracy" in report.index else None
    title = "Per-class precision, recall and F1 on the test split"
    ax.set_title(title + (f" (accuracy {accuracy:.4f})" if accuracy is not None else ""))
    ax.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3)
    return fig


@registered("Sample predictions")
def test_samples(test: dict[str, np.ndarray], predictions: pd.DataFrame, per_kind: int, seed: int = 0) -> Figure:
    """Test images with predicted and true labels: ``per_kind`` random correct ones, then the most confident mistakes."""
    images = test["images"]
    rng = np.random.default_rng(seed)
    correct = predictions[predictions["correct"].astype(bool)]
    wrong = predictions[~predictions["correct"].astype(bool)].sort_values("confidence", ascending=False)
    chosen_correct = correct.iloc[np.sort(rng.choice(len(correct), size=min(per_kind, len(correct)), replace=False))]
    picks = [
        (f"Correct: {len(chosen_correct)} random of {len(correct):,}", chosen_correct, CORRECT),
        (f"Wrong: the {min(per_kind, len(wrong))} most confident of {len(wrong):,} mistakes", wrong.head(per_kind), WRONG),
    ]
    cols = min(8, max(1, per_kind))
    rows = [max(1, -(-len(chosen) // cols)) for _, chosen, _ in picks]
    fig = plt.figure(figsize=(cols * 1.6, sum(rows) * 1.65 + 1.0))
    for sub, (title, chosen, color), n_rows in zip(fig.subfigures(2, 1, height_ratios=rows), picks, rows):
        sub.suptitle(title, color=color, fontsize=10, fontweight="bold", x=0.02, ha="left")
        axes = np.atleast_1d(sub.subplots(n_rows, cols, squeeze=False)).ravel()
        for ax in axes:
            ax.axis("off")
        if len(chosen) == 0:
            axes[0].text(0, 0.5, "none", fontsize=9, transform=axes[0].transAxes)
        for ax, (_, row) in zip(axes, chosen.iterrows()):
            ax.axis("on")
            ax.imshow(images[int(row["index"])], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(True)
                spine.set_color(color)
                spine.set_linewidth(2)
            ax.set_title(f"pred: {row['predicted']} ({row['confidence']:.2f})\ntrue: {row['true']}", fontsize=7,
                         color=color)
    return fig


@registered("Most-confused class pairs", csv=True)
def confused_pairs(confusion: pd.DataFrame, predictions: pd.DataFrame, test: dict[str, np.ndarray], top: int,
                   examples: int = 4) -> dict:
    """The ``top`` most-confused (true, predicted) class pairs of the test split as bars, each with up to ``examples``
    such test images (the most confident mistakes first); the figure, and the pairs as a table."""
    pairs = most_confused_pairs(confusion, top)
    pairs = pairs[pairs["count"] > 0]
    mistakes = predictions.sort_values("confidence", ascending=False).groupby(["true", "predicted"])["index"]
    thumbnails = {pair: [test["images"][i] for i in indices] for pair, indices in mistakes}
    return {"figure": _confused_pairs_figure(pairs, confusion, thumbnails, examples), "csv": pairs}


def _confused_pairs_figure(pairs: pd.DataFrame, confusion: pd.DataFrame,
                           thumbnails: dict[tuple[str, str], list[np.ndarray]], per_pair: int) -> Figure:
    if len(pairs) == 0:
        fig, ax = plt.subplots(figsize=(6, 1.2))
        ax.axis("off")
        ax.text(0.5, 0.5, "No test image was misclassified: there are no confused pairs.", ha="center", va="center")
        ax.set_title("Most-confused class pairs on the test split")
        return fig
    n = len(pairs)
    totals = confusion.sum(axis=1)
    fig = plt.figure(figsize=(6 + per_pair * 0.75, 0.62 * n + 1.2))
    grid = fig.add_gridspec(1, 2, width_ratios=[6, per_pair * 0.75], wspace=0.02)
    bars = fig.add_subplot(grid[0])
    y = np.arange(len(pairs))
    bars.barh(y, pairs["count"], color=WRONG, alpha=0.8)
    for yi, (_, row) in zip(y, pairs.iterrows()):
        share = row["count"] / max(int(totals[row["true"]]), 1)
        bars.text(row["count"], yi, f" {int(row['count'])} ({share:.1%} of {row['true']})", va="center", fontsize=8)
    bars.set_yticks(y, [f"{t} → {p}" for t, p in zip(pairs["true"], pairs["predicted"])])
    bars.set_ylim(n - 0.5, -0.5)
    bars.set_xlim(0, pairs["count"].max() * 1.6)
    bars.set_xlabel("test images (true → predicted)")
    bars.grid(axis="y", visible=False)
    bars.set_title("Most-confused class pairs on the test split")
    thumbs = fig.add_subplot(grid[1])
    any_example = next((image for found in thumbnails.values() for image in found), np.zeros((1, 1, 3), np.uint8))
    blank = np.full_like(any_example, 255)  # of the dataset's image size
    tiles = []
    for _, row in pairs.iterrows():
        found = thumbnails.get((row["true"], row["predicted"]), [])[:per_pair]
        tiles += list(found) + [blank] * (per_pair - len(found))
    grid = tiled(tiles, n, per_pair)
    thumbs.imshow(grid, interpolation="nearest", aspect="auto", extent=(0, per_pair, n - 0.5, -0.5))
    thumbs.axis("off")
    thumbs.set_title("examples", fontsize=8)
    return fig
