"""Robustness of a model: accuracy and calibration on corrupted images, per corruption and severity.

Functions take labels and probabilities (arrays), never paths or models: a caller predicts, this module scores.
"""

import numpy as np
import pandas as pd

from .calibration import calibration_errors, calibration_metrics
from .corruptions import CORRUPTIONS


def score_corruption(name: str, severity: int, labels: np.ndarray, probs: np.ndarray, raw: np.ndarray,
                     bins: int = 15) -> dict:
    """One row of the robustness table: accuracy and ECE (of the scaled and of the raw probabilities)."""
    metrics = calibration_metrics(labels, probs, bins)
    return {
        "corruption": name,
        "family": CORRUPTIONS[name][1] if name in CORRUPTIONS else "none",
        "severity": int(severity),
        "accuracy": metrics["accuracy"],
        "ece": metrics["ece"],
        "ece_uncalibrated": calibration_errors(labels, raw, bins)[0],
        "mean_confidence": metrics["mean_confidence"],
        "images": metrics["images"],
    }


def robustness_summary(table: pd.DataFrame, clean: dict, weakest: int = 3) -> dict:
    """Mean corruption accuracy (over every corruption and severity), relative to the clean accuracy of the same
    images, the mean per corruption and per severity, and the corruptions where the model is weakest (the lowest
    mean accuracies, only those below the clean accuracy)."""
    per_corruption = table.groupby("corruption", sort=False)["accuracy"].mean()
    per_severity = table.groupby("severity")["accuracy"].mean()
    mean_accuracy = float(table["accuracy"].mean())
    ranked = per_corruption.sort_values()
    return {
        "clean_accuracy": clean["accuracy"],
        "clean_ece": clean["ece"],
        "images": clean["images"],
        "mean_corruption_accuracy": mean_accuracy,
        "relative_accuracy": mean_accuracy / clean["accuracy"] if clean["accuracy"] > 0 else float("nan"),
        "mean_corruption_ece": float(table["ece"].mean()),
        "per_corruption": {name: float(value) for name, value in per_corruption.items()},
        "per_severity": {int(severity): float(value) for severity, value in per_severity.items()},
        "weakest": [name for name in ranked.index[:weakest] if ranked[name] < clean["accuracy"]],
    }
