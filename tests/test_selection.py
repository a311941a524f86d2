"""Selection's protocol: the test split is read only after selection (its statistics: test_statistics.py)."""

import json

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
