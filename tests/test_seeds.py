"""Seeds as an axis of the study: one training per (variant, seed), selection over seeds with paired tests, every
seed of the selected variant on the test split, and a study made before seeds kept by `cifarflow migrate-seeds`."""

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import binomtest

from cifarflow import cli
from cifarflow.config import all_variants, training_settings, variant_seeds
from conftest import TINY_CONFIG, archive_config, dry_run, edited_config, planned_jobs, snakemake

TRAININGS = [("small", 0), ("small_augmented", 0), ("small_augmented", 1)]  # configs/tiny.yaml


def test_a_variant_may_set_its_own_seeds_and_a_seed_is_no_setting_of_the_variant():
    config = yaml.safe_load(TINY_CONFIG.read_text())
    assert variant_seeds(config) == {"small": [0], "small_augmented": [0, 1]}
    settings = all_variants(config)["small_augmented"]
    assert "seeds" not in settings and settings["train"]["seed"] == 0
    assert training_settings(settings, "1")["train"]["seed"] == 1 and settings["train"]["seed"] == 0
    config["seeds"] = [3, 1]
    assert variant_seeds(config) == {"small": [1, 3], "small_augmented": [0, 1]}


def load(study, path):
    return json.loads((study / path).read_text())


def test_selection_over_seeds_and_every_seed_of_the_selected_on_the_test_split(tiny_study):
    selection = load(tiny_study, "results/selection/selection.json")
    variants = pd.read_csv(tiny_study / "results/selection/variants.csv").set_index("variant")
    assert variants.loc["small", "n_seeds"] == 1 and variants.loc["small", "interval"] == "bootstrap over images"
    assert variants.loc["small_augmented", "n_seeds"] == 2 and variants.loc["small_augmented", "interval"] == "t over seeds"
    trainings = pd.read_csv(tiny_study / "results/selection/trainings.csv")
    assert list(zip(trainings["variant"], trainings["seed"])) == TRAININGS
    mean = trainings[trainings["variant"] == "small_augmented"]["val_accuracy"].mean()
    assert variants.loc["small_augmented", "val_accuracy"] == pytest.approx(mean, abs=1e-12)
    for variant, row in variants.iterrows():
        assert row["val_accuracy_low"] <= row["val_accuracy"] <= row["val_accuracy_high"]

    chosen = selection["variant"]
    assert selection["seeds"] == [seed for variant, seed in TRAININGS if variant == chosen]
    assert selection["exported_seed"] in selection["seeds"] and selection["tie_rule"] == "best_mean"
    assert selection["level"] == 0.05 and chosen in selection["rule"]
    models = tiny_study / "results/selection/seed_models"
    assert sorted(path.name for path in models.glob("*.keras")) == [f"seed-{seed}.keras" for seed in selection["seeds"]]
    exported = (models / f"seed-{selection['exported_seed']}.keras").read_bytes()
    assert (tiny_study / "results/selection/best_model.keras").read_bytes() == exported

    test = load(tiny_study, "results/test/metrics.json")
    seeds = pd.read_csv(tiny_study / "results/test/seeds.csv")
    assert list(seeds["seed"]) == selection["seeds"] and test["seed"] == selection["exported_seed"]
    assert test["over_seeds"]["accuracy_mean"] == pytest.approx(seeds["accuracy"].mean(), abs=1e-12)
    assert test["accuracy"] == pytest.approx(seeds.set_index("seed").loc[test["seed"], "accuracy"], abs=1e-12)


def correct(study, variant, seed):
    with np.load(study / f"results/variants/{variant}/seed-{seed}/val_predictions.npz") as stored:
        return stored["probabilities"].argmax(axis=1) == stored["labels"]


def test_comparisons_agree_with_mcnemar_computed_from_the_stored_predictions(tiny_study):
    selection = load(tiny_study, "results/selection/selection.json")
    comparisons = pd.read_csv(tiny_study / "results/selection/comparisons.csv", dtype={"seed_pairs": str, "mcnemar_p": str})
    others = {variant for variant, _ in TRAININGS} - {selection["variant"]}
    assert list(comparisons["variant"]) == [selection["variant"]] and set(comparisons["other"]) == others
    row = comparisons.iloc[0]
    assert row["verdict"] in ("better", "tied", "worse")
    assert row["delta_accuracy_low"] <= row["delta_accuracy"] <= row["delta_accuracy_high"]
    for pair, p_value in zip(row["seed_pairs"].split(), row["mcnemar_p"].split()):
        seed_a, seed_b = map(int, pair.split("-"))
        a, b = correct(tiny_study, row["variant"], seed_a), correct(tiny_study, row["other"], seed_b)
        only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
        expected = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
        assert float(p_value) == pytest.approx(expected, rel=1e-3)  # stored with 4 significant digits
    mean_a = np.mean([correct(tiny_study, row["variant"], s) for v, s in TRAININGS if v == row["variant"]], axis=0)
    mean_b = np.mean([correct(tiny_study, row["other"], s) for v, s in TRAININGS if v == row["other"]], axis=0)
    assert row["delta_accuracy"] == pytest.approx(np.mean(mean_a - mean_b), abs=1e-12)
    pairs = pd.read_csv(tiny_study / "results/selection/pairwise.csv")
    assert len(pairs) == 2  # both orders of the one pair


def test_adding_a_seed_trains_only_that_seed(own_tiny_study, cifar10_archive, tmp_path):
    jobs = dry_run(own_tiny_study, cifar10_archive, edited_config(tmp_path, lambda c: c.update(seeds=[0, 1])))
    assert [job for job in jobs if job.startswith(("train:", "validate:", "calibrate:"))] == [
        "calibrate:variant=small, seed=1", "train:variant=small, seed=1", "validate:variant=small, seed=1"]
    assert "select_best" in jobs


@pytest.mark.parametrize("change", [{"significance_level": 0.2}, {"tie_rule": "fewest_parameters"},
                                    {"bootstrap_resamples": 300}])
def test_a_statistics_setting_retrains_nothing(own_tiny_study, cifar10_archive, tmp_path, change):
    jobs = dry_run(own_tiny_study, cifar10_archive, edited_config(tmp_path, lambda c: c.update(change)))
    assert "select_best" in jobs and "evaluate_test" in jobs
    assert not [job for job in jobs if job.startswith(("train:", "validate:", "calibrate:", "corrupt_test", "normalize"))]


def old_layout(study):
    """The study as it was before seeds: one training per variant, seed 0, in the variant's folder."""
    for variant, seed in TRAININGS:
        folder = study / f"results/variants/{variant}"
        if seed:
            shutil.rmtree(folder / f"seed-{seed}")
            continue
        for path in (folder / f"seed-{seed}").iterdir():
            stat = path.stat()
            if path.suffix == ".json":
                record = json.loads(path.read_text())
                record.pop("seed", None)
                path.write_text(json.dumps(record))
                os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
            path.rename(folder / path.name)
        (folder / f"seed-{seed}").rmdir()
        for kind, suffix in (("train", ".log"), ("train", ".png"), ("validate", ".log"), ("calibrate", ".log")):
            (study / f"logs/{kind}/{variant}/seed-{seed}{suffix}").rename(study / f"logs/{kind}/{variant}{suffix}")
        events = study / f"logs/tensorboard/{variant}"
        shutil.rmtree(events / "seed-1", ignore_errors=True)
        (events / f"seed-{seed}").rename(study / "logs/tensorboard/moving")
        events.rmdir()
        (study / "logs/tensorboard/moving").rename(events)
    for path in ("results/selection/comparisons.csv", "results/selection/pairwise.csv", "results/selection/trainings.csv",
                 "results/test/seeds.csv"):  # outputs that came with seeds
        (study / path).unlink()
    shutil.rmtree(study / "results/selection/seed_models")
    shutil.rmtree(study / ".snakemake/metadata")  # the old study has no records of the new paths


def test_a_study_made_before_seeds_is_refused_then_migrated_without_retraining(own_tiny_study, cifar10_archive, capsys):
    old_layout(own_tiny_study)
    refused = snakemake(own_tiny_study, "-n", *archive_config(cifar10_archive), check=False)
    assert refused.returncode != 0 and "cifarflow migrate-seeds" in refused.stdout + refused.stderr
    assert cli.main(["migrate-seeds", "--dir", str(own_tiny_study)]) == 0
    assert "moved results/variants/small/model.keras -> results/variants/small/seed-0/model.keras" in capsys.readouterr().out
    assert load(own_tiny_study, "results/variants/small/seed-0/validation.json")["seed"] == 0
    assert (own_tiny_study / "logs/tensorboard/small/seed-0").is_dir()
    jobs = planned_jobs(snakemake(own_tiny_study, "-n", *archive_config(cifar10_archive)))
    assert [job for job in jobs if job.startswith("train:")] == ["train:variant=small_augmented, seed=1"]
    assert cli.main(["migrate-seeds", "--dir", str(own_tiny_study)]) == 0  # a second time: nothing to move
    assert "0 file(s) moved" in capsys.readouterr().out
