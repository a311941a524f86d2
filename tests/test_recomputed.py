"""The tiny study's numbers recomputed from its stored predictions by the short, independent code of recompute.py
(numpy and scipy, never the package's functions): calibration before and after the temperature, every row of the
comparison tables (bootstrap intervals, McNemar), the variants' summaries, the test metrics and every cell of the
robustness table (the selected model's predictions on the corrupted images, made again here with Keras alone)."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from conftest import TINY_CONFIG
from recompute import bootstrap_means, calibration, log_loss, mcnemar_p, scaled

CONFIG = yaml.safe_load(TINY_CONFIG.read_text())
BINS = CONFIG["calibration_bins"]
TRAININGS = [("small", 0), ("small_augmented", 0), ("small_augmented", 1)]
EXACT = 1e-12  # the same arithmetic in another order: float64 rounding only


def load(study, path):
    return json.loads((study / path).read_text())


def validation(study, variant, seed):
    with np.load(study / f"results/variants/{variant}/seed-{seed}/val_predictions.npz") as stored:
        return stored["labels"].astype(np.int64), stored["probabilities"].astype(np.float64)


def assert_metrics(recorded: dict, expected: dict, tolerance: float = EXACT):
    assert {key: recorded[key] for key in expected} == pytest.approx(expected, abs=tolerance)


def test_calibration_before_and_after_the_temperature(tiny_study):
    for variant, seed in TRAININGS:
        labels, probabilities = validation(tiny_study, variant, seed)
        record = load(tiny_study, f"results/variants/{variant}/seed-{seed}/calibration.json")
        temperature = record["temperature"]
        assert_metrics(record["uncalibrated"], calibration(labels, probabilities, BINS))
        assert_metrics(record["calibrated"], calibration(labels, scaled(probabilities, temperature), BINS))
        # the fitted temperature minimizes the validation NLL: no temperature of a fine grid does better
        grid = np.geomspace(0.05, 20, 4001)
        nll = [log_loss(labels, scaled(probabilities, t)).mean() for t in grid]
        assert record["calibrated"]["nll"] <= min(nll) + 1e-9, (variant, seed, temperature, grid[np.argmin(nll)])


def pooled(study, variant: str, seeds: list[int]):
    """Per image, correct and log-loss averaged over the variant's seeds; and (seeds, images) correct."""
    runs = [validation(study, variant, seed) for seed in seeds]
    correct = np.array([probabilities.argmax(axis=1) == labels for labels, probabilities in runs])
    losses = np.array([log_loss(labels, probabilities) for labels, probabilities in runs])
    return np.stack([correct.mean(axis=0), losses.mean(axis=0)], axis=1), correct


def seeds_by_variant() -> dict[str, list[int]]:
    return {variant: sorted({seed for name, seed in TRAININGS if name == variant}) for variant, _ in TRAININGS}


def test_every_comparison_row_is_its_bootstrap_and_mcnemar_again(tiny_study):
    """Same draws as the pipeline (one generator seeded with bootstrap_seed, resamples x images uniform indices, all
    drawn at once since 500 x 50 is far below the package's chunk of 2**19 draws): the intervals agree to rounding."""
    resamples, level, seed = CONFIG["bootstrap_resamples"], CONFIG["significance_level"], CONFIG["bootstrap_seed"]
    values = {variant: pooled(tiny_study, variant, seeds) for variant, seeds in seeds_by_variant().items()}
    means = {variant: bootstrap_means(per_image, resamples, seed) for variant, (per_image, _) in values.items()}
    pairs = pd.read_csv(tiny_study / "results/selection/pairwise.csv", dtype={"seed_pairs": str, "mcnemar_p": str})
    comparisons = pd.read_csv(tiny_study / "results/selection/comparisons.csv", dtype={"seed_pairs": str, "mcnemar_p": str})
    assert len(pairs) == 2 and len(comparisons) == 1
    for _, row in pd.concat([pairs, comparisons]).iterrows():
        a, b = row["variant"], row["other"]
        delta = means[a] - means[b]
        low, high = np.quantile(delta, [level / 2, 1 - level / 2], axis=0)
        expected = {"delta_accuracy": values[a][1].mean() - values[b][1].mean(),
                    "delta_log_loss": values[a][0][:, 1].mean() - values[b][0][:, 1].mean(),
                    "delta_accuracy_low": low[0], "delta_accuracy_high": high[0],
                    "delta_log_loss_low": low[1], "delta_log_loss_high": high[1]}
        assert_metrics(row, expected)
        # a resample whose Δaccuracy is 0 up to rounding may count either way
        assert np.mean(delta[:, 0] > EXACT) <= row["p_better"] <= np.mean(delta[:, 0] > -EXACT)
        assert row["verdict"] == ("better" if low[0] > 0 else "worse" if high[0] < 0 else "tied")
        seeds_a, seeds_b = seeds_by_variant()[a], seeds_by_variant()[b]
        common = [s for s in seeds_a if s in seeds_b]  # equal seeds paired first, then the others in order
        paired = [(s, s) for s in common] + list(zip([s for s in seeds_a if s not in common],
                                                      [s for s in seeds_b if s not in common]))
        assert row["seed_pairs"] == " ".join(f"{s}-{t}" for s, t in paired)
        p_values = [mcnemar_p(values[a][1][seeds_a.index(s)], values[b][1][seeds_b.index(t)]) for s, t in paired]
        assert [float(p) for p in row["mcnemar_p"].split()] == pytest.approx(p_values, rel=5e-4)  # 4 digits written
        assert row["mcnemar_p_max"] == pytest.approx(max(p_values), rel=EXACT)


def test_every_variant_summary_is_its_seeds_again(tiny_study):
    """Mean over seeds, and the interval: Student's t over two or more seeds, the bootstrap over images for one."""
    level = CONFIG["significance_level"]
    table = pd.read_csv(tiny_study / "results/selection/variants.csv").set_index("variant")
    for variant, seeds in seeds_by_variant().items():
        per_image, correct = pooled(tiny_study, variant, seeds)
        runs = [validation(tiny_study, variant, seed) for seed in seeds]
        per_seed = np.array([correct.mean(axis=1), [log_loss(*run).mean() for run in runs]]).T  # (seeds, 2)
        if len(seeds) > 1:
            half = stats.t.ppf(1 - level / 2, len(seeds) - 1) * per_seed.std(axis=0, ddof=1) / np.sqrt(len(seeds))
            low, high = per_seed.mean(axis=0) - half, per_seed.mean(axis=0) + half
        else:
            resampled = bootstrap_means(per_image, CONFIG["bootstrap_resamples"], CONFIG["bootstrap_seed"])
            low, high = np.quantile(resampled, [level / 2, 1 - level / 2], axis=0)
        row = table.loc[variant]
        for column, name in enumerate(["val_accuracy", "val_log_loss"]):
            assert_metrics(row, {name: per_seed[:, column].mean(), f"{name}_low": low[column],
                                 f"{name}_high": high[column]})
        validated = [load(tiny_study, f"results/variants/{variant}/seed-{seed}/validation.json") for seed in seeds]
        for column, name in enumerate(["val_accuracy", "val_log_loss"]):
            assert [record[name] for record in validated] == pytest.approx(list(per_seed[:, column]), abs=EXACT)


def test_test_metrics_are_those_of_the_test_predictions(tiny_study):
    """predictions.csv holds 6 significant digits: the log-loss and Brier score agree to about 1e-6 of their size."""
    metrics = load(tiny_study, "results/test/metrics.json")
    classes = load(tiny_study, "results/data/classes.json")
    predictions = pd.read_csv(tiny_study / "results/test/predictions.csv")
    with np.load(tiny_study / "results/data/test.npz") as data:
        labels = data["labels"].astype(np.int64)
    probabilities = predictions[[f"p_{name}" for name in classes]].to_numpy()
    assert list(predictions["true"]) == [classes[label] for label in labels]
    recomputed = calibration(labels, probabilities, BINS)
    assert metrics["accuracy"] == pytest.approx(recomputed["accuracy"], abs=EXACT)
    assert metrics["log_loss"] == pytest.approx(recomputed["nll"], rel=1e-5, abs=1e-6)
    assert metrics["n_images"] == len(labels)
    assert_metrics(metrics["calibration"]["calibrated"], {key: recomputed[key] for key in ("accuracy", "ece", "brier")},
                   tolerance=1e-5)
    predicted = probabilities.argmax(axis=1)
    confusion = pd.read_csv(tiny_study / "results/test/confusion_matrix.csv", index_col=0)
    expected = np.zeros((len(classes), len(classes)), dtype=int)
    np.add.at(expected, (labels, predicted), 1)
    assert (confusion.to_numpy() == expected).all()
    report = pd.read_csv(tiny_study / "results/test/classification_report.csv", index_col=0)
    for k, name in enumerate(classes):
        hits = np.sum((predicted == k) & (labels == k))
        recall = hits / np.sum(labels == k)
        precision = hits / np.sum(predicted == k) if np.sum(predicted == k) else 0.0
        assert report.loc[name, ["precision", "recall", "support"]].tolist() == pytest.approx(
            [precision, recall, np.sum(labels == k)], abs=EXACT)


def predicted_again(model, images: np.ndarray, tta: dict) -> np.ndarray:
    """The model's probabilities averaged over its test-time views: half the image and a quarter each shifted
    ``translate`` pixels down-right and up-left (edges mirrored), each view split with its mirror image under ``flip``."""
    shift = tta["translate"]
    views = [(1.0, images)]
    if shift:
        padded = np.pad(images, [(0, 0), (shift, shift), (shift, shift), (0, 0)], mode="reflect")
        views = [(0.5, images), (0.25, padded[:, :-2 * shift, :-2 * shift]), (0.25, padded[:, 2 * shift:, 2 * shift:])]
    if tta["flip"]:
        views = [(weight / 2, view) for weight, image in views for view in (image, image[:, :, ::-1])]
    total = sum(weight * model.predict(np.ascontiguousarray(view), batch_size=500, verbose=0).astype(np.float64)
                for weight, view in views)
    return total / total.sum(axis=1, keepdims=True)


def test_every_robustness_cell_is_the_selected_models_accuracy_and_ece_again(tiny_study):
    import keras

    selection = load(tiny_study, "results/selection/selection.json")
    model = keras.models.load_model(tiny_study / "results/selection/best_model.keras", compile=False)
    table = pd.read_csv(tiny_study / "results/robustness/accuracy.csv").set_index(["corruption", "severity"])
    assert list(table.index.unique(0)) == CONFIG["corruptions"]

    def cell(images, labels):
        raw = predicted_again(model, images, selection["tta"])
        calibrated = calibration(labels, scaled(raw, selection["temperature"]), BINS)
        return {"accuracy": calibrated["accuracy"], "ece": calibrated["ece"], "mean_confidence": calibrated["mean_confidence"],
                "ece_uncalibrated": calibration(labels, raw, BINS)["ece"], "images": len(labels)}

    network = 1e-5  # probabilities predicted again by the same model on this machine: float32 rounding at most
    for name in CONFIG["corruptions"]:
        with np.load(tiny_study / f"results/robustness/corrupted/{name}.npz") as stored:
            for severity, images in zip(stored["severities"], stored["images"]):
                assert_metrics(table.loc[(name, int(severity))], cell(images, stored["labels"].astype(np.int64)), network)
    summary = load(tiny_study, "results/robustness/summary.json")
    with np.load(tiny_study / "results/data/test.npz") as data:
        clean = cell(data["images"], data["labels"].astype(np.int64))
    assert summary["clean_accuracy"] == pytest.approx(clean["accuracy"], abs=network)
    assert summary["clean_ece"] == pytest.approx(clean["ece"], abs=network)
    assert summary["mean_corruption_accuracy"] == pytest.approx(table["accuracy"].mean(), abs=EXACT)
