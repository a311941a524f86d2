"""Seeds and uncertainty: intervals over seeds, paired comparisons on the same images, selection that knows about ties.
Constructed predictions whose answers are known, checked against scipy and statsmodels."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from cifarflow.evaluate.evaluation import accuracy_and_log_loss
from cifarflow.select.statistics import (Runs, bootstrap_weights, compare, compare_all, mcnemar_table, select_with_ties,
                                         summarize)
from cifarflow.select.selection import seed_runs
from cifarflow.fileio import image_digest
from conftest import REPO
from floats import EPS64, approx_float64

CLASSES = 10


def probabilities_for(labels: np.ndarray, correct: np.ndarray, confidence=0.6) -> np.ndarray:
    """(n, classes) probabilities whose top class is the label where ``correct``, the next class otherwise; the top
    class gets ``confidence`` (a number or one per image), the others share the rest."""
    confidence = np.broadcast_to(np.asarray(confidence, dtype=np.float64), labels.shape)
    probs = np.repeat(((1 - confidence) / (CLASSES - 1))[:, None], CLASSES, axis=1)
    top = np.where(correct, labels, (labels + 1) % CLASSES)
    probs[np.arange(len(labels)), top] = confidence
    return probs


def runs_of(variant: str, labels: np.ndarray, correct_per_seed, seeds=None, parameters=1000, training_seconds=10.0,
            confidence=0.6) -> Runs:
    correct_per_seed = np.atleast_2d(correct_per_seed)
    seeds = tuple(range(len(correct_per_seed))) if seeds is None else tuple(seeds)
    probabilities = np.stack([probabilities_for(labels, correct, confidence) for correct in correct_per_seed])
    return Runs(variant, seeds, labels, probabilities, parameters, training_seconds)


def shuffled_outcomes(counts: dict[tuple[bool, bool], int], rng) -> tuple[np.ndarray, np.ndarray]:
    """(a correct, b correct) per image, ``counts`` images of each combination, in random order."""
    pairs = np.array([outcome for outcome, count in counts.items() for _ in range(count)])
    pairs = pairs[rng.permutation(len(pairs))]
    return pairs[:, 0], pairs[:, 1]


def test_mcnemar_counts_the_discordant_images_and_gives_the_exact_p_value():
    rng = np.random.default_rng(1)
    a, b = shuffled_outcomes({(True, True): 50, (True, False): 7, (False, True): 2, (False, False): 41}, rng)
    labels = rng.integers(0, CLASSES, size=len(a))
    run_a, run_b = runs_of("a", labels, a), runs_of("b", labels, b)
    table = mcnemar_table(run_a.correct[0], run_b.correct[0])
    np.testing.assert_array_equal(table, [[50, 7], [2, 41]])
    row = compare(run_a, run_b, bootstrap_weights(len(labels), 200, 0), 0.05, "val_accuracy")
    exact = stats.binomtest(2, 9, 0.5).pvalue  # independent of statsmodels
    assert mcnemar(table, exact=True).pvalue == approx_float64(exact)
    assert row["mcnemar_p"] == f"{exact:.4g}" and row["seed_pairs"] == "0-0"
    assert row["mcnemar_p_max"] == approx_float64(exact)


def test_mcnemar_pairs_equal_seeds_first_then_the_rest_in_order():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, CLASSES, size=300)
    a_correct, b_correct = rng.random((3, 300)) < 0.7, rng.random((2, 300)) < 0.5
    run_a = runs_of("a", labels, a_correct, seeds=(0, 1, 2))
    run_b = runs_of("b", labels, b_correct, seeds=(2, 5))
    row = compare(run_a, run_b, bootstrap_weights(300, 200, 0), 0.05, "val_accuracy")
    assert row["seed_pairs"] == "2-2 0-5"
    expected = [mcnemar(mcnemar_table(a_correct[i], b_correct[j]), exact=True).pvalue for i, j in ((2, 0), (0, 1))]
    assert row["mcnemar_p"] == " ".join(f"{p:.4g}" for p in expected)
    assert row["mcnemar_p_max"] == approx_float64(max(expected))


def test_bootstrap_weights_are_multinomial_draws_of_every_image():
    weights = bootstrap_weights(50, 3000, seed=7)
    counts = weights * 50
    assert weights.shape == (3000, 50)
    np.testing.assert_allclose(counts, np.round(counts), rtol=0, atol=1e-9)
    np.testing.assert_allclose(counts.sum(axis=1), 50, rtol=0, atol=1e-9)
    assert abs(counts.mean() - 1) < 1e-12
    assert counts.var() == pytest.approx(1 - 1 / 50, abs=0.03)  # binomial(50, 1/50) per image
    np.testing.assert_array_equal(weights, bootstrap_weights(50, 3000, seed=7))
    assert not np.array_equal(weights, bootstrap_weights(50, 3000, seed=8))


def test_paired_bootstrap_interval_covers_the_true_difference_at_its_level():
    """300 synthetic studies drawn from one known population: the 95 % intervals of Δaccuracy and Δlog-loss contain
    the population's Δ in a share that a binomial(300, 0.95) count allows."""
    joint = {(True, True): 0.55, (True, False): 0.15, (False, True): 0.05, (False, False): 0.25}
    confidences = np.array([0.5, 0.9])  # the top class's probability, drawn per image
    loss_correct = np.mean(-np.log(confidences))
    loss_wrong = np.mean(-np.log((1 - confidences) / (CLASSES - 1)))
    true_delta_accuracy = 0.7 - 0.6
    true_delta_log_loss = true_delta_accuracy * (loss_correct - loss_wrong)
    rng = np.random.default_rng(3)
    outcomes = np.array(list(joint))
    covered = {"accuracy": 0, "log_loss": 0}
    studies, images = 300, 400
    for study in range(studies):
        drawn = outcomes[rng.choice(len(outcomes), size=images, p=list(joint.values()))]
        labels = rng.integers(0, CLASSES, size=images)
        confidence_a, confidence_b = rng.choice(confidences, size=(2, images))
        a = runs_of("a", labels, drawn[:, 0], confidence=confidence_a)
        b = runs_of("b", labels, drawn[:, 1], confidence=confidence_b)
        row = compare(a, b, bootstrap_weights(images, 1000, seed=study), 0.05, "val_accuracy")
        covered["accuracy"] += row["delta_accuracy_low"] <= true_delta_accuracy <= row["delta_accuracy_high"]
        covered["log_loss"] += row["delta_log_loss_low"] <= true_delta_log_loss <= row["delta_log_loss_high"]
    for name, count in covered.items():
        assert stats.binomtest(count, studies, 0.95).pvalue > 0.01, f"{name}: {count} of {studies} intervals cover"


@pytest.mark.parametrize("metric", ["val_accuracy", "val_log_loss"])
def test_a_clear_difference_is_better_one_way_and_worse_the_other(metric):
    rng = np.random.default_rng(4)
    labels = rng.integers(0, CLASSES, size=1000)
    good = runs_of("good", labels, rng.random((3, 1000)) < 0.85)
    poor = runs_of("poor", labels, rng.random((3, 1000)) < 0.6)
    weights = bootstrap_weights(1000, 2000, 0)
    forward, backward = compare(good, poor, weights, 0.05, metric), compare(poor, good, weights, 0.05, metric)
    assert (forward["verdict"], backward["verdict"]) == ("better", "worse")
    assert (forward["p_better"], backward["p_better"]) == (1.0, 0.0)
    assert forward["delta_accuracy"] == approx_float64(good.correct.mean() - poor.correct.mean())
    assert forward["delta_accuracy_low"] > 0 and forward["delta_log_loss_high"] < 0
    for name in ("accuracy", "log_loss"):
        assert backward[f"delta_{name}"] == approx_float64(-forward[f"delta_{name}"])
        assert backward[f"delta_{name}_low"] == approx_float64(-forward[f"delta_{name}_high"])
        assert backward[f"delta_{name}_high"] == approx_float64(-forward[f"delta_{name}_low"])


def test_a_few_discordant_images_are_a_tie():
    rng = np.random.default_rng(5)
    a, b = shuffled_outcomes({(True, True): 700, (True, False): 4, (False, True): 3, (False, False): 293}, rng)
    labels = rng.integers(0, CLASSES, size=len(a))
    row = compare(runs_of("a", labels, a), runs_of("b", labels, b), bootstrap_weights(len(a), 2000, 0), 0.05, "val_accuracy")
    assert row["verdict"] == "tied"
    assert row["delta_accuracy"] == approx_float64(0.001)
    assert row["delta_accuracy_low"] < 0 < row["delta_accuracy_high"]
    assert 0 < row["p_better"] < 1
    assert row["mcnemar_p_max"] == approx_float64(stats.binomtest(3, 7, 0.5).pvalue)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_per_image_log_loss_averages_to_the_evaluation_log_loss(dtype):
    """One log-loss in the study: -log p(true class), in float64, floored at the smallest normal float32 (a
    probability of exactly zero costs 87.3, no clip at 1e-7 or below 1)."""
    rng = np.random.default_rng(6)
    labels = rng.integers(0, CLASSES, size=500)
    logits = rng.normal(scale=8, size=(2, 500, CLASSES))  # confident: many probabilities far below 1e-7
    probabilities = np.exp(logits - logits.max(axis=2, keepdims=True))
    probabilities[0, :5] = np.eye(CLASSES)[labels[:5]]  # exactly one on the true class
    probabilities[0, 5:10] = np.eye(CLASSES)[(labels[5:10] + 1) % CLASSES]  # exactly zero on it
    probabilities = (probabilities / probabilities.sum(axis=2, keepdims=True)).astype(dtype)
    runs = Runs("v", (0, 1), labels, probabilities, 1, 1.0)
    for seed in range(2):
        accuracy, loss = accuracy_and_log_loss(labels, probabilities[seed])
        true_class = probabilities[seed, np.arange(500), labels].astype(np.float64)
        expected = -np.log(np.maximum(true_class, np.finfo(np.float32).tiny))
        assert runs.correct[seed].mean() == accuracy
        assert runs.log_loss.dtype == np.float64
        np.testing.assert_allclose(runs.log_loss[seed], expected, rtol=4 * EPS64, atol=0)
        assert loss == approx_float64(expected.mean()) and runs.log_loss[seed].mean() == approx_float64(loss)
    assert runs.log_loss[0, 5:10] == approx_float64(np.full(5, -np.log(float(np.finfo(np.float32).tiny))))


def test_the_interval_over_seeds_is_students_t():
    labels = np.zeros(10, dtype=int)
    correct = np.array([np.arange(10) < k for k in (5, 6, 8)])  # accuracies 0.5, 0.6, 0.8
    confidence = np.linspace(0.3, 0.95, 10)
    runs = runs_of("v", labels, correct, seeds=(0, 1, 2), parameters=123, training_seconds=4.5, confidence=confidence)
    row = summarize(runs, bootstrap_weights(10, 100, 0), 0.05)
    per_seed = {"val_accuracy": [0.5, 0.6, 0.8],
                "val_log_loss": [accuracy_and_log_loss(labels, runs.probabilities[s])[1] for s in range(3)]}
    for name, values in per_seed.items():
        mean, std = np.mean(values), np.std(values, ddof=1)
        low, high = stats.t.interval(0.95, df=2, loc=mean, scale=std / np.sqrt(3))
        assert row[name] == approx_float64(mean) and row[f"{name}_std"] == approx_float64(std)
        assert row[f"{name}_low"] == approx_float64(low) and row[f"{name}_high"] == approx_float64(high)
    assert (row["variant"], row["seeds"], row["n_seeds"], row["interval"]) == ("v", "0 1 2", 3, "t over seeds")
    assert (row["parameters"], row["training_seconds"]) == (123, 4.5)


def test_one_seed_is_summarized_by_the_bootstrap_over_images():
    rng = np.random.default_rng(8)
    labels = rng.integers(0, CLASSES, size=2000)
    runs = runs_of("v", labels, np.arange(2000) < 1400, seeds=(3,))  # accuracy 0.7
    row = summarize(runs, bootstrap_weights(2000, 2000, 0), 0.05)
    assert (row["interval"], row["seeds"], row["n_seeds"]) == ("bootstrap over images", "3", 1)
    assert np.isnan(row["val_accuracy_std"]) and np.isnan(row["val_log_loss_std"])
    half_width = stats.norm.ppf(0.975) * np.sqrt(0.7 * 0.3 / 2000)  # the normal approximation of a proportion
    assert row["val_accuracy_low"] == pytest.approx(0.7 - half_width, abs=0.003)
    assert row["val_accuracy_high"] == pytest.approx(0.7 + half_width, abs=0.003)
    assert row["val_log_loss_low"] < row["val_log_loss"] < row["val_log_loss_high"]


def tie_study() -> dict[str, Runs]:
    """lead is best; small (fewest parameters) and fast (least training time) trail it by a few images, which is a tie
    on 2,000 images; weak is clearly worse. Three identical seeds each."""
    rng = np.random.default_rng(9)
    labels = rng.integers(0, CLASSES, size=2000)
    lead = rng.permutation(2000) < 1600
    right, wrong = np.flatnonzero(lead), np.flatnonzero(~lead)

    def trailing(down: int, up: int) -> np.ndarray:
        correct = lead.copy()
        correct[right[:down]], correct[wrong[:up]] = False, True
        return np.tile(correct, (3, 1))

    return {
        "lead": runs_of("lead", labels, np.tile(lead, (3, 1)), parameters=3_000_000, training_seconds=300.0),
        "small": runs_of("small", labels, trailing(15, 10), parameters=500_000, training_seconds=250.0),
        "fast": runs_of("fast", labels, trailing(16, 10), parameters=1_000_000, training_seconds=100.0),
        "weak": runs_of("weak", labels, np.tile(rng.permutation(2000) < 1200, (3, 1)), parameters=100, training_seconds=1.0),
    }


@pytest.mark.parametrize("tie_rule, selected, how", [
    ("best_mean", "lead", "kept the best mean"),
    ("fewest_parameters", "small", "fewest parameters among the tied"),
    ("least_training_time", "fast", "least training time among the tied"),
])
def test_each_tie_rule_picks_among_the_variants_tied_with_the_leader(tie_rule, selected, how):
    summary, pairs = compare_all(tie_study(), level=0.05, resamples=2000, seed=0, metric="val_accuracy")
    ranked, selection = select_with_ties(summary, pairs, "val_accuracy", tie_rule)
    assert list(ranked["variant"]) == ["lead", "small", "fast", "weak"]
    assert list(ranked["rank"]) == [1, 2, 3, 4]
    assert list(ranked["tied"]) == [True, True, True, False]
    verdicts = dict(zip(ranked["variant"], ranked["verdict"]))
    assert verdicts[selected] == "selected" and verdicts["weak"] == "better"
    assert all(verdicts[other] == "tied" for other in ("lead", "small", "fast") if other != selected)
    assert selection["variant"] == selected and selection["leader"] == "lead"
    assert selection["tied"] == ["small", "fast"] and selection["level"] == 0.05
    assert selection["rule"].startswith("best mean val_accuracy: lead (0.8000); tied with small, fast at level 0.05")
    assert how in selection["rule"]
    chosen = summary.set_index("variant").loc[selected]
    assert (selection["val_accuracy"], selection["val_log_loss"]) == (chosen["val_accuracy"], chosen["val_log_loss"])
    assert selection["n_seeds"] == 3
    runner_up = "small" if selected == "lead" else "lead"
    assert selection["runner_up"] == runner_up
    assert selection["margin"] == approx_float64(abs(chosen["val_accuracy"] - summary.set_index("variant").loc[runner_up,
                                                                                                                 "val_accuracy"]))


def test_without_a_tie_the_leader_is_selected_whatever_the_rule():
    study = tie_study()
    summary, pairs = compare_all({name: study[name] for name in ("weak", "lead")}, 0.05, 2000, 0, "val_log_loss")
    ranked, selection = select_with_ties(summary, pairs, "val_log_loss", "fewest_parameters")
    assert selection["variant"] == "lead" and selection["tied"] == []
    assert list(ranked["verdict"]) == ["selected", "better"] and list(ranked["tied"]) == [True, False]
    assert selection["rule"].endswith("no variant tied with it at level 0.05")
    assert len(pairs) == 2 and set(pairs["verdict"]) == {"better", "worse"}


def test_a_single_variant_is_selected_as_the_only_one():
    summary, pairs = compare_all({"lead": tie_study()["lead"]}, 0.05, 100, 0, "val_accuracy")
    assert pairs.empty and "verdict" in pairs.columns
    ranked, selection = select_with_ties(summary, pairs, "val_accuracy", "least_training_time")
    assert list(ranked["verdict"]) == ["selected"] and selection["variant"] == "lead"
    assert (selection["runner_up"], selection["margin"], selection["level"]) == (None, None, None)
    assert selection["rule"] == "best mean val_accuracy: lead (0.8000); the only variant"


def test_compare_all_compares_every_ordered_pair_as_compare_does():
    study = tie_study()
    summary, pairs = compare_all(study, level=0.1, resamples=500, seed=3, metric="val_accuracy")
    assert list(summary["variant"]) == list(study)
    assert len(pairs) == 12 and not pairs.duplicated(["variant", "other"]).any()
    weights = bootstrap_weights(2000, 500, 3)
    for _, row in pairs.iterrows():
        expected = compare(study[row["variant"]], study[row["other"]], weights, 0.1, "val_accuracy")
        assert row["verdict"] == expected["verdict"] and row["mcnemar_p"] == expected["mcnemar_p"]
        for column in ("delta_accuracy_low", "delta_accuracy_high", "delta_log_loss_low", "delta_log_loss_high"):
            # differences of resampled means (one matrix product) against resampled differences: rounding of sums
            assert row[column] == pytest.approx(expected[column], rel=0, abs=2000 * EPS64 * 4)  # 4 > any log-loss here
    for (_, row), runs in zip(summary.iterrows(), study.values()):
        expected = summarize(runs, weights, 0.1)
        assert list(row.index) == list(expected)
        for column, value in expected.items():
            assert row[column] == (approx_float64(value) if isinstance(value, float) else value), column


def test_unknown_metric_or_tie_rule_and_other_images_are_refused():
    study = tie_study()
    with pytest.raises(ValueError, match="val_accuracy or val_log_loss"):
        compare_all(study, 0.05, 100, 0, "accuracy")
    summary, pairs = compare_all(study, 0.05, 100, 0, "val_accuracy")
    with pytest.raises(ValueError, match="best_mean, fewest_parameters, least_training_time"):
        select_with_ties(summary, pairs, "val_accuracy", "smallest")
    with pytest.raises(ValueError, match="val_accuracy or val_log_loss"):
        select_with_ties(summary, pairs, "top1", "best_mean")
    other = runs_of("other", study["lead"].labels[::-1].copy(), study["lead"].correct)
    with pytest.raises(ValueError, match="not validated on the same images"):
        compare(study["lead"], other, bootstrap_weights(2000, 10, 0), 0.05, "val_accuracy")


def test_predictions_on_other_images_with_the_same_labels_are_refused():
    """Pairing needs the very images, not only their labels: predictions on other images with the same labels (two
    images of a class swapped in a split, another batch of the same classes) are refused, by pairs and by selection."""
    images = np.random.default_rng(3).integers(0, 256, size=(2000, 4, 4, 3), dtype=np.uint8)
    swapped = images.copy()
    swapped[[0, 1]] = images[[1, 0]]
    lead = dataclasses.replace(tie_study()["lead"], images=image_digest(images))
    weights = bootstrap_weights(2000, 10, 0)
    compare(lead, dataclasses.replace(lead, variant="same", images=image_digest(images.copy())), weights, 0.05,
            "val_accuracy")
    other = dataclasses.replace(lead, variant="other", images=image_digest(swapped))
    for compared in (lambda: compare(lead, other, weights, 0.05, "val_accuracy"),
                     lambda: compare_all({"lead": lead, "other": other}, 0.05, 10, 0, "val_accuracy")):
        with pytest.raises(ValueError, match="lead and other were not validated on the same images"):
            compared()
    seeds = [{"variant": "v", "seed": seed, "parameters": 1, "training_seconds": 1.0} for seed in (0, 1)]
    stored = [{"labels": lead.labels, "probabilities": lead.probabilities[0], "images_sha256": np.array(digest)}
              for digest in (lead.images, other.images)]
    with pytest.raises(ValueError, match="v: its seeds were validated on different images"):
        seed_runs(seeds, stored)


def test_the_statistics_import_no_deep_learning_framework():
    code = ("import sys, cifarflow.select.statistics, cifarflow.evaluate.evaluation; "
            "print(sorted({'tensorflow', 'keras'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO / "workflow",
                            timeout=120)
    assert result.stdout.strip() == "[]"


def test_compare_all_refuses_variants_validated_on_other_images():
    labels = np.arange(20) % CLASSES
    runs = {"a": runs_of("a", labels, np.ones(20, bool)), "b": runs_of("b", labels[::-1], np.ones(20, bool))}
    with pytest.raises(ValueError, match="a and b were not validated on the same images"):
        compare_all(runs, 0.05, 100, 0, "val_accuracy")
