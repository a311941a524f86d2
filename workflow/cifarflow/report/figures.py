"""Report figures: one function per figure, each drawn from cached results.

Nothing here knows about Snakemake: inputs are arrays, tables and dicts. A function that a report rule names
(``report_rule(..., plot=...)``) takes the rule's inputs and params by name and returns its figures and tables
(``figureio`` reads and writes the files); the others save to the path given. Figures are deterministic (fixed
seeds, no timestamps), so an unchanged input redraws an identical file.
"""

import colorsys
import re
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..evaluate.evaluation import most_confused_pairs  # noqa: E402

TRAIN = "#1f77b4"
VAL = "#ff7f0e"
TEST = "#2ca02c"
SELECTED = "#d62728"
OTHER = "#8c8c8c"
CORRECT = "#1a7f37"
WRONG = "#cf222e"
DPI = 110

# Colours for variants: tab10 without its red, which marks the selected variant.
PALETTE = [color for i, color in enumerate(plt.get_cmap("tab10").colors) if i != 3]

plt.rcParams.update({
    "figure.dpi": DPI,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": 9,
    "axes.titlesize": 10,
})


def save(fig, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None} if path.suffix == ".png" else None)
    plt.close(fig)


def _mosaic(images: list[np.ndarray], rows: int, cols: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """Tile uint8 HxWx3 images (at least one) into one array (missing tiles left blank), so a grid is one imshow call."""
    height, width = images[0].shape[:2]
    out = np.full((rows * (height + pad) + pad, cols * (width + pad) + pad, 3), fill, dtype=np.uint8)
    for i, image in enumerate(images[: rows * cols]):
        r, c = divmod(i, cols)
        top, left = pad + r * (height + pad), pad + c * (width + pad)
        out[top:top + height, left:left + width] = image
    return out


# --- data ---------------------------------------------------------------------------------------

def class_counts(classes: list[str], **splits: dict[str, np.ndarray]) -> Figure:
    """Images per class in each split (by name: its arrays), as grouped bars."""
    n = len(classes)
    counts = pd.DataFrame(
        {split: np.bincount(np.asarray(arrays["labels"], dtype=np.int64), minlength=n)[:n] for split, arrays in splits.items()},
        index=pd.Index(classes, name="class"),
    )
    colors = {"train": TRAIN, "val": VAL, "test": TEST}
    fig, ax = plt.subplots(figsize=(max(8.0, 0.28 * n * len(splits) / 3 + 2), 3.8))
    x = np.arange(n)
    width = 0.8 / len(splits)
    for i, split in enumerate(counts.columns):
        ax.bar(x + (i - (len(splits) - 1) / 2) * width, counts[split], width, color=colors.get(split),
               label=f"{split} ({counts[split].sum():,} images)")
    ax.set_xticks(x, classes, rotation=90 if n > 20 else 45, ha="center" if n > 20 else "right",
                  fontsize=6 if n > 20 else 9)
    ax.set_ylabel("images")
    ax.set_title("Images per class in each split")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.32 if n <= 20 else -0.45), ncol=len(splits), frameon=False)
    ax.grid(axis="x", visible=False)
    return fig


def sample_images(train: dict[str, np.ndarray], classes: list[str], per_class: int, seed: int = 0) -> Figure:
    """A grid of training images: one row per class, ``per_class`` random images of that class (seeded)."""
    images, labels = train["images"], train["labels"]
    rng = np.random.default_rng(seed)
    tiles = []
    for k in range(len(classes)):
        members = np.flatnonzero(labels == k)
        chosen = np.sort(rng.choice(members, size=min(per_class, len(members)), replace=False)) if len(members) else []
        row = [images[i] for i in chosen]
        tiles += row + [np.full_like(images[0], 255)] * (per_class - len(row))
    mosaic = _mosaic(tiles, len(classes), per_class)
    cell = 0.55
    fig, ax = plt.subplots(figsize=(per_class * cell + 1.6, len(classes) * cell + 0.6))
    ax.imshow(mosaic, interpolation="nearest")
    step = mosaic.shape[0] / len(classes)
    ax.set_yticks((np.arange(len(classes)) + 0.5) * step, classes)
    ax.set_xticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(f"{per_class} random training images per class")
    return fig


# --- training -----------------------------------------------------------------------------------

def learning_curves(history: pd.DataFrame, variant: str, path, reference: float | None = None,
                    total_epochs: int | None = None) -> None:
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
            _band(ax, history, column, color)
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
    save(fig, path)


def all_learning_curves(histories: dict[str, pd.DataFrame], selected: str, path, reference: float | None = None) -> None:
    """Validation loss and accuracy per epoch of every variant on one pair of axes; the selected one in red."""
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
        _band(axes[0], history, "val_loss", style["color"], alpha=0.1)
        _band(axes[1], history, "val_accuracy", style["color"], alpha=0.1)
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
    save(fig, path)


# --- selection ----------------------------------------------------------------------------------

def variant_comparison(table: pd.DataFrame, selected: str, path, reference: float | None = None) -> None:
    """Every variant by rank: validation accuracy and log-loss, parameters, training time; the selected in red, and
    a reference accuracy (the seed study's test accuracy) as a dashed line."""
    table = table.sort_values("rank") if "rank" in table else table
    names = list(table["variant"])
    y = np.arange(len(names))
    colors = [SELECTED if name == selected else OTHER for name in names]
    panels = [
        ("val_accuracy", "validation accuracy", "{:.3f}", 1.0),
        ("val_log_loss", "validation log-loss", "{:.3f}", 1.0),
        ("parameters", "parameters (millions)", "{:.2f}", 1e-6),
        ("training_seconds", "training time (minutes)", "{:.1f}", 1 / 60),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 0.38 * len(names) + 1.6), sharey=True)
    for ax, (column, title, fmt, scale) in zip(axes, panels):
        values = table[column].astype(float).to_numpy() * scale
        errors = None
        if f"{column}_low" in table:
            errors = _error_bars(values, table[f"{column}_low"].to_numpy() * scale, table[f"{column}_high"].to_numpy() * scale)
            title += "\n(mean, interval)"
        ax.barh(y, values, color=colors, xerr=errors, error_kw={"ecolor": "black", "elinewidth": 1, "capsize": 2})
        ends = values if errors is None else values + errors[1]
        for yi, value, end in zip(y, values, ends):
            ax.text(end, yi, " " + fmt.format(value), va="center", fontsize=7)
        ax.set_title(title)
        ax.set_xlim(0, max(values.max(), 1e-9) * 1.3)
        ax.grid(axis="y", visible=False)
    if reference is not None:
        axes[0].axvline(reference, color="black", ls="--", lw=0.8)
        axes[0].set_title(f"validation accuracy\n(dashed: the seed study's test accuracy, {reference:.4f})", fontsize=9)
    verdicts = dict(zip(table["variant"], table["verdict"])) if "verdict" in table else {}
    axes[0].set_yticks(y, [f"{name}  (selected)" if name == selected else
                           f"{name}  ({verdicts[name]})" if name in verdicts else name for name in names])
    axes[0].invert_yaxis()
    for label in axes[0].get_yticklabels():
        if label.get_text().endswith("(selected)"):
            label.set_color(SELECTED)
            label.set_fontweight("bold")
    fig.suptitle("Variants ranked by the selection metric (validation split); in brackets: the selected variant "
                 "is better than, tied with or worse than it (paired bootstrap)", fontsize=10)
    fig.tight_layout()
    save(fig, path)


def regularization_sweep(sweep: pd.DataFrame, histories: dict[str, pd.DataFrame], selected: str, path) -> None:
    """Training vs validation loss and accuracy against the regularization setting, and validation loss per epoch.

    A validation loss far above the training loss, or one that rises again after its minimum, is over-fitting.
    """
    x = np.arange(len(sweep))
    labels = [f"{s}\n{v}" for s, v in zip(sweep["setting"], sweep["variant"])]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for ax, metric, title in ((axes[0, 0], "loss", "Log-loss after the last epoch"),
                              (axes[0, 1], "accuracy", "Accuracy after the last epoch")):
        ax.plot(x, sweep[f"train_{metric}"], "o-", color=TRAIN, label=f"training {metric}")
        ax.plot(x, sweep[f"val_{metric}"], "s-", color=VAL, label=f"validation {metric}")
        ax.fill_between(x, sweep[f"train_{metric}"], sweep[f"val_{metric}"], color=VAL, alpha=0.12,
                        label="gap (over-fitting)")
        if metric == "loss":
            ax.plot(x, sweep["min_val_loss"], "v", color=VAL, alpha=0.6, label="lowest validation loss (any epoch)")
        elif "selection_val_accuracy_low" in sweep:
            mean, low, high = (sweep[f"selection_val_accuracy{end}"] for end in ("", "_low", "_high"))
            ax.errorbar(x, mean, yerr=_error_bars(mean, low, high),
                        fmt="D", color="black", ms=4, capsize=3, label="selection: validation accuracy, mean and interval")
        ax.set_xticks(x, labels, fontsize=7, rotation=30, ha="right", rotation_mode="anchor")
        ax.set_title(title)
        ax.legend(frameon=False, fontsize=7)
        _mark_selected_ticks(ax, sweep["variant"], selected)
    colors = plt.get_cmap("viridis")
    for i, row in sweep.iterrows():
        history = histories[row["variant"]]
        chosen = row["variant"] == selected
        color = SELECTED if chosen else colors(i / max(1, len(sweep) - 1))
        label = row["setting"] + (" (selected)" if chosen else "")
        axes[1, 0].plot(history["epoch"], history["val_loss"], color=color, lw=2.4 if chosen else 1.3, label=label)
        _band(axes[1, 0], history, "val_loss", color, alpha=0.12)
        axes[1, 1].plot(history["epoch"], history["accuracy"] - history["val_accuracy"], color=color,
                        lw=2.4 if chosen else 1.3, label=label)
    axes[1, 0].set_title("Validation log-loss per epoch")
    axes[1, 1].set_title("Training minus validation accuracy per epoch")
    axes[1, 1].axhline(0, color="black", lw=0.8)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1, 1].legend(frameon=False, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    arch = ", ".join(sorted(set(sweep["arch"].astype(str))))
    what = (f"regularization sweep on {arch}" if bool(sweep["is_sweep"].iloc[0])
            else "all variants (no two differ only in regularization)")
    fig.suptitle(f"Weight decay and dropout: {what}", fontsize=11)
    fig.tight_layout()
    save(fig, path)


def verdicts(pairs: pd.DataFrame, table: pd.DataFrame, selection: dict) -> Figure:
    """Every pair of variants (``pairs``: selection's pairwise.csv), in the order of the ranked ``table``: the mean
    difference in validation accuracy (row minus column, points) and the paired bootstrap verdict of the row against
    the column; cells whose interval includes 0 are tied."""
    order = list(table.sort_values("rank")["variant"])
    selected, level = selection["variant"], selection["level"]
    index = {name: i for i, name in enumerate(order)}
    delta = np.full((len(order), len(order)), np.nan)
    marks = {"better": "+", "worse": "−", "tied": "="}
    fig, ax = plt.subplots(figsize=(0.62 * len(order) + 3, 0.55 * len(order) + 2))
    for row in pairs.itertuples():
        delta[index[row.variant], index[row.other]] = 100 * row.delta_accuracy
    limit = max(np.nanmax(np.abs(delta)), 1e-9) if np.isfinite(delta).any() else 1.0
    for row in pairs.itertuples():
        i, j = index[row.variant], index[row.other]
        ax.text(j, i, f"{marks[row.verdict]}\n{delta[i, j]:+.1f}", ha="center", va="center", fontsize=7,
                color="white" if abs(delta[i, j]) > 0.6 * limit else "black")
    image = ax.imshow(delta, cmap="RdBu", vmin=-limit, vmax=limit)
    fig.colorbar(image, ax=ax, label="Δ validation accuracy, row − column (points)", shrink=0.8)
    labels = [f"{name} (selected)" if name == selected else name for name in order]
    ax.set_xticks(range(len(order)), labels, rotation=40, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_yticks(range(len(order)), labels, fontsize=8)
    ax.grid(False)
    ax.set_title(f"Paired comparisons on the validation images: + better, = tied, − worse\n"
                 f"(row against column; {1 - level:.0%} paired bootstrap interval of the selection metric's difference)",
                 fontsize=9)
    fig.tight_layout()
    return fig


OUTCOME_COLORS = {"holds": CORRECT, "reversed": WRONG, "not shown (tied)": OTHER}


def questions(questions: pd.DataFrame) -> Figure:
    """The seed's conclusions answered here (``questions``: selection's questions.csv): per claim the difference in
    validation accuracy of its two variants with the paired bootstrap interval, coloured by whether the seed's
    finding holds, is tied or is reversed; the claims whose variants the study did not train are left out."""
    answered = questions[questions["verdict"].notna()].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(8, 0.55 * max(len(answered), 1) + 1.6))
    if not len(answered):
        ax.text(0.5, 0.5, "no question's two variants are in this study", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    rows = np.arange(len(answered))[::-1]
    for y, row in zip(rows, answered.itertuples()):
        color = OUTCOME_COLORS[row.outcome]
        low, high = 100 * row.delta_accuracy_low, 100 * row.delta_accuracy_high
        ax.errorbar(100 * row.delta_accuracy, y, xerr=[[100 * row.delta_accuracy - low], [high - 100 * row.delta_accuracy]],
                    fmt="o", color=color, capsize=3)
        ax.text(1.01, y, row.outcome, color=color, va="center", fontsize=8, transform=ax.get_yaxis_transform())
    ax.axvline(0, color="black", lw=0.8)
    labels = [f"{row.claim}\n{row.variant} vs {row.other} (seed: {row.expected})" for row in answered.itertuples()]
    ax.set_yticks(rows, labels, fontsize=8)
    ax.set_xlabel("Δ validation accuracy, variant − other (points)")
    level, metric = float(answered["level"].iloc[0]), answered["metric"].iloc[0]
    ax.set_title(f"The seed's conclusions, tested here ({1 - level:.0%} paired bootstrap intervals; verdicts on {metric})",
                 fontsize=9)
    ax.grid(axis="y", visible=False)
    fig.tight_layout()
    return fig


def _error_bars(values, low, high) -> np.ndarray:
    """Matplotlib's (2, n) error bars from an interval; a percentile bootstrap interval need not hold the mean (tiny
    samples), so the bar on that side is empty then."""
    values, low, high = (np.asarray(array, dtype=float) for array in (values, low, high))
    return np.clip(np.vstack([values - low, high - values]), 0, None)


def _seeds(history: pd.DataFrame) -> int:
    """How many seeds a history (``tables.seed_band``) is the mean of; 1 for a single training's."""
    return int(history["seeds"].max()) if "seeds" in history else 1


def _band(ax, history: pd.DataFrame, column: str, color, alpha: float = 0.18) -> None:
    """The spread over seeds of ``column`` as a shaded band, where ``history`` holds one (``tables.seed_band``)."""
    if f"{column}_low" in history:
        ax.fill_between(history["epoch"], history[f"{column}_low"], history[f"{column}_high"], color=color, alpha=alpha, lw=0)


def _mark_selected_ticks(ax, variants, selected: str) -> None:
    for label, name in zip(ax.get_xticklabels(), variants):
        if name == selected:
            label.set_color(SELECTED)
            label.set_fontweight("bold")


# --- test ---------------------------------------------------------------------------------------

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


def class_metrics(report: pd.DataFrame) -> Figure:
    """Precision, recall and F1 of each class on the test split, with the macro averages as lines."""
    report = report.copy()
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


def confused_pairs(confusion: pd.DataFrame, predictions: pd.DataFrame, test: dict[str, np.ndarray], top: int,
                   examples: int = 4) -> dict:
    """The ``top`` most-confused (true, predicted) class pairs of the test split as bars, each with up to ``examples``
    such test images (the most confident mistakes first); the figure, and the pairs as a table."""
    pairs = most_confused_pairs(confusion, top)
    pairs = pairs[pairs["count"] > 0]
    mistakes = predictions.sort_values("confidence", ascending=False).groupby(["true", "predicted"])["index"]
    thumbnails = {pair: [test["images"][i] for i in indices] for pair, indices in mistakes}
    return {"figure": _confused_pairs_figure(pairs, confusion, thumbnails, examples), "table": pairs}


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
    mosaic = _mosaic(tiles, n, per_pair)
    thumbs.imshow(mosaic, interpolation="nearest", aspect="auto", extent=(0, per_pair, n - 0.5, -0.5))
    thumbs.axis("off")
    thumbs.set_title("examples", fontsize=8)
    return fig


# --- beyond accuracy: calibration and robustness --------------------------------------------------

FAMILY_STYLES = {"noise": "-", "blur": "--", "weather": ":", "digital": "-."}


def _bin_values(record: dict, key: str) -> np.ndarray:
    """One column of a ``calibration.reliability_record`` as floats (empty bins: NaN)."""
    return np.array([np.nan if value is None else value for value in record[key]], dtype=float)


def _reliability_panel(top, bottom, record: dict, scaled: dict | None, title: str, chosen: bool) -> None:
    """Accuracy per confidence bin against the diagonal (gaps shaded), the scaled probabilities as points, and the
    share of images per bin below."""
    edges = np.asarray(record["edges"])
    centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    count, accuracy, confidence = (_bin_values(record, key) for key in ("count", "accuracy", "confidence"))
    filled = count > 0
    top.bar(centres[filled], accuracy[filled], width[filled], color=TRAIN, alpha=0.75, edgecolor="white", label="accuracy")
    top.bar(centres[filled], confidence[filled] - accuracy[filled], width[filled], bottom=accuracy[filled], color=WRONG,
            alpha=0.25, edgecolor=WRONG, lw=0.5, label="gap to confidence")
    top.plot([0, 1], [0, 1], color="black", ls="--", lw=0.8)
    if scaled is not None:
        keep = _bin_values(scaled, "count") > 0
        top.plot(_bin_values(scaled, "confidence")[keep], _bin_values(scaled, "accuracy")[keep], "o-", color=TEST, ms=3,
                 lw=1, label="after temperature scaling")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_title(title, fontsize=8, color=SELECTED if chosen else "black", fontweight="bold" if chosen else "normal")
    top.tick_params(labelbottom=False, labelsize=7)
    bottom.bar(centres, count / max(count.sum(), 1), width, color=OTHER, edgecolor="white")
    bottom.set_xlim(0, 1)
    bottom.set_xlabel("confidence", fontsize=7)
    bottom.tick_params(labelsize=7)


def reliability_figure(panels: list[dict], suptitle: str, columns: int = 4) -> Figure:
    """Small multiples of reliability diagrams, each with its confidence histogram under it.

    Each panel: ``title``, ``record`` (``calibration.reliability_record``), optionally ``scaled`` (the record after
    temperature scaling) and ``chosen`` (drawn in the selected variant's colour)."""
    columns = max(1, min(columns, len(panels)))
    rows = -(-len(panels) // columns)
    fig = plt.figure(figsize=(3.1 * columns, 3.4 * rows + 0.6))
    grid = fig.add_gridspec(rows, columns, hspace=0.45, wspace=0.3)
    for i, panel in enumerate(panels):
        cell = grid[i // columns, i % columns].subgridspec(2, 1, height_ratios=[3, 1], hspace=0.08)
        top, bottom = fig.add_subplot(cell[0]), fig.add_subplot(cell[1])
        _reliability_panel(top, bottom, panel["record"], panel.get("scaled"), panel["title"], panel.get("chosen", False))
        if i % columns == 0:
            top.set_ylabel("accuracy", fontsize=7)
            bottom.set_ylabel("images", fontsize=7)
        if i == 0:
            top.legend(frameon=False, fontsize=6, loc="upper left")
    fig.suptitle(suptitle, fontsize=10)
    return fig


def reliability_panel(variant: str, calibrations: list[dict], chosen: bool) -> dict:
    """A ``reliability_figure`` panel of one variant from the ``calibration.json`` of each of its seeds: their images
    pooled, and the seeds' mean ECE before and after temperature scaling and mean temperature in the title."""
    from ..evaluate.calibration import pooled_reliability

    def mean(values) -> float:
        return float(np.mean(list(values)))

    before, after = (mean(c[key]["ece"] for c in calibrations) for key in ("uncalibrated", "calibrated"))
    temperature = mean(c["temperature"] for c in calibrations)
    seeds = f"seed {calibrations[0]['seed']}" if len(calibrations) == 1 else f"{len(calibrations)} seeds"
    return {"title": f"{variant} ({seeds}): ECE {before:.3f} -> {after:.3f} (T {temperature:.2f})",
            "record": pooled_reliability([c["reliability"]["uncalibrated"] for c in calibrations]),
            "scaled": pooled_reliability([c["reliability"]["calibrated"] for c in calibrations]), "chosen": chosen}


def reliability_diagrams(panels: list[dict], path, suptitle: str, columns: int = 4) -> None:
    """``reliability_figure`` saved to ``path``."""
    save(reliability_figure(panels, suptitle, columns), path)


def test_reliability(metrics: dict, columns: int = 2) -> Figure:
    """The selected model's reliability on the test split (its ``metrics.json``), before and after temperature
    scaling."""
    calibration = metrics["calibration"]
    before, after = calibration["uncalibrated"], calibration["calibrated"]
    panels = [
        {"title": f"as trained: ECE {before['ece']:.3f}, mean confidence {before['mean_confidence']:.3f}",
         "record": calibration["reliability"]["uncalibrated"]},
        {"title": f"temperature {calibration['temperature']:.3f}: ECE {after['ece']:.3f}, "
                  f"mean confidence {after['mean_confidence']:.3f}",
         "record": calibration["reliability"]["calibrated"], "chosen": True},
    ]
    return reliability_figure(panels,
                              f"{metrics['variant']} on the test split (accuracy {metrics['accuracy']:.3f}, "
                              f"{metrics['n_images']:,} images, {calibration['bins']} bins): before and after temperature "
                              "scaling", columns=columns)


def _ordered_corruptions(table: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(table["corruption"]))


def corruption_heatmap(table: pd.DataFrame, clean_accuracy: float) -> Figure:
    """Accuracy per corruption (rows, by family) and severity (columns), with each corruption's mean."""
    names = _ordered_corruptions(table)
    grid = table.pivot(index="corruption", columns="severity", values="accuracy").loc[names]
    grid["mean"] = grid.mean(axis=1)
    values = grid.to_numpy()
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(names) + 1.6))
    shown = ax.imshow(values, cmap="RdYlGn", vmin=0, vmax=max(clean_accuracy, values.max()), aspect="auto")
    fig.colorbar(shown, ax=ax, fraction=0.04, pad=0.03, label="accuracy")
    families = dict(zip(table["corruption"], table["family"]))
    ax.set_yticks(np.arange(len(names)), [f"{name} ({families[name]})" for name in names], fontsize=8)
    ax.set_xticks(np.arange(values.shape[1]), [f"severity {c}" if c != "mean" else "mean" for c in grid.columns], fontsize=8)
    ax.axvline(values.shape[1] - 1.5, color="white", lw=3)
    ax.grid(False)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7)
    mean = float(table["accuracy"].mean())
    ax.set_title(f"Accuracy on corrupted test images: clean {clean_accuracy:.3f}, mean over corruptions {mean:.3f} "
                 f"({mean / clean_accuracy:.0%} of clean)" if clean_accuracy > 0 else "Accuracy on corrupted test images",
                 fontsize=9)
    return fig


def severity_curves(table: pd.DataFrame, clean: dict) -> Figure:
    """Accuracy and ECE against severity (0: the clean images) per corruption, and their mean over corruptions."""
    names = _ordered_corruptions(table)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, metric, title in ((axes[0], "accuracy", "Accuracy"), (axes[1], "ece", "Expected calibration error")):
        for i, name in enumerate(names):
            rows = table[table["corruption"] == name].sort_values("severity")
            ax.plot([0, *rows["severity"]], [clean[metric], *rows[metric]], FAMILY_STYLES.get(rows["family"].iloc[0], "-"),
                    color=PALETTE[i % len(PALETTE)], lw=1.2, marker="o", ms=2.5, label=f"{name} ({rows['family'].iloc[0]})")
        mean = table.groupby("severity")[metric].mean()
        ax.plot([0, *mean.index], [clean[metric], *mean], color="black", lw=2.6, label="mean over corruptions")
        ax.set_xlabel("severity (0: clean)")
        ax.set_title(f"{title} against severity")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylim(0, 1)
    axes[1].set_ylim(bottom=0)
    axes[1].legend(frameon=False, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def robustness(table: pd.DataFrame, summary: dict) -> dict:
    """The corruption heatmap and the severity curves of the robustness table (accuracy and ECE per corruption and
    severity) and summary (on the clean images)."""
    return {"heatmap": corruption_heatmap(table, summary["clean_accuracy"]),
            "curves": severity_curves(table, {"accuracy": summary["clean_accuracy"], "ece": summary["clean_ece"]})}


# --- pipeline -----------------------------------------------------------------------------------

_NODE = re.compile(r'^\s*(\d+)\s*\[label\s*=\s*"([^"]*)"(?:,\s*color\s*=\s*"([^"]*)")?')
_EDGE = re.compile(r"^\s*(\d+)\s*->\s*(\d+)")


def parse_dot(text: str) -> tuple[dict[str, dict], list[tuple[str, str]]]:
    """Nodes ({id: {label, color}}) and edges ((from, to)) of Snakemake's ``--rulegraph`` DOT output."""
    nodes, edges = {}, []
    for line in text.splitlines():
        edge = _EDGE.match(line)
        if edge:
            edges.append((edge.group(1), edge.group(2)))
            continue
        node = _NODE.match(line)
        if node:
            nodes[node.group(1)] = {"label": node.group(2).replace("\\n", "\n"), "color": node.group(3)}
    return nodes, edges


def _layers(nodes: dict, edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layering: every rule one row below the deepest rule it needs."""
    parents = defaultdict(list)
    for a, b in edges:
        parents[b].append(a)
    depth: dict[str, int] = {}

    def visit(node, seen=()):
        if node not in depth:
            depth[node] = 0 if node in seen else 1 + max((visit(p, seen + (node,)) for p in parents[node]), default=-1)
        return depth[node]

    for node in nodes:
        visit(node)
    return depth


def _order_rows(rows: dict[int, list[str]], edges: list[tuple[str, str]], sweeps: int = 4) -> dict[str, tuple[float, float]]:
    """Order the rules in each row so that edges cross less (barycenter heuristic, sweeping down then up): a rule
    moves towards the mean position of the rules it needs, then of the rules that need it."""
    parents, children = defaultdict(list), defaultdict(list)
    for a, b in edges:
        parents[b].append(a)
        children[a].append(b)
    x = {}

    def place(level):
        for i, node in enumerate(rows[level]):
            x[node] = i - (len(rows[level]) - 1) / 2

    levels = sorted(rows)
    for level in levels:
        place(level)
    for _ in range(sweeps):
        for order, links in ((levels[1:], parents), (levels[-2::-1], children)):
            for level in order:
                rows[level].sort(key=lambda n: np.mean([x[m] for m in links[n]]) if links[n] else x[n])
                place(level)
    return {node: (x[node], -level) for level in levels for node in rows[level]}


def rule_graph(dot: str, path, leave_out: tuple[str, ...] = ("all",)) -> None:
    """Draw Snakemake's rule graph (DOT text) with matplotlib, so no graphviz is needed. An arrow goes from a rule to
    the rules that use its output; each row holds the rules at the same dependency depth. The target rule ``all``,
    which only collects every output, is left out to keep the graph readable."""
    nodes, edges = parse_dot(dot)
    dropped = {n for n, node in nodes.items() if node["label"] in leave_out}
    nodes = {n: node for n, node in nodes.items() if n not in dropped}
    edges = [(a, b) for a, b in edges if a in nodes and b in nodes]
    depth = _layers(nodes, edges)
    rows = defaultdict(list)
    for node in sorted(nodes, key=lambda n: nodes[n]["label"]):
        rows[depth[node]].append(node)
    position = _order_rows(rows, edges)
    widest = max((len(r) for r in rows.values()), default=1)
    fig, ax = plt.subplots(figsize=(max(6.0, 2.1 * widest), 1.0 * max(1, len(rows)) + 0.6))
    for a, b in edges:
        (xa, ya), (xb, yb) = position[a], position[b]
        # an edge that skips rows bends, so it does not run straight behind the rules in between
        bend = 0.0 if ya - yb <= 1 else 0.15 * (np.sign(xb - xa) or 1.5)
        ax.annotate("", xy=(xb, yb + 0.19), xytext=(xa, ya - 0.19), zorder=1,
                    arrowprops={"arrowstyle": "-|>", "color": "#a0a0a0", "lw": 1.0, "alpha": 0.8, "shrinkA": 0,
                                "shrinkB": 0, "connectionstyle": f"arc3,rad={bend}"})
    for node, (x, y) in position.items():
        color = _dot_color(nodes[node]["color"])
        ax.add_patch(FancyBboxPatch((x - 0.44, y - 0.19), 0.88, 0.38, boxstyle="round,pad=0.02,rounding_size=0.08",
                                    facecolor="white", edgecolor=color, lw=2, zorder=3))
        ax.text(x, y, nodes[node]["label"], ha="center", va="center", fontsize=8, zorder=4)
    xs = [p[0] for p in position.values()] or [0]
    ys = [p[1] for p in position.values()] or [0]
    ax.set_xlim(min(xs) - 0.55, max(xs) + 0.55)
    ax.set_ylim(min(ys) - 0.4, max(ys) + 0.4)
    ax.axis("off")
    left_out = f" ({', '.join(sorted(leave_out))} left out)" if dropped else ""
    ax.set_title(f"Rule graph: {len(nodes)} rules, {len(edges)} dependencies{left_out}")
    save(fig, path)


def _dot_color(hsv: str | None) -> tuple:
    try:
        h, s, v = (float(part) for part in hsv.split())
        return colorsys.hsv_to_rgb(h, s, v)
    except (AttributeError, ValueError):
        return (0.4, 0.4, 0.4)


def job_costs(table: pd.DataFrame) -> dict:
    """Wall time and peak memory (max RSS) of each benchmarked job (``tables.read_benchmarks``), grouped by rule; the
    figure, and the table as CSV text (six significant digits)."""
    csv = table.to_csv(index=False, float_format="%.6g")
    table = table.copy()
    table["name"] = [f"{r}: {j}" if j else r for r, j in zip(table["rule"], table["job"])]
    order = table.groupby("rule", sort=False)["seconds"].transform("sum")
    table = table.assign(_order=order).sort_values(["_order", "rule", "seconds"], ascending=[False, True, False])
    rules = list(dict.fromkeys(table["rule"]))
    palette = plt.get_cmap("tab10" if len(rules) <= 10 else "tab20")
    colors = [palette(rules.index(r) % palette.N) for r in table["rule"]]
    y = np.arange(len(table))
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.3 * len(table) + 1.6), sharey=True)
    panels = ((axes[0], "seconds", "wall time (s)", "{:.1f}"), (axes[1], "max_rss_mb", "peak memory, max RSS (MB)", "{:.0f}"))
    for ax, column, title, fmt in panels:
        values = table[column].fillna(0).to_numpy(dtype=float)
        ax.barh(y, values, color=colors)
        for yi, value, raw in zip(y, values, table[column]):
            ax.text(value, yi, " " + ("n/a" if pd.isna(raw) else fmt.format(value)), va="center", fontsize=7)
        ax.set_title(title)
        ax.set_xlim(0, max(values.max(), 1e-9) * 1.25)
        ax.grid(axis="y", visible=False)
    axes[0].set_yticks(y, table["name"], fontsize=7 if len(table) > 30 else 8)
    axes[0].invert_yaxis()
    total = table["seconds"].sum()
    fig.suptitle(f"Benchmarked jobs: {len(table)} jobs, {total / 60:.1f} minutes of wall time in all")
    fig.tight_layout()
    return {"figure": fig, "table": csv}
