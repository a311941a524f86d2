"""Validation metrics, selection of the best variant, and the test-set evaluation."""

import numpy as np
import pandas as pd
from sklearn.metrics import classification_report, confusion_matrix, log_loss

from .calibration import scale_probabilities, uses_temperature
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
    loss = float(log_loss(labels, np.clip(probs, 1e-7, 1.0), labels=np.arange(probs.shape[1])))
    return accuracy, loss


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


def select_best(metrics: list[dict], metric: str = "val_accuracy") -> tuple[pd.DataFrame, dict]:
    """Rank variants by ``metric`` (higher accuracy / lower loss is better), ties broken by lower validation log-loss."""
    table = pd.DataFrame(metrics)
    if metric == "val_accuracy":
        table = table.sort_values(["val_accuracy", "val_log_loss", "variant"], ascending=[False, True, True])
    elif metric == "val_log_loss":
        table = table.sort_values(["val_log_loss", "val_accuracy", "variant"], ascending=[True, False, True])
    else:
        raise ValueError(f"unknown selection metric {metric!r}; use val_accuracy or val_log_loss")
    table = table.reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    best = table.iloc[0]
    runner_up = table.iloc[1] if len(table) > 1 else None
    selection = {
        "variant": best["variant"],
        "metric": metric,
        "val_accuracy": float(best["val_accuracy"]),
        "val_log_loss": float(best["val_log_loss"]),
        "runner_up": None if runner_up is None else runner_up["variant"],
        "margin": None if runner_up is None else float(abs(best[metric] - runner_up[metric])),
    }
    return table, selection


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
