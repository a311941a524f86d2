"""Selection's protocol: the test split is read only after selection (its statistics: test_statistics.py); the
selection over seeds from the validation results."""

import json

import numpy as np
import pytest

from cifarflow.select.selection import export_seed, seed_runs, select, trainings_table
from conftest import TINY_CONFIG, dag_jobs, dry_run_of_repo


def ancestors(jobs: list[dict], rule: str) -> list[dict]:
    """Every job whose output the given rule's job needs, directly or not."""
    by_output = {path: job for job in jobs for path in job["output"]}
    todo = [next(job for job in jobs if job["rule"] == rule)]
    seen = []
    while todo:
        job = todo.pop()
        for path in job["input"]:
            parent = by_output.get(path)
            if parent is not None and parent not in seen:
                seen.append(parent)
                todo.append(parent)
    return seen


def test_no_job_that_selection_depends_on_reads_the_test_split(tmp_path):
    jobs = dag_jobs(dry_run_of_repo(tmp_path, "--forceall", "--config", "archive=x.tar.gz", "archive_md5=" + "a" * 32,
                                    configs=(TINY_CONFIG,)))
    before_selection = ancestors(jobs, "select_best")
    assert {"train", "validate", "normalize"} <= {job["rule"] for job in before_selection}
    assert [job["rule"] for job in before_selection if "results/data/test.npz" in job["input"]] == []
    evaluation = next(job for job in jobs if job["rule"] == "evaluate_test")
    assert "results/data/test.npz" in evaluation["input"]
    assert "select_best" in {job["rule"] for job in ancestors(jobs, "evaluate_test")}


def test_the_finished_study_scored_the_test_split_after_selecting(tiny_study):
    selection = tiny_study / "results/selection/selection.json"
    test_metrics = tiny_study / "results/test/metrics.json"
    assert selection.stat().st_mtime <= test_metrics.stat().st_mtime
    assert json.loads(test_metrics.read_text())["variant"] == json.loads(selection.read_text())["variant"]


def stored_predictions(labels: np.ndarray, correct: np.ndarray, images_sha256: str = "the validation images") -> dict:
    """What a validate job stores: the labels, the images' digest and (images, classes) probabilities, 0.9 on the
    predicted class."""
    predicted = np.where(correct, labels, (labels + 1) % 3)
    probabilities = np.full((len(labels), 3), 0.05)
    probabilities[np.arange(len(labels)), predicted] = 0.9
    return {"labels": labels, "images_sha256": np.array(images_sha256), "probabilities": probabilities}


def training(variant: str, seed: int, accuracy: float, log_loss: float, parameters: int, seconds: float) -> dict:
    return {"variant": variant, "seed": seed, "val_accuracy": accuracy, "val_log_loss": log_loss, "parameters": parameters,
            "training_seconds": seconds, "epochs": 2 * seed}


LABELS = np.arange(60) % 3
RIGHT = {"strong": np.arange(60) % 10 != 0, "weak": np.arange(60) % 2 == 0}  # 90 % and 50 % right
# (variant, seed, outcome); given in no order, as the jobs finish
TRAININGS = [("weak", 2, "weak"), ("strong", 3, "strong"), ("strong", 1, "strong"), ("weak", 1, "weak")]


def study(metric="val_accuracy", tie_rule="best_mean") -> dict:
    metrics = [training(variant, seed, RIGHT[outcome].mean() - seed / 100, 1 - seed / 10, 100 if variant == "strong" else 50,
                        10.0 * seed) for variant, seed, outcome in TRAININGS]
    predictions = [stored_predictions(LABELS, RIGHT[outcome]) for _, _, outcome in TRAININGS]
    return select(metrics, predictions, metric, level=0.05, resamples=500, seed=0, tie_rule=tie_rule)


def test_trainings_are_one_row_each_sorted_by_variant_and_seed():
    trainings = study()["trainings"]
    assert list(trainings.columns[:2]) == ["variant", "seed"]
    assert list(zip(trainings["variant"], trainings["seed"])) == [("strong", 1), ("strong", 3), ("weak", 1), ("weak", 2)]
    assert list(trainings.index) == [0, 1, 2, 3]
    assert trainings.loc[1, "val_accuracy"] == pytest.approx(0.9 - 0.03) and trainings.loc[1, "epochs"] == 6


def test_each_variants_seeds_are_stacked_in_seed_order_with_their_mean_time():
    metrics = [training(variant, seed, 0.5, 1.0, 7, 10.0 * seed) for variant, seed, _ in TRAININGS]
    stacked = seed_runs(metrics, [stored_predictions(LABELS, RIGHT[outcome] ^ (seed == 3)) for _, seed, outcome in TRAININGS])
    assert list(stacked) == ["strong", "weak"]
    strong = stacked["strong"]
    assert strong.seeds == (1, 3) and strong.parameters == 7 and strong.training_seconds == pytest.approx(20.0)
    assert np.array_equal(strong.labels, LABELS)
    assert strong.correct.mean(axis=1) == pytest.approx([0.9, 0.1])  # seed 3's outcomes flipped: its row is second
    assert stacked["weak"].seeds == (1, 2)


def test_seeds_validated_on_other_images_are_refused():
    metrics = [training("weak", 1, 0.5, 1.0, 1, 1.0), training("weak", 2, 0.5, 1.0, 1, 1.0)]
    predictions = [stored_predictions(LABELS, RIGHT["weak"]), stored_predictions(LABELS[::-1], RIGHT["weak"])]
    with pytest.raises(ValueError, match="weak: its seeds were validated on different images"):
        seed_runs(metrics, predictions)
    same_labels = [stored_predictions(LABELS, RIGHT["weak"]), stored_predictions(LABELS, RIGHT["weak"], "other images")]
    with pytest.raises(ValueError, match="weak: its seeds were validated on different images"):
        seed_runs(metrics, same_labels)


def test_variants_validated_on_other_images_with_the_same_labels_are_not_compared():
    """The images' digest travels from the stored predictions into the comparison: two variants whose labels agree
    but whose images differ are refused, not paired."""
    metrics = [training("strong", 1, 0.9, 1.0, 1, 1.0), training("weak", 1, 0.5, 1.0, 1, 1.0)]
    predictions = [stored_predictions(LABELS, RIGHT["strong"]), stored_predictions(LABELS, RIGHT["weak"], "other images")]
    assert seed_runs(metrics, predictions)["weak"].images == "other images"
    with pytest.raises(ValueError, match="strong and weak were not validated on the same images|weak and strong were"):
        select(metrics, predictions, "val_accuracy", level=0.05, resamples=50, seed=0, tie_rule="best_mean")


def test_a_study_of_one_variant_selects_it_and_keeps_the_intervals_level():
    """One variant leaves no pair to compare; the selection still names the level its intervals are drawn at (the
    model card and the figures print it)."""
    metrics = [training("weak", seed, 0.5, 1.0, 1, 1.0) for seed in (1, 2)]
    result = select(metrics, [stored_predictions(LABELS, RIGHT["weak"])] * 2, "val_accuracy", level=0.1, resamples=50,
                    seed=0, tie_rule="best_mean")
    assert result["selection"]["variant"] == "weak" and result["selection"]["level"] == 0.1
    assert result["selection"]["rule"].endswith("the only variant") and result["pairs"].empty


@pytest.mark.parametrize("metric, seed", [("val_accuracy", 1), ("val_log_loss", 3)])
def test_the_exported_seed_is_the_best_on_the_metric(metric, seed):
    result = study(metric)
    assert result["selection"]["variant"] == "strong"
    assert result["selection"]["exported_seed"] == seed
    assert result["selection"]["seeds"] == [1, 3]
    assert result["selection"]["export_rule"] == f"the seed with the best {metric} (ties: the lowest seed)"


def test_export_seed_breaks_ties_by_the_lowest_seed_and_reads_only_its_variant():
    trainings = trainings_table([training("a", 5, 0.8, 0.3, 1, 1.0), training("a", 2, 0.8, 0.3, 1, 1.0),
                                 training("a", 9, 0.7, 0.2, 1, 1.0), training("b", 1, 0.99, 0.01, 1, 1.0)])
    assert export_seed(trainings, "a", "val_accuracy") == 2
    assert export_seed(trainings, "a", "val_log_loss") == 9


def test_the_variants_table_adds_the_means_over_seeds_of_the_other_figures():
    result = study()
    variants = result["variants"].set_index("variant")
    assert variants.loc["strong", "epochs"] == pytest.approx(4.0) and variants.loc["weak", "epochs"] == pytest.approx(3.0)
    assert variants.loc["strong", "rank"] == 1 and "seed" not in variants.columns
    assert variants.loc["strong", "val_accuracy"] == pytest.approx(0.9)  # the ranked summary's, from the predictions


def test_the_comparisons_are_the_selected_variants_pairs():
    result = study()
    assert list(result["comparisons"]["variant"]) == ["strong"] and list(result["comparisons"]["other"]) == ["weak"]
    assert list(result["comparisons"].index) == [0]
    assert len(result["pairs"]) == 2 and result["comparisons"].loc[0, "verdict"] == "better"


def test_a_variant_of_one_seed_and_a_selection_that_repeats_itself():
    metrics = [training("solo", 4, 0.5, 1.0, 12, 3.0)]
    assert seed_runs(metrics, [stored_predictions(LABELS, RIGHT["weak"])])["solo"].parameters == 12
    first, again = study(), study()
    assert first["pairs"].equals(again["pairs"])  # the bootstrap's seed is the study's
