"""The report's figures of its *7. Beyond accuracy* category: calibration and robustness."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..tables import calibration_html, calibration_table
from .style import OTHER, PALETTE, SELECTED, TEST, TRAIN, WRONG, registered


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
    from ...evaluate.calibration import pooled_reliability

    def mean(values) -> float:
        return float(np.mean(list(values)))

    before, after = (mean(c[key]["ece"] for c in calibrations) for key in ("uncalibrated", "calibrated"))
    temperature = mean(c["temperature"] for c in calibrations)
    seeds = f"seed {calibrations[0]['seed']}" if len(calibrations) == 1 else f"{len(calibrations)} seeds"
    return {"title": f"{variant} ({seeds}): ECE {before:.3f} -> {after:.3f} (T {temperature:.2f})",
            "record": pooled_reliability([c["reliability"]["uncalibrated"] for c in calibrations]),
            "scaled": pooled_reliability([c["reliability"]["calibrated"] for c in calibrations]), "chosen": chosen}


@registered("Reliability diagrams of all variants", subcategory="Calibration", table="Calibration table", csv=True)
def calibration(calibrations: list[dict], selection: dict, columns: int = 4) -> dict:
    """Every variant's reliability diagram on the validation split (its seeds' images pooled) and the calibration
    table, each seed a row, as an HTML page and as CSV."""
    by_variant = {}
    for record in calibrations:
        by_variant.setdefault(record["variant"], []).append(record)
    selected = selection["variant"]
    panels = [reliability_panel(variant, seeds, variant == selected) for variant, seeds in by_variant.items()]
    bins = calibrations[0]["bins"]
    figure = reliability_figure(panels, f"Reliability of every variant on the validation split ({bins} equal-width "
                                        "confidence bins)", columns=columns)
    table = calibration_table(calibrations)
    return {"figure": figure, "table": calibration_html(table, selected), "csv": table}


@registered("Test reliability before and after temperature scaling", subcategory="Calibration")
def test_reliability(test_metrics: dict, columns: int = 2) -> Figure:
    """The selected model's reliability on the test split (``test_metrics``: its ``metrics.json``), before and after
    temperature scaling."""
    calibration = test_metrics["calibration"]
    before, after = calibration["uncalibrated"], calibration["calibrated"]
    panels = [
        {"title": f"as trained: ECE {before['ece']:.3f}, mean confidence {before['mean_confidence']:.3f}",
         "record": calibration["reliability"]["uncalibrated"]},
        {"title": f"temperature {calibration['temperature']:.3f}: ECE {after['ece']:.3f}, "
                  f"mean confidence {after['mean_confidence']:.3f}",
         "record": calibration["reliability"]["calibrated"], "chosen": True},
    ]
    return reliability_figure(panels,
                              f"{test_metrics['variant']} on the test split (accuracy {test_metrics['accuracy']:.3f}, "
                              f"{test_metrics['n_images']:,} images, {calibration['bins']} bins): before and after temperature "
                              "scaling", columns=columns)


def _ordered_corruptions(table: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(table["corruption"]))


@registered("Accuracy per corruption and severity", subcategory="Robustness")
def corruption_heatmap(robustness: pd.DataFrame, robustness_summary: dict) -> Figure:
    """Accuracy per corruption (rows, by family) and severity (columns), with each corruption's mean (``robustness``:
    the robustness table; ``robustness_summary``: the accuracy on the clean images)."""
    table, clean_accuracy = robustness, robustness_summary["clean_accuracy"]
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


@registered("Accuracy and ECE against severity", subcategory="Robustness")
def severity_curves(robustness: pd.DataFrame, robustness_summary: dict) -> Figure:
    """Accuracy and ECE against severity (0: the clean images) per corruption, and their mean over corruptions."""
    table = robustness
    clean = {"accuracy": robustness_summary["clean_accuracy"], "ece": robustness_summary["clean_ece"]}
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
