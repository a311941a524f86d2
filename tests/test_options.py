"""Options that the tiny study leaves at their defaults, run for real: each tie rule, the seed that is exported, and a
CIFAR-100 study through the test evaluation and the export.

The tie rules run again in one copy of the finished tiny study (only selection and what follows it reruns). On the
tiny images both variants classify all 50 validation images, so they are tied on accuracy and the leader is the one
with the lower log-loss."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import TINY_CONFIG, archive_config, copy_of_study, copy_project, edited_config, snakemake

SELECTION = "results/selection/selection.json"
AFTER_SELECTION = [SELECTION, "results/test/metrics.json", "results/export/metadata.json"]
TINY_VARIANTS = yaml.safe_load(TINY_CONFIG.read_text())["variants"]


def load(study, path):
    return json.loads((study / path).read_text())


@pytest.fixture(scope="module")
def tie_rule_study(tiny_study, cifar10_archive, tmp_path_factory):
    """run(name, targets, **config changes): the copy's selection (and what `targets` name) run again with the tiny
    config plus the changes; returns the copy's folder."""
    folder = tmp_path_factory.mktemp("tie_rules")
    study = copy_of_study(tiny_study, folder / "study")

    def run(name, targets=(SELECTION,), **changes):
        (folder / name).mkdir()
        snakemake(study, "--cores", "2", *archive_config(cifar10_archive), "--", *targets,
                  config=edited_config(folder / name, lambda config: config.update(changes)))
        return study

    return run


def tied_table(study) -> pd.DataFrame:
    variants = pd.read_csv(study / "results/selection/variants.csv").set_index("variant")
    assert variants["val_accuracy"].eq(1.0).all(), "the tiny variants no longer classify every validation image"
    assert variants["tied"].all()
    return variants


def test_fewest_parameters_selects_the_smallest_tied_variant(tie_rule_study):
    """A third variant, `three_blocks` (lenet3: its third pooling leaves the dense layer a quarter of lenet2's inputs,
    so 1.67 M parameters against 2.23 M), trains in the copy. Trained longer, it classifies every validation image too,
    and with strong label smoothing it is less confident, so its log-loss keeps it from leading: tied, smallest, not
    the leader, it is what the rule must pick where best_mean would not."""
    three_blocks = {"arch": "lenet3", "train": {"epochs": 8, "label_smoothing": 0.4}}
    study = tie_rule_study("fewest", tie_rule="fewest_parameters",
                           variants=dict(TINY_VARIANTS, three_blocks=three_blocks))
    variants, selection = tied_table(study), load(study, SELECTION)
    assert variants["parameters"].idxmin() == "three_blocks" and variants["parameters"].nunique() == 2
    assert selection["leader"] != "three_blocks", "the smallest variant leads: this run cannot tell the rule apart"
    assert selection["variant"] == "three_blocks" and selection["tie_rule"] == "fewest_parameters"
    assert "fewest parameters among the tied: three_blocks" in selection["rule"]


def test_least_training_time_selects_the_fastest_tied_variant_and_the_test_and_export_follow(tie_rule_study):
    study = tie_rule_study("fastest", AFTER_SELECTION, tie_rule="least_training_time")
    variants, selection = tied_table(study), load(study, SELECTION)
    seconds = pd.read_csv(study / "results/selection/trainings.csv").groupby("variant")["training_seconds"].mean()
    fastest = seconds.idxmin()  # a variant's time is the mean over its seeds
    assert selection["variant"] == fastest and selection["tie_rule"] == "least_training_time"
    assert f"least training time among the tied: {fastest}" in selection["rule"]
    assert variants.loc[fastest, "training_seconds"] == pytest.approx(seconds[fastest], rel=1e-12)
    assert load(study, "results/test/metrics.json")["variant"] == fastest
    assert load(study, "results/export/metadata.json")["variant"] == fastest


def test_best_mean_keeps_the_leader_and_exports_its_best_seed(tie_rule_study):
    """Selected on log-loss, the leader is small_augmented, whose seeds differ in log-loss: the seed exported is the
    one with the lowest, not the first."""
    study = tie_rule_study("log_loss", AFTER_SELECTION, tie_rule="best_mean", selection_metric="val_log_loss")
    selection = load(study, SELECTION)
    assert selection["variant"] == selection["leader"] == tied_table(study)["val_log_loss"].idxmin()
    trainings = pd.read_csv(study / "results/selection/trainings.csv")
    seeds = trainings[trainings["variant"] == selection["variant"]].set_index("seed")["val_log_loss"]
    assert len(seeds) == 2 and seeds.nunique() == 2
    assert selection["exported_seed"] == seeds.idxmin()
    assert selection["export_rule"] == "the seed with the best val_log_loss (ties: the lowest seed)"
    exported = (study / f"results/variants/{selection['variant']}/seed-{selection['exported_seed']}/model.keras").read_bytes()
    assert (study / "results/selection/best_model.keras").read_bytes() == exported
    assert load(study, "results/export/metadata.json")["seed"] == selection["exported_seed"]
    assert load(study, "results/test/metrics.json")["seed"] == selection["exported_seed"]


@pytest.fixture(scope="module")
def cifar100_study(cifar100_archive, tmp_path_factory):
    """A CIFAR-100 study (100 fine classes, the tiny archive's 200 training images, the last 40 for validation), one
    variant and seed, run to its test evaluation and export."""
    folder = tmp_path_factory.mktemp("cifar100")
    study = copy_project(folder / "study")

    def change(config):
        config.update(dataset="cifar100", cifar100_labels="fine", validation_size=40)
        config["variants"] = {"small": config["variants"]["small"]}

    snakemake(study, "--cores", "2", *archive_config(cifar100_archive), "--", *AFTER_SELECTION,
              config=edited_config(folder, change))
    return study


def test_a_cifar100_study_runs_through_the_test_evaluation_and_the_export(cifar100_study):
    classes = load(cifar100_study, "results/data/classes.json")
    assert classes == [f"fine{i:02d}" for i in range(100)]
    predictions = pd.read_csv(cifar100_study / "results/test/predictions.csv")
    assert len(predictions) == 100 and len(predictions.filter(like="p_").columns) == 100
    assert np.allclose(predictions.filter(like="p_").sum(axis=1), 1.0, atol=1e-4)
    confusion = pd.read_csv(cifar100_study / "results/test/confusion_matrix.csv", index_col=0)
    assert confusion.shape == (100, 100) and confusion.to_numpy().sum() == 100
    metrics = load(cifar100_study, "results/test/metrics.json")
    with np.load(cifar100_study / "results/data/test.npz") as test:
        labels = test["labels"]
    predictions = predictions.sort_values("index")
    assert list(predictions["true"]) == [classes[label] for label in labels]  # the test split's own labels, in order
    assert metrics["variant"] == "small" and metrics["n_images"] == 100
    assert metrics["accuracy"] == pytest.approx(predictions["correct"].mean(), abs=1e-12)
    export = load(cifar100_study, "results/export/metadata.json")
    assert export["classes"] == classes and export["input"]["shape"] == [None, 32, 32, 3]
    assert max(export["check"]["max_abs_difference"].values()) <= export["check"]["tolerance"]
