"""The tiny study through the SLURM profile, on a real SLURM cluster with job accounting.

Needs a running cluster (tests/slurm/install.sh && tests/slurm/start.sh start a one-node one on this machine);
skips without one (CIFARFLOW_NO_SKIP=1, which CI sets, turns the skip into a failure: tests/skips.py).
SLURM_TEST_PARTITION / SLURM_TEST_ACCOUNT name the partition and account to use (debug / cifarflow, as
start.sh registers them).
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import SNAKEMAKE, TINY_CONFIG, archive_config, copy_project, snakemake

# usefixtures: the cluster check comes before any (expensive) fixture of a test, the local run included.
pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

PARTITION = os.environ.get("SLURM_TEST_PARTITION", "debug")
ACCOUNT = os.environ.get("SLURM_TEST_ACCOUNT", "cifarflow")
# What the SLURM run makes: the study to its test evaluation, a figure and the trainings' MLflow runs, so every kind
# of job runs (SLURM jobs with the default and the training resources, one per (variant, seed), and local rules: the
# figures and tracking, which run where Snakemake runs). The stages after the test evaluation are jobs of the same kinds;
# each SLURM job costs 10-30 s of scheduling and start-up on the test's 2-CPU node.
TARGETS = ["results/test/metrics.json", "results/figures/test/confusion_matrix.png", "results/tracking/trainings.csv"]
# `timeout` sends SIGTERM (Snakemake then cancels its jobs), KILL 30 s later.
RUN_TIMEOUT_S = 900
SACCT_FIELDS = ["JobID", "JobName", "Partition", "Account", "AllocTRES", "State", "ExitCode", "Elapsed", "Comment"]


def run(*command: str, timeout: int = 30) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def cluster_problem() -> str | None:
    """Why the SLURM test cannot run here, or None when a usable cluster answers."""
    for tool in ("sinfo", "sbatch", "sacct", "sacctmgr", "scancel"):
        if shutil.which(tool) is None:
            return f"`{tool}` not found"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed (pip install -r requirements.txt)"
    try:
        sinfo = run("sinfo", "-h", "-p", PARTITION, "-o", "%t")
        if sinfo.returncode != 0:
            return f"`sinfo` failed: {sinfo.stderr.strip()}"
        states = sinfo.stdout.split()
        if not any(state.rstrip("*~#") in ("idle", "mix", "alloc", "comp") for state in states):
            return f"no usable node in partition {PARTITION!r} (states: {states or 'none'})"
        sacct = run("sacct", "-n", "-X", "-j", "1")
        if sacct.returncode != 0:
            return f"`sacct` failed (no job accounting?): {sacct.stderr.strip()}"
    except subprocess.TimeoutExpired as error:
        return f"`{' '.join(error.cmd)}` timed out after {error.timeout} s"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """Checked before anything expensive runs: skip without a cluster."""
    problem = cluster_problem()
    if problem:
        pytest.skip(f"no SLURM cluster: {problem}; start one with tests/slurm/install.sh && tests/slurm/start.sh")


def partition_has_gpus() -> bool:
    return "gpu" in run("sinfo", "-h", "-p", PARTITION, "-o", "%G").stdout


def write_test_profile(workdir: Path) -> Path:
    """profiles/slurm as shipped, pointed at the test cluster's partition and account, with fast status polling."""
    profile = yaml.safe_load((workdir / "profiles" / "slurm" / "config.yaml").read_text())
    for resources in [profile["default-resources"], *profile.get("set-resources", {}).values()]:
        for key, value in {"slurm_partition": PARTITION, "slurm_account": ACCOUNT}.items():
            if key in resources:
                resources[key] = value
    if not partition_has_gpus():
        # A cluster without GPUs (e.g. start.sh with SLURM_TEST_GPUS=0) could never start a GPU job.
        profile.get("set-resources", {}).get("train", {}).pop("gpu", None)
    profile["slurm-init-seconds-before-status-checks"] = 1
    profile["seconds-between-status-checks"] = 1
    path = workdir / "profiles" / "slurm-test"
    path.mkdir()
    (path / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def slurm_study(slurm_cluster, tmp_path_factory, cifar10_archive):
    """The tiny study run once through the SLURM profile, as a user runs it in their checkout:
    `snakemake --profile profiles/slurm` (here its test variant). Returns (workdir, log, plugin's job ids)."""
    workdir = copy_project(tmp_path_factory.mktemp("slurm_study"))
    # The tiny study is this checkout's study. Not `--configfile configs/tiny.yaml --replace-workflow-config`:
    # Snakemake 9.27.1 passes --configfiles but not --replace-workflow-config on to the jobs, which would then
    # see config.yaml's variants merged in (see profiles/README.md).
    shutil.copy(TINY_CONFIG, workdir / "config.yaml")
    profile = write_test_profile(workdir)
    command = ["timeout", "-k", "30", str(RUN_TIMEOUT_S), SNAKEMAKE, "--profile", str(profile.relative_to(workdir)),
               *archive_config(cifar10_archive), "--", *TARGETS]
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env,
                            timeout=RUN_TIMEOUT_S + 60)
    log = result.stdout + result.stderr
    (workdir / "snakemake-slurm.log").write_text(log)
    submitted = {int(job): slurm_id for job, slurm_id in
                 re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", log)}
    if result.returncode != 0:
        if submitted:  # don't leave jobs of a failed or timed-out run behind in the queue
            run("scancel", *submitted.values())
        raise AssertionError(f"snakemake --profile slurm failed ({result.returncode}, 124: timed out after "
                             f"{RUN_TIMEOUT_S} s):\n{log[-10000:]}")
    return workdir, log, submitted


def sacct(job_ids) -> list[dict]:
    result = run("sacct", "-X", "-n", "-P", "-j", ",".join(job_ids), "-o", ",".join(SACCT_FIELDS))
    assert result.returncode == 0, result.stderr
    rows = [dict(zip(SACCT_FIELDS, line.split("|"))) for line in result.stdout.splitlines() if line]
    print(run("sacct", "-X", "-j", ",".join(job_ids),
              "-o", "JobID,JobName%36,Partition,Account,AllocTRES%45,State,ExitCode,Elapsed,Comment%45").stdout)
    return rows


def remote_jobs(log: str) -> dict[int, str]:
    """Snakemake job id -> rule of every job Snakemake ran through the executor (not `localrule`s)."""
    return {int(job): rule for rule, job in re.findall(r"^rule (\w+):\n(?:    .*\n)*?    jobid: (\d+)$", log, re.M)}


def test_jobs_are_submitted_to_and_accounted_by_slurm(slurm_study):
    workdir, log, submitted = slurm_study
    jobs = remote_jobs(log)
    assert jobs, f"no jobs ran:\n{log[-5000:]}"
    assert set(submitted) == set(jobs), "every job of the run (and only those) went through sbatch"
    local = re.findall(r"^localrule (\w+):", log, re.M)
    assert {"plot_confusion_matrix", "track_trainings"} <= set(local), local
    assert not [rule for rule in jobs.values() if rule.startswith(("plot", "track"))], \
        "figures and tracking run where Snakemake runs (one writer on the MLflow store), not submitted"
    rows = sacct(submitted.values())
    by_id = {row["JobID"]: row for row in rows}
    assert set(by_id) == set(submitted.values()), f"sacct knows the plugin's job ids: {sorted(by_id)}"
    for job, slurm_id in submitted.items():
        row = by_id[slurm_id]
        assert (row["State"], row["ExitCode"]) == ("COMPLETED", "0:0"), row
        assert (row["Partition"], row["Account"]) == (PARTITION, ACCOUNT), row
        assert row["Comment"].startswith(f"rule_{jobs[job]}"), row
        if jobs[job] == "train" and partition_has_gpus():
            assert "gres/gpu=1" in row["AllocTRES"], f"a training job gets a GPU: {row}"
    assert len({row["JobName"] for row in rows}) == 1, "all jobs carry the run's id as job name"
    trainings = sorted(f"{p.parent.name}_{p.name.removeprefix('seed-')}"  # the plugin joins the wildcards with _
                       for p in (workdir / "results" / "variants").glob("*/seed-*"))
    trained = sorted(row["Comment"].removeprefix("rule_train_wildcards_") for row in rows
                     if row["Comment"].startswith("rule_train_"))
    assert trained == trainings and len(trainings) == 3, "each (variant, seed) was trained in its own SLURM job"
    slurm_logs = list((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert {p.stem for p in slurm_logs} >= set(submitted.values()), "one SLURM log per job, in the working directory"


def test_the_run_finished(slurm_study, cifar10_archive):
    workdir, log, _ = slurm_study
    assert re.search(r"(\d+) of \1 steps \(100%\) done", log), log[-3000:]
    assert (workdir / "results" / "test" / "metrics.json").is_file()
    dry_run = snakemake(workdir, "-n", *archive_config(cifar10_archive), "--", *TARGETS)
    assert "Nothing to be done" in dry_run.stdout + dry_run.stderr, dry_run.stdout[-3000:]


def test_validation_metrics_equal_a_local_run(slurm_study, tiny_study):
    workdir, _, _ = slurm_study

    def metrics(root: Path) -> dict:
        return {path.parent.relative_to(root).as_posix(): json.loads(path.read_text())
                for path in sorted((root / "results" / "variants").glob("*/seed-*/validation.json"))}

    on_slurm, local = metrics(workdir), metrics(tiny_study)
    assert on_slurm.keys() == local.keys() and on_slurm
    for variant in local:
        for key in ("val_accuracy", "val_log_loss"):
            assert on_slurm[variant][key] == local[variant][key], (variant, key)
