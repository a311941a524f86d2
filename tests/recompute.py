"""The study's numbers computed again from stored predictions, straight from their definitions with numpy and scipy,
never with the package's functions: what the tests hold the pipeline's files against."""

import numpy as np
from scipy import special, stats

FLOOR = float(np.finfo(np.float32).tiny)  # the log-loss's floor under a probability of zero (docs: one log-loss)


def confidence_bins(correct: np.ndarray, confidence: np.ndarray, bins: int = 15) -> np.ndarray:
    """(share of the images, accuracy, mean confidence) of each non-empty one of ``bins`` equal-width confidence
    bins (k/bins, (k+1)/bins]."""
    edges = np.linspace(0, 1, bins + 1)
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        members = (confidence > low) & (confidence <= high)
        if members.any():
            rows.append((members.mean(), np.mean(correct[members]), np.mean(confidence[members])))
    return np.array(rows)


def ece(correct: np.ndarray, confidence: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: the gap between accuracy and mean confidence of each bin, weighted by its share."""
    share, accuracy, mean_confidence = confidence_bins(correct, confidence, bins).T
    return float((share * np.abs(accuracy - mean_confidence)).sum())


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """-log p(true class) of each image, the probability floored at FLOOR."""
    true_class = np.asarray(probabilities, dtype=np.float64)[np.arange(len(labels)), labels]
    return -np.log(np.maximum(true_class, FLOOR))


def scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature scaling: softmax(log p / T)."""
    return special.softmax(np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), FLOOR)) / temperature, axis=1)


def calibration(labels: np.ndarray, probabilities: np.ndarray, bins: int = 15) -> dict:
    """Accuracy, mean confidence, ECE, MCE, Brier score and NLL of one set of predictions."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence, correct = probabilities.max(axis=1), probabilities.argmax(axis=1) == labels
    _, accuracy, mean_confidence = confidence_bins(correct, confidence, bins).T
    return {"accuracy": float(correct.mean()), "mean_confidence": float(confidence.mean()),
            "ece": ece(correct, confidence, bins), "mce": float(np.abs(accuracy - mean_confidence).max()),
            "brier": float(((probabilities - np.eye(probabilities.shape[1])[labels]) ** 2).sum(axis=1).mean()),
            "nll": float(log_loss(labels, probabilities).mean()), "images": len(labels)}


def mcnemar_p(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """The exact McNemar test: the discordant images, a binomial(b + c, 1/2) two-sided test."""
    only_a, only_b = int(np.sum(correct_a & ~correct_b)), int(np.sum(~correct_a & correct_b))
    return 1.0 if only_a + only_b == 0 else float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def bootstrap_means(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """(resamples, columns): the mean of ``values`` (images x columns) over each resample of the images, drawn as
    ``resamples`` rows of n uniform indices from numpy's default generator seeded with ``seed``."""
    draws = np.random.default_rng(seed).integers(0, len(values), size=(resamples, len(values)))
    return values[draws].mean(axis=1)
