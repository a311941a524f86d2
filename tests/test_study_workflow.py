"""The whole study through snakemake on a tiny config: outputs, reruns of only what changed, resume, NaN."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
import yaml

from cifarflow import cli
from cifarflow.train.checkpoints import Checkpoint
from conftest import (SNAKEMAKE, TINY_CONFIG, archive_config, copy_of_study, copy_project, dry_run, edited_config, planned_jobs,
                      snakemake)
from floats import NETWORK_ULPS, approx_float64, assert_float32_close
from recompute import ece


def test_study_outputs(tiny_study):
    selection = json.loads((tiny_study / "results/selection/selection.json").read_text())
    table = pd.read_csv(tiny_study / "results/selection/variants.csv")
    assert set(table["variant"]) == {"small", "small_augmented"}
    assert selection["variant"] == table.iloc[0]["variant"]
    metrics = json.loads((tiny_study / "results/test/metrics.json").read_text())
    assert metrics["variant"] == selection["variant"] and 0 <= metrics["accuracy"] <= 1
    confusion = pd.read_csv(tiny_study / "results/test/confusion_matrix.csv", index_col=0)
    assert list(confusion.columns)[:2] == ["airplane", "automobile"] and confusion.values.sum() == 50
    report = pd.read_csv(tiny_study / "results/test/classification_report.csv", index_col=0)
    assert {"precision", "recall", "f1-score", "support"} <= set(report.columns)
    predictions = pd.read_csv(tiny_study / "results/test/predictions.csv")
    assert len(predictions) == 50
    assert_float32_close(predictions.filter(like="p_").sum(axis=1), np.ones(50), ulps=NETWORK_ULPS)
    training = json.loads((tiny_study / "results/variants/small/seed-0/training.json").read_text())
    assert training["software"]["tensorflow"] and training["settings"]["train"]["epochs"] == 2
    # the whole resolved recipe: what the config left out has the recipe's default, written out
    assert training["recipe"]["train"] | {"momentum": 0.9, "translate_tta": 0, "epochs": 2} == training["recipe"]["train"]
    assert training["recipe"]["augment"] == {"shift": 0, "flip": False, "fill": "nearest"}
    cpu = training["backend"].pop("cpu")
    assert training["backend"] == {"keras_backend": "tensorflow", "threads": 1, "threads_requested": 1, "gpu_share": None,
                                   "device": "CPU", "device_name": None}
    assert cpu["cores"] >= 1 and cpu["isa"].startswith(("AVX-512", "AVX2", "no AVX2")) and cpu["model"]
    log = (tiny_study / "logs/train/small/seed-0.log").read_text()
    assert "threads: 1 (Snakemake gave the job 1;" in log and "no GPU found: training on the CPU" in log
    validation = json.loads((tiny_study / "results/variants/small/seed-0/validation.json").read_text())
    assert validation["parameters"] == 2_233_898 and validation["best_epoch"] in (1, 2)
    history = pd.read_csv(tiny_study / "results/variants/small/seed-0/history.csv")
    assert list(history["epoch"]) == [1, 2]
    assert not (tiny_study / "checkpoints/small/seed-0").exists()  # removed once the model is saved


def test_calibration_outputs(tiny_study):
    selection = json.loads((tiny_study / "results/selection/selection.json").read_text())
    for variant, seed in (("small", 0), ("small_augmented", 0), ("small_augmented", 1)):
        training = tiny_study / f"results/variants/{variant}/seed-{seed}"
        with np.load(training / "val_predictions.npz") as stored:
            labels, probs = stored["labels"], stored["probabilities"]
        validation = json.loads((training / "validation.json").read_text())
        assert probs.shape == (len(labels), 10) and len(labels) == 50
        assert np.mean(probs.argmax(axis=1) == labels) == validation["val_accuracy"]  # the very predictions scored
        calibration = json.loads((training / "calibration.json").read_text())
        assert (calibration["variant"], calibration["seed"], validation["seed"]) == (variant, seed, seed)
        assert calibration["bins"] == 15 and 0.05 <= calibration["temperature"] <= 20
        assert calibration["calibrated"]["nll"] <= calibration["uncalibrated"]["nll"] + 1e-9  # fitted to lower it
        if variant == selection["variant"]:
            assert selection["temperatures"][str(seed)] == calibration["temperature"]
            if seed == selection["exported_seed"]:
                assert selection["temperature"] == calibration["temperature"]
    metrics = json.loads((tiny_study / "results/test/metrics.json").read_text())
    predictions = pd.read_csv(tiny_study / "results/test/predictions.csv")
    # the ECE anyone computes from predictions.csv is the pipeline's (the file holds 6 significant digits)
    for column, key in (("confidence", "calibrated"), ("uncalibrated_confidence", "uncalibrated")):
        assert ece(predictions["correct"].to_numpy(), predictions[column].to_numpy()) == pytest.approx(
            metrics["calibration"][key]["ece"], abs=1e-5)
    assert metrics["log_loss"] == approx_float64(metrics["calibration"]["calibrated"]["nll"])  # one log-loss, one way


def test_robustness_outputs(tiny_study):
    from cifarflow.evaluate.corruptions import corrupt_all_severities

    corruptions = yaml.safe_load(TINY_CONFIG.read_text())["corruptions"]
    with np.load(tiny_study / "results/data/test.npz") as data:
        test_images = data["images"]
    for name in corruptions:
        with np.load(tiny_study / f"results/robustness/corrupted/{name}.npz") as stored:
            images, indices = stored["images"], stored["indices"]
        assert images.shape == (5, 50, 32, 32, 3) and images.dtype == np.uint8 and list(indices) == list(range(50))
        assert (images == corrupt_all_severities(test_images, name, seed=0)).all()  # made the same way again
    table = pd.read_csv(tiny_study / "results/robustness/accuracy.csv")
    assert list(table["corruption"].unique()) == corruptions and sorted(table["severity"].unique()) == [1, 2, 3, 4, 5]
    assert table["accuracy"].between(0, 1).all() and table["ece"].between(0, 1).all() and (table["images"] == 50).all()
    summary = json.loads((tiny_study / "results/robustness/summary.json").read_text())
    metrics = json.loads((tiny_study / "results/test/metrics.json").read_text())
    assert summary["clean_accuracy"] == pytest.approx(metrics["accuracy"])  # all 50 test images, uncorrupted
    assert summary["mean_corruption_accuracy"] == pytest.approx(table["accuracy"].mean())
    assert summary["relative_accuracy"] == pytest.approx(table["accuracy"].mean() / metrics["accuracy"])
    assert summary["weakest"][0] == table.groupby("corruption")["accuracy"].mean().idxmin()


def test_temperature_scaling_can_be_switched_off(tiny_study, cifar10_archive, tmp_path):
    project = tmp_path / "project"
    copy_of_study(tiny_study, project)
    config = edited_config(tmp_path, lambda c: c.update(temperature_scaling=False))
    jobs = dry_run(project, cifar10_archive, config)
    assert "select_best" in jobs and not any(job.startswith(("train", "validate", "calibrate", "corrupt_test")) for job in jobs)
    snakemake(project, "--cores", "2", *archive_config(cifar10_archive), "--", "results/export/metadata.json",
              "results/test/predictions.csv", config=config)
    metadata = json.loads((project / "results/export/metadata.json").read_text())
    assert metadata["temperature"] == 1.0 and not metadata["temperature_in_model"]
    predictions = pd.read_csv(project / "results/test/predictions.csv")
    assert (predictions["confidence"] == predictions["uncalibrated_confidence"]).all()
    scaled = pd.read_csv(tiny_study / "results/test/predictions.csv")
    assert_float32_close(predictions["confidence"], scaled["uncalibrated_confidence"], ulps=NETWORK_ULPS)


def test_finished_run_has_nothing_to_do(own_tiny_study, cifar10_archive):
    result = snakemake(own_tiny_study, "-n", *archive_config(cifar10_archive))
    assert planned_jobs(result) == [], result.stdout


def trained(jobs):
    return [job for job in jobs if job.startswith("train:")]


def test_editing_one_variant_reruns_only_that_variant_and_what_follows(own_tiny_study, cifar10_archive, tmp_path):
    config = edited_config(tmp_path, lambda c: c["variants"]["small"].update(weight_decay=2e-4))
    jobs = dry_run(own_tiny_study, cifar10_archive, config)
    assert trained(jobs) == ["train:variant=small, seed=0"]
    assert {"validate:variant=small, seed=0", "select_best", "evaluate_test"} <= set(jobs)
    assert not any(job.startswith("validate:variant=small_augmented") for job in jobs)
    assert not any(job.startswith(("download", "unpack", "normalize")) for job in jobs)


def test_adding_a_variant_trains_only_the_new_one(own_tiny_study, cifar10_archive, tmp_path):
    config = edited_config(tmp_path, lambda c: c["variants"].update(small_more={"arch": "lenet2", "dropout": False}))
    jobs = dry_run(own_tiny_study, cifar10_archive, config)
    assert trained(jobs) == ["train:variant=small_more, seed=0"]
    assert not any(job.startswith("validate:variant=small,") for job in jobs)


def edit_and_restore(path, snippet="\n# edited\n"):
    """Append to a file for the length of a with-block, then put back its content and time stamp."""
    class Edit:
        def __enter__(self):
            self.text, self.stat = path.read_text(), path.stat()
            path.write_text(self.text + snippet)

        def __exit__(self, *exc):
            path.write_text(self.text)
            os.utime(path, ns=(self.stat.st_atime_ns, self.stat.st_mtime_ns))
    return Edit()


def test_changing_a_stage_reruns_it_and_what_follows(own_tiny_study, cifar10_archive):
    with edit_and_restore(own_tiny_study / "workflow/cifarflow/evaluate/evaluation.py"):
        jobs = dry_run(own_tiny_study, cifar10_archive, TINY_CONFIG)
    assert trained(jobs) == []
    validated = {"validate:variant=small, seed=0", "validate:variant=small_augmented, seed=1"}
    assert validated | {"select_best", "evaluate_test"} <= set(jobs)
    with edit_and_restore(own_tiny_study / "workflow/scripts/evaluate_test.py", "\nprint('edited')\n"):
        jobs = dry_run(own_tiny_study, cifar10_archive, TINY_CONFIG)
    assert "evaluate_test" in jobs and "select_best" not in jobs and trained(jobs) == []
    with edit_and_restore(own_tiny_study / "workflow/cifarflow/train/models.py"):
        jobs = dry_run(own_tiny_study, cifar10_archive, TINY_CONFIG)
    assert trained(jobs) == ["train:variant=small, seed=0", "train:variant=small_augmented, seed=0",
                            "train:variant=small_augmented, seed=1"]
    assert planned_jobs(snakemake(own_tiny_study, "-n", *archive_config(cifar10_archive))) == []


EPOCHS = 6  # long enough to kill a training after its third epoch


def long_config(folder, epochs=EPOCHS, **train):
    def change(config):
        config["variants"] = {"slow": {"arch": "lenet2", "train": {"epochs": epochs, "batch_size": 8, **train}}}
    return edited_config(folder, change)


def test_killed_training_resumes_from_its_last_epoch(tmp_path, cifar10_archive, capsys):
    """A training killed like a power cut: `cifarflow status` shows its last epoch, the rerun trains only the epochs
    after it, the events and live figure cover every epoch once, and the result is the uninterrupted training's."""
    from live_checks import assert_events_match, assert_png

    project = copy_project(tmp_path / "project")
    config = long_config(tmp_path)
    args = ["--cores", "1", *archive_config(cifar10_archive), "--", "results/variants/slow/seed-0/model.keras"]
    snakemake(project, "--cores", "1", *archive_config(cifar10_archive), "--", "normalize", config=config)
    command = [SNAKEMAKE, "-s", str(project / "Snakefile"), "-d", str(project), "--configfile", str(config),
               "--replace-workflow-config", *args]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoint = Checkpoint(project / "checkpoints/slow/seed-0", key="")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if checkpoint.epochs() and checkpoint.epochs()[0].name >= "epoch_0003":
            break
        assert process.poll() is None, "training finished before it could be killed"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # like a power cut: no clean-up runs
    process.wait(timeout=60)
    killed = json.loads((checkpoint.epochs()[0] / "state.json").read_text())
    done = killed["epochs_done"]
    assert 3 <= done < EPOCHS and not (project / "results/variants/slow/seed-0/model.keras").exists()
    figure = project / "logs/train/slow/seed-0.png"
    assert_png(figure)
    status = ["status", "--dir", str(project), "--configfile", str(config), "--replace-workflow-config"]
    assert cli.main(status) == 0
    [row] = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("slow ")]
    assert row[1:5] == ["0", "training", f"{done}/{EPOCHS}", f"{killed['history'][-1]['val_accuracy']:.4f}"]

    snakemake(project, "--unlock", *args, config=config)  # what snakemake asks for after a power cut
    snakemake(project, "--rerun-incomplete", *args, config=config)
    log = (project / "logs/train/slow/seed-0.log").read_text()
    assert f"resuming from the checkpoint after epoch {done} of {EPOCHS}" in log
    history = pd.read_csv(project / "results/variants/slow/seed-0/history.csv")
    assert list(history["epoch"]) == list(range(1, EPOCHS + 1))
    # the epochs done before the kill were not trained again: their records are the killed run's own
    assert list(history["seconds"][:done]) == pytest.approx([row["seconds"] for row in killed["history"]])
    trained_again = [k for k in range(1, done + 1) if f"epoch {k}/{EPOCHS}:" in log]  # the rerun's log
    assert f"epoch {done + 1}/{EPOCHS}:" in log and trained_again == []
    # one event per epoch (the kill may have come between a checkpoint and its events), the figure redrawn
    assert_events_match(project / "logs/tensorboard/slow/seed-0", history.to_dict("records"))
    assert_png(figure)
    assert cli.main(status) == 0
    assert capsys.readouterr().out.splitlines()[2].split()[:4] == ["slow", "0", "done", f"{EPOCHS}/{EPOCHS}"]

    # the same training never interrupted, on this machine: the same result, epoch by epoch
    uninterrupted = copy_project(tmp_path / "uninterrupted")
    snakemake(uninterrupted, *args, config=config)
    metrics = ["loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"]
    expected = pd.read_csv(uninterrupted / "results/variants/slow/seed-0/history.csv")
    assert history[metrics].equals(expected[metrics])


def test_diverging_training_fails_with_a_clear_message(tmp_path, cifar10_archive):
    project = copy_project(tmp_path / "project")
    config = long_config(tmp_path, epochs=1, optimizer="sgd", lr=1.0e12)
    result = snakemake(project, "--cores", "1", *archive_config(cifar10_archive), "--",
                       "results/variants/slow/seed-0/model.keras", config=config, check=False)
    assert result.returncode != 0
    assert "ERROR: training loss became" in result.stderr and "lower the learning rate" in result.stderr
    assert not (project / "results/variants/slow/seed-0/model.keras").exists()
