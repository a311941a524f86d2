"""Validation metrics and the test-set evaluation (of each seed and over seeds)."""

import numpy as np
import pandas as pd
from sklearn.metrics import classification_report, confusion_matrix

from .calibration import negative_log_likelihood, scale_probabilities, uses_temperature
from .tta import tta_views


def predict_probabilities(model, images: np.ndarray, tta: dict | None = None, batch_size: int = 500) -> np.ndarray:
    """Class probabilities, averaged over the test-time augmentation views of ``tta`` (see ``tta_views``)."""
    probs = sum(weight * model.predict(view, batch_size=batch_size, verbose=0).astype(np.float64)
                for weight, view in tta_views(images, tta))
    return probs / probs.sum(axis=1, keepdims=True)


def calibrated_probabilities(model, images: np.ndarray, tta: dict | None = None, temperature: float | None = None,
                             batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities as the model gives them, and scaled by ``temperature``): what the exported model outputs."""
    probs = predict_probabilities(model, images, tta, batch_size)
    return probs, scale_probabilities(probs, temperature) if uses_temperature(temperature) else probs


def accuracy_and_log_loss(labels: np.ndarray, probs: np.ndarray) -> tuple[float, float]:
    accuracy = float(np.mean(probs.argmax(axis=1) == labels))
    return accuracy, negative_log_likelihood(labels, probs)


def validation_metrics(variant: str, labels: np.ndarray, probs: np.ndarray, history: pd.DataFrame, training: dict) -> dict:
    """The numbers a variant is judged by: accuracy and log-loss of the saved model, plus its training record."""
    accuracy, loss = accuracy_and_log_loss(labels, probs)
    best = history.loc[history["val_accuracy"].idxmax()]
    last = history.iloc[-1]
    return {
        "variant": variant,
        "val_accuracy": accuracy,
        "val_log_loss": loss,
        "best_epoch": int(best["epoch"]),
        "best_epoch_val_accuracy": float(best["val_accuracy"]),
        "epochs": int(last["epoch"]),
        "train_accuracy": float(last["accuracy"]),
        "train_loss": float(last["loss"]),
        "last_val_loss": float(last["val_loss"]),
        "accuracy_gap": float(last["accuracy"] - last["val_accuracy"]),
        "loss_gap": float(last["val_loss"] - last["loss"]),
        "parameters": training["parameters"],
        "training_seconds": training["training_seconds"],
        "images_per_second": training["images_per_second"],
    }


def seed_spread(seeds: list[dict]) -> dict:
    """Mean and standard deviation over seeds (``seeds``: one dict with accuracy and log_loss per seed); the standard
    deviation is None for a single seed."""
    spread = {"n_seeds": len(seeds), "seeds": [int(record["seed"]) for record in seeds]}
    for key in ("accuracy", "log_loss"):
        values = np.array([record[key] for record in seeds], dtype=np.float64)
        spread[f"{key}_mean"] = float(values.mean())
        spread[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else None

    def plus_minus(key):
        return f" ± {spread[key]:.4f}" if spread[key] is not None else ""

    over = f"mean ± std over {len(seeds)} seeds" if len(seeds) > 1 else "one seed"
    spread["text"] = (f"accuracy {spread['accuracy_mean']:.4f}{plus_minus('accuracy_std')}, log-loss "
                      f"{spread['log_loss_mean']:.4f}{plus_minus('log_loss_std')} ({over})")
    return spread


def test_report(labels: np.ndarray, probs: np.ndarray, class_names: list[str]) -> dict:
    """Accuracy, log-loss, confusion matrix, per-class report and per-image predictions for the test split."""
    predicted = probs.argmax(axis=1)
    accuracy, loss = accuracy_and_log_loss(labels, probs)
    indices = np.arange(len(class_names))
    matrix = pd.DataFrame(confusion_matrix(labels, predicted, labels=indices), index=class_names, columns=class_names)
    matrix.index.name = "true"
    report = classification_report(labels, predicted, labels=indices, target_names=class_names, output_dict=True, zero_division=0)
    report_table = pd.DataFrame(report).T
    report_table.index.name = "class"
    predictions = pd.DataFrame({
        "index": np.arange(len(labels)),
        "true": [class_names[i] for i in labels],
        "predicted": [class_names[i] for i in predicted],
        "correct": predicted == labels,
        "confidence": probs.max(axis=1),
    })
    predictions = pd.concat([predictions, pd.DataFrame(probs, columns=[f"p_{name}" for name in class_names])], axis=1)
    return {
        "metrics": {"accuracy": accuracy, "log_loss": loss, "n_images": int(len(labels))},
        "confusion_matrix": matrix,
        "classification_report": report_table,
        "predictions": predictions,
    }


def most_confused_pairs(matrix: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """The off-diagonal cells of a confusion matrix with the most images."""
    cells = matrix.stack().rename("count").reset_index()
    cells.columns = ["true", "predicted", "count"]
    cells = cells[cells["true"] != cells["predicted"]]
    return cells.sort_values("count", ascending=False).head(top).reset_index(drop=True)
