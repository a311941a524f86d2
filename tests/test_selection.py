"""Selection: the ranking and its tie rules, and the protocol: the test split is read only after selection."""

import json

import pytest

from cifarflow.evaluation import select_best
from conftest import TINY_CONFIG, dag_jobs, dry_run_of_repo


def metrics(name, accuracy, log_loss):
    return {"variant": name, "val_accuracy": accuracy, "val_log_loss": log_loss}


def test_equal_accuracy_goes_to_the_lower_log_loss():
    table, selection = select_best([metrics("a", 0.8, 0.70), metrics("b", 0.8, 0.60), metrics("c", 0.7, 0.1)])
    assert selection["variant"] == "b" and selection["runner_up"] == "a" and selection["margin"] == 0
    assert list(table["variant"]) == ["b", "a", "c"] and list(table["rank"]) == [1, 2, 3]


def test_equal_accuracy_and_log_loss_go_to_the_first_name():
    _, selection = select_best([metrics("zeta", 0.8, 0.6), metrics("alpha", 0.8, 0.6)])
    assert selection["variant"] == "alpha"


def test_by_log_loss_ties_go_to_the_higher_accuracy():
    _, selection = select_best([metrics("a", 0.7, 0.5), metrics("b", 0.8, 0.5), metrics("c", 0.9, 0.6)],
                               metric="val_log_loss")
    assert selection["variant"] == "b" and selection["runner_up"] == "a"


def test_an_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="unknown selection metric 'test_accuracy'"):
        select_best([metrics("a", 0.7, 0.5)], metric="test_accuracy")


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
