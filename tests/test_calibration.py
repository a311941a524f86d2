"""Calibration metrics and temperature scaling on synthetic predictions whose calibration is known by construction."""

import numpy as np
import pytest
from sklearn.metrics import log_loss

from cifarflow.evaluate.calibration import (PROBABILITY_FLOOR, brier_score, calibrate, calibration_errors, calibration_metrics,
                                            fit_temperature, negative_log_likelihood, pooled_reliability, reliability_bins,
                                            reliability_record, scale_probabilities, uses_temperature)

CLASSES = 10


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def sample_labels(rng, probs):
    """One label per row, drawn from that row's probabilities: the probabilities are then calibrated."""
    cumulative = probs.cumsum(axis=1)
    return np.minimum((rng.random((len(probs), 1)) > cumulative).sum(axis=1), probs.shape[1] - 1)


def synthetic(n=50_000, spread=2.0, seed=0):
    """Logits, true probabilities and labels drawn from them."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=spread, size=(n, CLASSES))
    probs = softmax(logits)
    return logits, probs, sample_labels(rng, probs)


def binomial_noise(labels, probs, bins=15):
    """The ECE a calibrated model shows from sampling alone: about sum_b w_b * sqrt(acc_b (1 - acc_b) / n_b)."""
    table = reliability_bins(labels, probs, bins)
    filled = table["count"] > 0
    confidence, count = table["confidence"][filled], table["count"][filled]
    return float((count / count.sum() * np.sqrt(confidence * (1 - confidence) / count)).sum())


def test_ece_is_near_zero_for_calibrated_predictions():
    _, probs, labels = synthetic()
    ece, mce = calibration_errors(labels, probs, bins=15)
    noise = binomial_noise(labels, probs)
    assert ece < 3 * noise, (ece, noise)  # sampling noise only (about 0.003 with 50,000 images)
    assert ece < 0.01 and mce < 0.1


def test_ece_is_large_for_over_confident_predictions():
    logits, probs, labels = synthetic()
    over_confident = softmax(3 * logits)  # the same ranking, far sharper than the labels' true probabilities
    ece, _ = calibration_errors(labels, over_confident, bins=15)
    metrics = calibration_metrics(labels, over_confident)
    assert ece > 0.15 and metrics["mean_confidence"] - metrics["accuracy"] > 0.15
    assert metrics["nll"] > negative_log_likelihood(labels, probs)
    assert metrics["brier"] > brier_score(labels, probs)


@pytest.mark.parametrize("temperature", [0.6, 1.0, 2.5])
def test_temperature_scaling_recovers_a_known_temperature(temperature):
    logits, _, labels = synthetic(n=20_000, seed=1)
    observed = softmax(logits * temperature)  # a model this much too sharp (> 1) or too soft (< 1)
    fitted = fit_temperature(labels, observed)
    assert fitted == pytest.approx(temperature, rel=0.02)
    repaired = scale_probabilities(observed, fitted)
    assert calibration_errors(labels, repaired)[0] < 3 * binomial_noise(labels, repaired)


def test_calibrate_reports_before_and_after():
    logits, _, labels = synthetic(n=20_000, seed=2)
    result = calibrate(labels, softmax(logits * 2.0), bins=15)  # over-confident: the fitted temperature is about 2
    assert result["temperature"] == pytest.approx(2.0, rel=0.02) and result["bins"] == 15
    before, after = result["uncalibrated"], result["calibrated"]
    assert after["ece"] < before["ece"] / 3 and after["nll"] < before["nll"]
    assert after["accuracy"] == before["accuracy"] and before["images"] == 20_000
    reliability = result["reliability"]["uncalibrated"]
    assert len(reliability["edges"]) == 16 and sum(reliability["count"]) == 20_000


def test_scaling_keeps_the_predicted_class_and_sums_to_one():
    logits, probs, _ = synthetic(n=1000, seed=3)
    for temperature in (0.3, 1.0, 4.0):
        scaled = scale_probabilities(probs, temperature)
        np.testing.assert_allclose(scaled.sum(axis=1), 1.0, rtol=1e-12)
        assert (scaled.argmax(axis=1) == probs.argmax(axis=1)).all()
    np.testing.assert_allclose(scale_probabilities(probs, 1.0), probs, rtol=1e-12)
    np.testing.assert_allclose(scale_probabilities(probs, 2.0), softmax(logits / 2.0), rtol=1e-9)
    hard = np.eye(CLASSES)[:3]  # probabilities of exactly 0 and 1: no NaN
    assert np.isfinite(scale_probabilities(hard, 3.0)).all()


def test_bins_edges_and_errors_by_hand():
    # 15 bins: (0, 1/15], (1/15, 2/15], ...; a confidence on an edge belongs to the lower bin
    probs = np.array([[1.0, 0.0], [0.6, 0.4], [0.6, 0.4], [0.9, 0.1]])
    labels = np.array([0, 0, 1, 1])
    table = reliability_bins(labels, probs, bins=15)
    assert table["count"][14] == 1 and table["count"][8] == 2 and table["count"][13] == 1
    assert reliability_bins([0], np.array([[0.5, 0.5]]), bins=15)["count"][7] == 1  # 7/15 < 0.5 <= 8/15
    ece, mce = calibration_errors(labels, probs, bins=15)
    # bins: {1.0: right} gap 0; {0.6, 0.6: one right} gap 0.1; {0.9: wrong} gap 0.9
    assert ece == pytest.approx((0 + 2 * 0.1 + 0.9) / 4, abs=1e-12) and mce == pytest.approx(0.9, abs=1e-12)


def test_brier_and_nll_by_definition():
    labels = np.arange(CLASSES)
    assert brier_score(labels, np.eye(CLASSES)) == 0.0
    uniform = np.full((CLASSES, CLASSES), 1 / CLASSES)
    assert brier_score(labels, uniform) == pytest.approx(1 - 1 / CLASSES, abs=1e-12)
    _, probs, labels = synthetic(n=2000, seed=4)
    assert negative_log_likelihood(labels, probs) == pytest.approx(log_loss(labels, probs, labels=range(CLASSES)), rel=1e-9)
    assert negative_log_likelihood([0], np.array([[0.0, 1.0]])) == pytest.approx(-np.log(PROBABILITY_FLOOR))


def test_seeds_pooled_are_their_images_in_one_record():
    """A variant's seeds in one reliability diagram: the same bins as the record of all their images together,
    an empty bin where every seed's is empty."""
    _, first_probs, first_labels = synthetic(n=3_000, spread=2.0, seed=1)
    _, second_probs, second_labels = synthetic(n=1_000, spread=4.0, seed=2)  # another size, other confidences
    pooled = pooled_reliability([reliability_record(first_labels, first_probs), reliability_record(second_labels, second_probs)])
    together = reliability_record(np.concatenate([first_labels, second_labels]), np.concatenate([first_probs, second_probs]))
    assert pooled["edges"] == together["edges"] and pooled["count"] == together["count"]
    for key in ("accuracy", "confidence"):
        assert [value is None for value in pooled[key]] == [value is None for value in together[key]]
        filled = [(a, b) for a, b in zip(pooled[key], together[key]) if a is not None]
        # float64 sums in another order: equal to a few units in the last place
        assert [a for a, _ in filled] == pytest.approx([b for _, b in filled], rel=1e-12)
    with pytest.raises(ValueError, match="different bins"):
        pooled_reliability([reliability_record(first_labels, first_probs, bins=10), together])


def test_calibrate_bins_every_table_alike_and_reports_the_bound():
    logits, _, labels = synthetic(n=4_000, seed=3)
    probs = softmax(logits * 1.5)
    result = calibrate(labels, probs, bins=7)
    assert set(result) == {"temperature", "temperature_at_bound", "bins", "uncalibrated", "calibrated", "reliability"}
    assert set(result["calibrated"]) == {"accuracy", "mean_confidence", "ece", "mce", "brier", "nll", "images"}
    scaled = scale_probabilities(probs, result["temperature"])
    for name, predicted in (("uncalibrated", probs), ("calibrated", scaled)):
        assert (result[name]["ece"], result[name]["mce"]) == calibration_errors(labels, predicted, 7)
        assert result["reliability"][name] == reliability_record(labels, predicted, 7)
    assert not result["temperature_at_bound"]
    default = calibrate(labels, probs)
    assert default["bins"] == 15 and len(default["reliability"]["calibrated"]["count"]) == 15
    assert default["uncalibrated"]["ece"] == calibration_errors(labels, probs, 15)[0]
    assert calibration_metrics(labels, probs)["ece"] == calibration_errors(labels, probs, 15)[0]
    every_right = calibrate(labels, np.eye(CLASSES)[labels] * 0.1 + 0.09)  # always right: T -> its lower bound
    assert every_right["temperature_at_bound"]


def test_accuracy_and_confidence_are_per_image():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.5, 0.4], [0.3, 0.3, 0.4], [0.9, 0.05, 0.05]])
    metrics = calibration_metrics([0, 2, 2, 1], probs)
    assert metrics["accuracy"] == 0.5 and metrics["mean_confidence"] == pytest.approx((0.7 + 0.5 + 0.4 + 0.9) / 4)
    assert metrics["images"] == 4


def test_float32_predictions_are_scored_in_float64():
    """The validation jobs store float32 probabilities; the metrics are float64 sums of float64 values."""
    _, probs, labels = synthetic(n=2_000, seed=4)
    single = probs.astype(np.float32)
    exact = single.astype(np.float64)
    assert brier_score(labels, single) == pytest.approx(brier_score(labels, exact), rel=1e-15)
    assert negative_log_likelihood(labels, single) == pytest.approx(negative_log_likelihood(labels, exact), rel=1e-15)
    assert scale_probabilities(single, 1.7).dtype == np.float64
    np.testing.assert_array_equal(scale_probabilities(single, 1.7), scale_probabilities(exact, 1.7))
    for key in ("confidence", "accuracy"):
        np.testing.assert_array_equal(reliability_bins(labels, single)[key], reliability_bins(labels, exact)[key])


def test_uncertain_predictions_fall_in_the_first_bin_and_empty_bins_warn_nothing():
    probs = np.full((30, 20), 1 / 20)  # twenty classes: a confidence of 0.05, below the first edge 1/15
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = reliability_bins(np.zeros(30, int), probs)
    assert table["count"][0] == 30 and np.isnan(table["accuracy"][1:]).all()


def test_a_single_record_pools_to_itself_and_a_bin_of_one_image_counts():
    probs = np.array([[0.95, 0.05], [0.55, 0.45], [0.52, 0.48]])
    record = reliability_record([0, 1, 0], probs, bins=4)
    assert record["count"] == [0, 0, 2, 1] and record["accuracy"] == [None, None, 0.5, 1.0]
    assert pooled_reliability([record]) == record
    with pytest.raises(ValueError, match="^reliability records with different bins cannot be pooled$"):
        pooled_reliability([record, reliability_record([0], probs[:1], bins=3)])


@pytest.mark.parametrize("temperature, used", [(None, False), (1.0, False), (2.0, True), (0.5, True)])
def test_a_temperature_is_used_unless_none_or_one(temperature, used):
    assert uses_temperature(temperature) is used


def test_each_row_is_scaled_on_its_own_even_far_below_the_fitted_range():
    """softmax(log p / T) row by row: an uncertain row next to a certain one, at a temperature whose log p / T
    underflows unless each row is shifted by its own maximum."""
    certain, uniform = np.array([1.0, 0.0, 0.0]), np.full(3, 1 / 3)
    scaled = scale_probabilities(np.stack([certain, uniform]), 0.001)
    np.testing.assert_allclose(scaled, np.stack([certain, uniform]), atol=1e-15)
