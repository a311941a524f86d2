"""The report's figures of its *5. Selection* category: the variants compared, the regularization sweep, the
paired verdicts, the seed's questions and this study against an earlier one (``compare_with``)."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..tables import comparison_html, sweep_table, variants_html
from .style import CORRECT, OTHER, SELECTED, TRAIN, VAL, WRONG, registered, spread_band


@registered("Variant comparison", table="Variant table")
def variant_comparison(variants: pd.DataFrame, selection: dict, reference: float | None = None) -> dict:
    """Every variant by rank (``variants``: selection's variants.csv): validation accuracy and log-loss, parameters,
    training time; the selected in red, and a reference accuracy (the seed study's test accuracy) as a dashed line.
    With the table as an HTML page."""
    selected = selection["variant"]
    table = variants.sort_values("rank") if "rank" in variants else variants
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
    return {"figure": fig, "table": variants_html(table, selected)}


@registered("Regularization sweep", csv=True)
def regularization_sweep(summaries: list[dict], histories: dict[str, pd.DataFrame], variants: pd.DataFrame,
                         selection: dict) -> dict:
    """The sweep table (``tables.sweep_table``) of the variants' recipes, as their training.json record them, and its
    figure (``sweep_figure``)."""
    recipes = {}
    for summary in summaries:  # the variant's recipe, whichever seed trained it
        recipe = summary["recipe"]
        recipe["train"].pop("seed")
        recipes[summary["variant"]] = recipe
    sweep = sweep_table(recipes, histories, variants.set_index("variant").to_dict("index"))
    return {"figure": sweep_figure(sweep, histories, selection["variant"]),
            "csv": sweep.to_csv(index=False, float_format="%.6g")}


def sweep_figure(sweep: pd.DataFrame, histories: dict[str, pd.DataFrame], selected: str) -> Figure:
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
        spread_band(axes[1, 0], history, "val_loss", color, alpha=0.12)
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
    return fig


@registered("Paired comparisons")
def verdicts(pairs: pd.DataFrame, variants: pd.DataFrame, selection: dict) -> Figure:
    """Every pair of variants (``pairs``: selection's pairwise.csv), in the order of the ranked ``variants``: the mean
    difference in validation accuracy (row minus column, points) and the paired bootstrap verdict of the row against
    the column; cells whose interval includes 0 are tied."""
    order = list(variants.sort_values("rank")["variant"])
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
VERDICT_COLORS = {"better": CORRECT, "worse": WRONG, "tied": OTHER}


@registered("The seed's conclusions")
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


@registered("Against an earlier study", table="Against an earlier study: table")
def study_comparison(comparison: pd.DataFrame, earlier: str, later: str = "this study", level: float = 0.05) -> dict:
    """Two studies on the same images (``comparison``: ``cifarflow compare``'s table, B = ``later`` against A =
    ``earlier``): per variant in both and for the two selected models on the test split, Δaccuracy (points) with its
    paired bootstrap interval, coloured by the verdict; beside the figure the whole table as an HTML page."""
    labels = [r.variant if r.split == "validation" else f"selected, test: {r.a} → {r.b}" for r in comparison.itertuples()]
    delta = 100 * comparison["delta_accuracy"].to_numpy(dtype=float)
    low = 100 * comparison["delta_accuracy_low"].to_numpy(dtype=float)
    high = 100 * comparison["delta_accuracy_high"].to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.45 * len(comparison)))
    rows = np.arange(len(comparison))[::-1]
    for k, r in enumerate(comparison.itertuples()):
        color = VERDICT_COLORS[r.verdict]
        ax.errorbar(delta[k], rows[k], xerr=_error_bars(delta[k:k + 1], low[k:k + 1], high[k:k + 1]), fmt="o", color=color,
                    capsize=3)
        same = "" if r.predictions_changed else "  (same predictions)"
        ax.annotate(f"{r.verdict}{same}", (high[k], rows[k]), xytext=(6, 0), textcoords="offset points", va="center",
                    fontsize=8, color=color)
    ax.axvline(0, color="black", lw=0.8)
    span = max(float(np.max(high, initial=0)) - float(np.min(low, initial=0)), 1.0)
    ax.set_xlim(min(float(np.min(low, initial=0)), 0) - 0.05 * span, max(float(np.max(high, initial=0)), 0) + 0.45 * span)
    ax.set_yticks(rows, labels, fontsize=8)
    ax.set_xlabel(f"Δ accuracy, B − A (percentage points; {1 - level:.0%} paired bootstrap interval)")
    ax.set_title(f"B: {later}\nagainst A: {earlier}", fontsize=9)
    ax.grid(axis="y", visible=False)
    fig.tight_layout()
    return {"figure": fig, "table": comparison_html(comparison, earlier, later, level)}


def _error_bars(values, low, high) -> np.ndarray:
    """Matplotlib's (2, n) error bars from an interval; a percentile bootstrap interval need not hold the mean (tiny
    samples), so the bar on that side is empty then."""
    values, low, high = (np.asarray(array, dtype=float) for array in (values, low, high))
    return np.clip(np.vstack([values - low, high - values]), 0, None)


def _mark_selected_ticks(ax, variants, selected: str) -> None:
    for label, name in zip(ax.get_xticklabels(), variants):
        if name == selected:
            label.set_color(SELECTED)
            label.set_fontweight("bold")
