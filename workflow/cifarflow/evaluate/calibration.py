"""Calibration: are the predicted probabilities honest, and one temperature that makes them more so.

Every function takes arrays (labels N, probabilities N x classes), never paths, so the same code serves one
variant, one seed or one corruption. Binning of the calibration errors: ``bins`` equal-width bins of the top-class
probability (confidence) on (0, 1], bin k holding confidences in (k/bins, (k+1)/bins]; the expected calibration
error (ECE) is the mean of |accuracy - confidence| over the bins weighted by their share of images, the maximum
calibration error (MCE) the largest gap of a non-empty bin (Guo et al. 2017, "On calibration of modern neural
networks").

Temperature scaling divides the log-probabilities by one scalar T and applies the softmax again:
p_T = softmax(log p / T). The models end in a softmax (and test-time augmentation averages probabilities), so
log p stands for the logits: it differs from them by a constant per image, which the softmax ignores. T > 1
softens over-confident probabilities, T < 1 sharpens under-confident ones; the predicted class never changes.
"""

import numpy as np

# log(0) guard, also in the exported model: the smallest normal float32, far below any probability that matters.
PROBABILITY_FLOOR = float(np.finfo(np.float32).tiny)
# Search range of the temperature (on log T); a fit at either end means the probabilities carry almost no signal.
TEMPERATURE_RANGE = (0.05, 20.0)


def log_probabilities(probs: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(probs, dtype=np.float64), PROBABILITY_FLOOR))


def scale_probabilities(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T), row by row, in float64."""
    scaled = log_probabilities(probs) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    weights = np.exp(scaled)
    return weights / weights.sum(axis=1, keepdims=True)


def log_loss_per_image(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """-log p(true class) of each image, in float64, probabilities floored as in ``log_probabilities``: the study's
    one log-loss. ``probs`` is (..., images, classes), e.g. one array per seed in front."""
    probs = np.asarray(probs)
    labels = np.broadcast_to(np.asarray(labels, dtype=np.int64), probs.shape[:-1])
    return -log_probabilities(np.take_along_axis(probs, labels[..., None], axis=-1)[..., 0])


def negative_log_likelihood(labels: np.ndarray, probs: np.ndarray) -> float:
    """The log-loss: mean -log p(true class) (``log_loss_per_image``)."""
    return float(log_loss_per_image(labels, probs).mean())


def brier_score(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean over images of the squared distance between the probability vector and the one-hot label (0 to 2)."""
    probs = np.asarray(probs, dtype=np.float64)
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(probs)), np.asarray(labels, dtype=np.int64)] = 1.0
    return float(((probs - onehot) ** 2).sum(axis=1).mean())


def reliability_bins(labels: np.ndarray, probs: np.ndarray, bins: int = 15) -> dict:
    """Per confidence bin: its edges, image count, mean confidence and accuracy (NaN where empty)."""
    probs = np.asarray(probs, dtype=np.float64)
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # bin k holds (edges[k], edges[k+1]]: the index of the first upper edge >= confidence
    index = np.clip(np.searchsorted(edges[1:], confidence, side="left"), 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, weights=confidence, minlength=bins) / count
        accuracy = np.bincount(index, weights=correct.astype(np.float64), minlength=bins) / count
    return {"edges": edges, "count": count, "confidence": mean_confidence, "accuracy": accuracy}


def calibration_errors(labels: np.ndarray, probs: np.ndarray, bins: int = 15) -> tuple[float, float]:
    """(ECE, MCE) over ``bins`` equal-width confidence bins."""
    table = reliability_bins(labels, probs, bins)
    filled = table["count"] > 0
    gaps = np.abs(table["accuracy"][filled] - table["confidence"][filled])
    weights = table["count"][filled] / table["count"].sum()
    return float((weights * gaps).sum()), float(gaps.max())


def calibration_metrics(labels: np.ndarray, probs: np.ndarray, bins: int = 15) -> dict:
    """Accuracy, mean confidence, ECE, MCE, Brier score and negative log-likelihood of one set of predictions."""
    probs = np.asarray(probs, dtype=np.float64)
    ece, mce = calibration_errors(labels, probs, bins)
    return {
        "accuracy": float(np.mean(probs.argmax(axis=1) == np.asarray(labels))),
        "mean_confidence": float(probs.max(axis=1).mean()),
        "ece": ece,
        "mce": mce,
        "brier": brier_score(labels, probs),
        "nll": negative_log_likelihood(labels, probs),
        "images": int(len(probs)),
    }


def fit_temperature(labels: np.ndarray, probs: np.ndarray) -> float:
    """The temperature that minimizes the negative log-likelihood of ``labels`` (scipy, bounded search on log T)."""
    from scipy.optimize import minimize_scalar
    from scipy.special import log_softmax

    labels = np.asarray(labels, dtype=np.int64)
    logits = log_probabilities(probs)
    rows = np.arange(len(labels))

    def nll(log_temperature: float) -> float:
        return float(-log_softmax(logits / np.exp(log_temperature), axis=1)[rows, labels].mean())

    low, high = np.log(TEMPERATURE_RANGE)
    result = minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-6})
    if not result.success:
        raise RuntimeError(f"temperature fit did not converge: {result.message}")
    return float(np.exp(result.x))


def calibrate(labels: np.ndarray, probs: np.ndarray, bins: int = 15) -> dict:
    """One variant's calibration on the split its temperature is fitted on: the metrics before and after scaling.

    The 'after' numbers are in-sample (the temperature is fitted on these very predictions); only a held-out
    split (the test split) tells how well the temperature carries over.
    """
    temperature = fit_temperature(labels, probs)
    return {
        "temperature": temperature,
        # at an end of the search range: e.g. every prediction right (the log-loss falls as T -> 0)
        "temperature_at_bound": bool(np.isclose(temperature, TEMPERATURE_RANGE, rtol=1e-3).any()),
        "bins": int(bins),
        "uncalibrated": calibration_metrics(labels, probs, bins),
        "calibrated": calibration_metrics(labels, scale_probabilities(probs, temperature), bins),
        "reliability": {"uncalibrated": reliability_record(labels, probs, bins),
                        "calibrated": reliability_record(labels, scale_probabilities(probs, temperature), bins)},
    }


def reliability_record(labels: np.ndarray, probs: np.ndarray, bins: int = 15) -> dict:
    """``reliability_bins`` as JSON-ready lists (empty bins: None)."""
    return {key: [None if np.isnan(value) else float(value) for value in np.asarray(values, dtype=np.float64)]
            for key, values in reliability_bins(labels, probs, bins).items()}


def pooled_reliability(records: list[dict]) -> dict:
    """Several records (``reliability_record``) of the same bins (a variant's seeds) as one: the images of every record in
    each bin, with their accuracy and confidence (each record's bin weighted by its images)."""
    edges = records[0]["edges"]
    if any(record["edges"] != edges for record in records):
        raise ValueError("reliability records with different bins cannot be pooled")
    counts = np.array([record["count"] for record in records], dtype=np.float64)
    total = counts.sum(axis=0)
    pooled = {"edges": list(edges), "count": [float(value) for value in total]}
    for key in ("accuracy", "confidence"):
        values = np.array([[np.nan if v is None else v for v in record[key]] for record in records], dtype=np.float64)
        sums = np.where(counts > 0, values, 0.0) * counts
        pooled[key] = [None if n == 0 else float(value) for value, n in zip(sums.sum(axis=0) / np.maximum(total, 1), total)]
    return pooled


def uses_temperature(temperature: float | None) -> bool:
    return temperature is not None and temperature != 1.0
