"""Tables for the report, built from cached results: layer tables, the regularization sweep, benchmarks, HTML.

Nothing here knows about Snakemake: inputs are models, settings, tables and paths; outputs are DataFrames and HTML.
"""

import html
from pathlib import Path

import numpy as np
import pandas as pd

from .page import html_page

# Settings a regularization sweep varies; variants that agree on everything else form one sweep.
SWEEP_KEYS = ("weight_decay", "dropout", "dropout_rates", "name")


# --- architectures ------------------------------------------------------------------------------

def layer_table(model) -> pd.DataFrame:
    """One row per layer of a Keras model: name, type (with its activation), output shape, parameters, inputs."""
    rows = []
    for layer in model.layers:
        kind = type(layer).__name__
        activation = getattr(layer, "activation", None)
        activation = getattr(activation, "__name__", None)
        if activation and activation != "linear" and kind != "Activation":
            kind = f"{kind} ({activation})"
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):
            shape = None
        rows.append({
            "layer": layer.name,
            "type": kind,
            "output shape": "?" if shape is None else "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")",
            "parameters": int(layer.count_params()),
            "connected to": ", ".join(_inbound_layers(layer)),
        })
    return pd.DataFrame(rows)


def _inbound_layers(layer) -> list[str]:
    names = []
    for node in getattr(layer, "_inbound_nodes", []):
        for tensor in getattr(node, "input_tensors", []):
            history = getattr(tensor, "_keras_history", None)
            if history is not None:
                names.append(history[0].name)
    return names


def parameter_counts(model) -> dict:
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    total = int(sum(np.prod(w.shape) for w in model.weights))
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}


def layer_table_html(variant: str, table: pd.DataFrame, counts: dict, recipe: dict) -> str:
    """A self-contained HTML page: the variant's recipe (as training.json records it), its layers, and its parameter
    counts."""
    chain = all(
        row["connected to"] in ("", previous)
        for previous, (_, row) in zip([""] + list(table["layer"]), table.iterrows())
    )
    shown = table.drop(columns=["connected to"]) if chain else table
    shown = shown.assign(parameters=shown["parameters"].map("{:,}".format))
    train = recipe["train"]
    facts = {
        "architecture": recipe["arch"],
        "weight decay (L2)": f"{recipe['weight_decay']:g}",
        "dropout": _dropout_text(recipe),
        "augmentation": _augment_text(recipe["augment"]),
        "optimizer": f"{train['optimizer']}, learning rate {train['lr']}, batch size {train['batch_size']}",
        "epochs": str(train["epochs"]),
        "parameters": f"{counts['total']:,} ({counts['trainable']:,} trainable, {counts['non_trainable']:,} non-trainable)",
    }
    return html_page(
        f"Layers of {variant}",
        _facts_html(facts) + table_html(shown, right=["parameters"]),
    )


def _dropout_text(recipe: dict) -> str:
    if not recipe["dropout"]:
        return "none"
    return ", ".join(f"{where} {rate:g}" for where, rate in recipe["dropout_rates"].items())


def _augment_text(augment: dict) -> str:
    parts = []
    if augment["shift"]:
        parts.append(f"shift {augment['shift']:g}")
    if augment["flip"]:
        parts.append("horizontal flip")
    return ", ".join(parts) or "none"


# --- selection ----------------------------------------------------------------------------------

def sweep_label(weight_decay: float, dropout: bool) -> str:
    return f"L2 {weight_decay:g}" + (" + dropout" if dropout else "")


def variant_of(path) -> str:
    """The variant of a training's file, results/variants/<variant>/seed-<seed>/<file>."""
    return Path(path).parent.parent.name


def histories_by_variant(paths: list) -> dict[str, pd.DataFrame]:
    """Each variant's training histories (history.csv of every seed) as one ``seed_band``."""
    grouped: dict[str, list[pd.DataFrame]] = {}
    for path in paths:
        grouped.setdefault(variant_of(path), []).append(pd.read_csv(path))
    return {name: seed_band(histories) for name, histories in grouped.items()}


def seed_band(histories: list[pd.DataFrame]) -> pd.DataFrame:
    """Several seeds' histories as one: per epoch the mean of each metric, and its lowest and highest value over the
    seeds as ``<metric>_low`` / ``<metric>_high``; ``seeds``: how many seeds reached that epoch."""
    stacked = pd.concat(histories, ignore_index=True)
    grouped = stacked.groupby("epoch")
    band = grouped.mean(numeric_only=True)
    metrics = [column for column in band.columns if column != "epoch"]
    band = band.join(grouped[metrics].min().add_suffix("_low")).join(grouped[metrics].max().add_suffix("_high"))
    band["seeds"] = grouped.size()
    return band.reset_index()


def sweep_table(settings: dict[str, dict], histories: dict[str, pd.DataFrame],
                metrics: dict[str, dict] | None = None) -> pd.DataFrame:
    """The regularization sweep: the largest group of variants that differ only in weight decay and dropout.

    One row per variant of the group (all variants if no two share their other settings), ordered without dropout
    first, then by weight decay, with the final epoch's training and validation loss and accuracy and measures of
    over-fitting: the gaps between training and validation, and how far validation loss rose from its minimum.
    """
    groups: dict[str, list[str]] = {}
    for name, values in settings.items():
        key = repr(sorted((k, repr(v)) for k, v in values.items() if k not in SWEEP_KEYS))
        groups.setdefault(key, []).append(name)
    group = max(groups.values(), key=len)
    members = group if len(group) > 1 else list(settings)
    rows = []
    for name in members:
        values, history = settings[name], histories[name]
        last = history.iloc[-1]
        best = history["val_loss"].idxmin()
        row = {
            "variant": name,
            "arch": values["arch"],
            "weight_decay": float(values["weight_decay"]),
            "dropout": bool(values["dropout"]),
            "setting": sweep_label(float(values["weight_decay"]), bool(values["dropout"])),
            "epochs": int(last["epoch"]),
            "train_loss": float(last["loss"]),
            "val_loss": float(last["val_loss"]),
            "train_accuracy": float(last["accuracy"]),
            "val_accuracy": float(last["val_accuracy"]),
            "min_val_loss": float(history.loc[best, "val_loss"]),
            "min_val_loss_epoch": int(history.loc[best, "epoch"]),
        }
        if metrics and name in metrics:
            for key in ("val_accuracy", "val_accuracy_low", "val_accuracy_high"):
                if key in metrics[name]:
                    row[f"selection_{key}"] = float(metrics[name][key])
        rows.append(row)
    table = pd.DataFrame(rows).sort_values(["dropout", "weight_decay", "variant"]).reset_index(drop=True)
    table["loss_gap"] = table["val_loss"] - table["train_loss"]
    table["accuracy_gap"] = table["train_accuracy"] - table["val_accuracy"]
    table["val_loss_rise"] = table["val_loss"] - table["min_val_loss"]
    table["is_sweep"] = len(group) > 1
    return table


def _number(value) -> str:
    """A table cell: 4 decimals below 1, 4 significant digits above, "-" where there is none (one seed's std)."""
    return "-" if pd.isna(value) else f"{value:.4g}" if value >= 1 else f"{value:.4f}"


def variants_html(table: pd.DataFrame, selected: str) -> str:
    """The selection table (results/selection/variants.csv) as an HTML page, the selected variant highlighted."""
    table = table.assign(accuracy_interval=[f"{low:.4f} to {high:.4f}" for low, high in
                                            zip(table["val_accuracy_low"], table["val_accuracy_high"])])
    columns = {
        "rank": "rank", "variant": "variant", "n_seeds": "seeds", "val_accuracy": "val accuracy (mean)",
        "accuracy_interval": "interval", "val_accuracy_std": "std over seeds", "val_log_loss": "val log-loss (mean)",
        "verdict": "selected against it", "train_accuracy": "train accuracy (last epoch)", "accuracy_gap": "train - val accuracy",
        "best_epoch": "best epoch", "epochs": "epochs", "parameters": "parameters",
        "training_seconds": "training time (s)", "images_per_second": "images/s",
    }
    shown = table[[c for c in columns if c in table.columns]].copy()
    for column in ("val_accuracy", "val_accuracy_std", "train_accuracy", "accuracy_gap", "best_epoch", "epochs"):
        if column in shown:
            shown[column] = shown[column].map(_number)
    if "val_log_loss" in shown:
        shown["val_log_loss"] = shown["val_log_loss"].map("{:.4f}".format)
    for column in ("training_seconds", "images_per_second"):
        if column in shown:
            shown[column] = shown[column].map("{:,.0f}".format)
    if "parameters" in shown:
        shown["parameters"] = shown["parameters"].map("{:,}".format)
    shown = shown.rename(columns=columns)
    highlight = [i for i, name in enumerate(table["variant"]) if name == selected]
    intervals = ", ".join(sorted(set(table["interval"])))
    note = (f"<p>Selected: <b>{html.escape(selected)}</b> (highlighted); ranked by the mean of the selection metric over "
            f"each variant's seeds. Intervals: {html.escape(intervals)}. \"Selected against it\": the paired bootstrap "
            "verdict on the same validation images (results/selection/comparisons.csv); \"tied\" means the "
            "difference is within noise.</p>")
    table = table_html(shown, right=list(shown.columns[2:]), highlight=highlight)
    return html_page("Variants on the validation split", note + table)


# --- calibration --------------------------------------------------------------------------------

def calibration_table(calibrations: list[dict]) -> pd.DataFrame:
    """One row per training (``calibration.calibrate`` results on the validation split): before and after scaling."""
    rows = []
    for result in calibrations:
        before, after = result["uncalibrated"], result["calibrated"]
        rows.append({
            "variant": result["variant"], "seed": result["seed"], "accuracy": before["accuracy"],
            "mean_confidence": before["mean_confidence"],
            "ece": before["ece"], "mce": before["mce"], "brier": before["brier"], "nll": before["nll"],
            "temperature": result["temperature"], "ece_scaled": after["ece"], "nll_scaled": after["nll"],
            "bins": result["bins"], "images": before["images"],
        })
    return pd.DataFrame(rows).sort_values("ece").reset_index(drop=True)


def calibration_html(table: pd.DataFrame, selected: str) -> str:
    """The calibration table as an HTML page, best calibrated first, the selected variant highlighted."""
    columns = {
        "variant": "variant", "seed": "seed", "accuracy": "val accuracy", "mean_confidence": "mean confidence", "ece": "ECE",
        "mce": "MCE",
        "brier": "Brier", "nll": "NLL", "temperature": "temperature T", "ece_scaled": "ECE after T",
        "nll_scaled": "NLL after T",
    }
    shown = table[list(columns)].copy()
    for column in columns:
        if column not in ("variant", "seed"):
            shown[column] = shown[column].map("{:.4f}".format)
    bins, images = int(table["bins"].iloc[0]), int(table["images"].iloc[0])
    note = (f"<p>Validation split ({images:,} images, with each variant's test-time augmentation). ECE: expected "
            f"calibration error over {bins} equal-width bins of the top-class probability, (k/{bins}, (k+1)/{bins}], "
            f"weighted by their share of images; MCE: the largest gap of a non-empty bin; Brier: mean squared distance "
            f"to the one-hot label; NLL: log-loss. T: the temperature fitted on this split (T &gt; 1: over-confident, "
            f"T &lt; 1: under-confident); the numbers after T are in-sample. Selected: <b>{html.escape(selected)}</b>.</p>")
    highlight = [i for i, name in enumerate(table["variant"]) if name == selected]
    return html_page("Calibration of every variant", note + table_html(shown.rename(columns=columns),
                                                                       right=list(columns.values())[1:], highlight=highlight))


# --- against an earlier study ------------------------------------------------------------------

def comparison_html(comparison: pd.DataFrame, earlier: str, later: str, level: float) -> str:
    """``cifarflow compare``'s table (B = ``later`` against A = ``earlier``) as an HTML page, the rows whose verdict
    is not "tied" highlighted."""
    def points(value: float) -> str:
        return f"{100 * value:+.2f}"

    changed = {True: "changed", False: "same"}
    shown = pd.DataFrame({
        "split": comparison["split"],
        "variant": [r.variant if r.split == "validation" else f"selected: {r.a} → {r.b}" for r in comparison.itertuples()],
        "seeds A / B": [f"{a} / {b}" for a, b in zip(comparison["seeds_a"], comparison["seeds_b"])],
        "accuracy A": comparison["accuracy_a"].map("{:.4f}".format),
        "accuracy B": comparison["accuracy_b"].map("{:.4f}".format),
        "Δ accuracy (points)": comparison["delta_accuracy"].map(points),
        "interval": [f"{points(low)} to {points(high)}" for low, high in
                     zip(comparison["delta_accuracy_low"], comparison["delta_accuracy_high"])],
        "Δ log-loss": comparison["delta_log_loss"].map("{:+.4f}".format),
        "log-loss interval": [f"{low:+.4f} to {high:+.4f}" for low, high in
                              zip(comparison["delta_log_loss_low"], comparison["delta_log_loss_high"])],
        "McNemar p (per seed pair)": comparison["mcnemar_p"],
        "verdict": comparison["verdict"],
        "recipe": ["unknown" if pd.isna(value) else changed[bool(value)] for value in comparison["recipe_changed"]],
        "predictions": [changed[bool(value)] for value in comparison["predictions_changed"]],
    })
    note = (f"<p>B: <b>{html.escape(later)}</b> against A: <b>{html.escape(earlier)}</b>, on the same images. Δ: B − A; "
            f"intervals: {1 - level:.0%} paired bootstrap over the images; the verdict (better, worse or tied) on the "
            "selection metric. \"recipe\": whether the variant's resolved settings differ; \"predictions\": whether its "
            "stored predictions do (\"same\": it was not retrained). Highlighted: a difference beyond the images' noise; with "
            "one seed per study, not beyond the training's own (two runs of the same recipes can differ by a point: "
            "docs/tracking.md).</p>")
    highlight = [i for i, verdict in enumerate(comparison["verdict"]) if verdict != "tied"]
    right = [column for column in shown.columns if column.startswith(("accuracy", "Δ", "interval", "log-loss"))]
    return html_page("Against an earlier study", note + table_html(shown, right=right, highlight=highlight))


# --- pipeline -----------------------------------------------------------------------------------

def _median(data: pd.DataFrame, column: str) -> float:
    return float(pd.to_numeric(data[column], errors="coerce").median()) if column in data else float("nan")


def read_benchmarks(paths: list[str | Path]) -> pd.DataFrame:
    """One row per benchmark file: rule, job, wall seconds, peak memory (MB), CPU seconds.

    Paths follow ``benchmarks/<rule>[/<wildcards>].tsv``: ``benchmarks/train/model1.tsv`` is job ``model1`` of rule
    ``train``; ``benchmarks/normalize.tsv`` is rule ``normalize``. A file with several rows (``repeat``) counts by
    its median.
    """
    rows = []
    for path in paths:
        parts = Path(path).with_suffix("").parts
        if "benchmarks" in parts:
            parts = parts[len(parts) - parts[::-1].index("benchmarks"):]
        data = pd.read_csv(path, sep="\t")
        rows.append({
            "rule": parts[0],
            "job": "/".join(parts[1:]),
            "seconds": _median(data, "s"),
            "max_rss_mb": _median(data, "max_rss"),
            "cpu_seconds": _median(data, "cpu_time"),
            "mean_load": _median(data, "mean_load"),
        })
    return pd.DataFrame(rows, columns=["rule", "job", "seconds", "max_rss_mb", "cpu_seconds", "mean_load"])


# --- HTML ---------------------------------------------------------------------------------------

def table_html(table: pd.DataFrame, right: list[str] = (), highlight: list[int] = ()) -> str:
    right = set(right)
    head = "".join(f'<th class="num">{html.escape(str(c))}</th>' if c in right else f"<th>{html.escape(str(c))}</th>"
                   for c in table.columns)
    rows = []
    for i, (_, row) in enumerate(table.iterrows()):
        cells = "".join(
            f'<td class="num">{html.escape(str(v))}</td>' if c in right else f"<td>{html.escape(str(v))}</td>"
            for c, v in row.items()
        )
        rows.append(f'<tr class="highlight">{cells}</tr>' if i in highlight else f"<tr>{cells}</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def _facts_html(facts: dict) -> str:
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in facts.items())
    return f"<dl>{items}</dl>"
