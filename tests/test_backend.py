"""GPU shares, threads and the Keras backend, decided before the framework is imported.

The share tests run real processes that hold real ``flock`` locks on fake GPU ids (this machine has no GPU)."""

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import pytest

from cifarflow import backend
from cifarflow.errors import StageError
from conftest import REPO

WORKFLOW = str(REPO / "workflow")

# A training's set-up as the train script does it, then holding its share until stdin closes (or a kill).
CLAIM = """
import json, os, sys
from pathlib import Path
from cifarflow.backend import backend_record, prepare_training
prepare_training("tensorflow", 1, json.loads(sys.argv[1]), lock_root=Path(sys.argv[2]))
print("SHARE " + json.dumps({"visible": os.environ["CUDA_VISIBLE_DEVICES"], **backend_record()}), flush=True)
sys.stdin.read()
"""


def python(code: str, *args: str, **popen) -> subprocess.Popen:
    """Run ``code`` in a new Python process; its output lines are collected in ``process.lines``."""
    env = dict(os.environ, PYTHONPATH=WORKFLOW, TF_CPP_MIN_LOG_LEVEL="2") | popen.pop("env", {})
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env, **popen)
    process.lines = queue.Queue()
    threading.Thread(target=lambda: [process.lines.put(line) for line in process.stdout] + [process.lines.put(None)],
                     daemon=True).start()
    return process


def claim(gpu: dict, lock_root) -> subprocess.Popen:
    return python(CLAIM, json.dumps(gpu), str(lock_root))


def read_until(process: subprocess.Popen, prefix: str, timeout: float) -> tuple[str | None, list[str]]:
    """The first output line starting with ``prefix`` (None if none came within ``timeout``), and the lines before it."""
    lines = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = process.lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        if line.startswith(prefix):
            return line[len(prefix):].strip(), lines
        lines.append(line)
    return None, lines


def share_of(process: subprocess.Popen, timeout: float = 60) -> dict:
    found, lines = read_until(process, "SHARE ", timeout)
    assert found, "".join(lines)
    return json.loads(found)


def finish(*processes: subprocess.Popen) -> None:
    for process in processes:
        if process.poll() is None:
            process.stdin.close()
            process.wait(timeout=60)


def test_concurrent_trainings_get_distinct_shares(tmp_path):
    workers = [claim({"devices": [0, 1], "shares_per_gpu": 2}, tmp_path) for _ in range(4)]
    try:
        shares = [share_of(worker) for worker in workers]
    finally:
        finish(*workers)
    taken = {(s["gpu_share"]["gpu"], s["gpu_share"]["share"]) for s in shares}
    assert taken == {("0", 1), ("1", 1), ("0", 2), ("1", 2)}
    assert all(s["visible"] == s["gpu_share"]["gpu"] and s["gpu_share"]["shares_per_gpu"] == 2 for s in shares)


def test_a_killed_trainings_share_is_freed(tmp_path):
    gpu = {"devices": ["GPU-a1"], "shares_per_gpu": 1}
    holder = claim(gpu, tmp_path)
    assert share_of(holder)["gpu_share"]["gpu"] == "GPU-a1"
    holder.send_signal(signal.SIGKILL)  # no clean-up runs: the kernel drops the lock
    holder.wait(timeout=30)
    successor = claim(gpu, tmp_path)
    try:
        found, lines = read_until(successor, "SHARE ", 60)
    finally:
        finish(successor)
    assert found and json.loads(found)["gpu_share"]["share"] == 1
    assert not any("waiting" in line for line in lines)


def test_more_trainings_than_shares_wait_for_one(tmp_path):
    gpu = {"devices": [0], "shares_per_gpu": 1}
    holder = claim(gpu, tmp_path)
    share_of(holder)
    waiter = claim(gpu, tmp_path)
    try:
        # however slowly the machine starts it, the waiter says it waits, and takes no share while the holder runs
        found, lines = read_until(waiter, "all 1 GPU shares (1 GPU(s) x 1) are taken: waiting", 60)
        assert found is not None and not any(line.startswith("SHARE ") for line in lines), lines
        found, lines = read_until(waiter, "SHARE ", 2)
        assert found is None and waiter.poll() is None, "a training without a free share neither fails nor starts"
        finish(holder)
        found, lines = read_until(waiter, "SHARE ", 60)
        assert found and json.loads(found)["visible"] == "0"
        assert any("GPU share free after" in line for line in lines)
    finally:
        finish(holder, waiter)


def test_without_gpus_no_share_is_taken(tmp_path):
    worker = claim({"devices": [], "shares_per_gpu": 4}, tmp_path)
    try:
        found, lines = read_until(worker, "SHARE ", 60)
    finally:
        finish(worker)
    assert json.loads(found)["gpu_share"] is None and json.loads(found)["visible"] == ""
    assert any("no GPU found: training on the CPU" in line for line in lines)
    assert not list(tmp_path.rglob("*.lock"))


@pytest.mark.parametrize("visible,expected", [("2,3", ["2", "3"]), ("", []), ("-1", []), ("MIG-1, MIG-2", ["MIG-1", "MIG-2"])])
def test_gpus_made_visible_by_a_scheduler_are_the_ones_shared(monkeypatch, visible, expected):
    monkeypatch.setattr(backend, "_GPUS_BEFORE_HIDING", [])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    backend.hide_gpus()  # what every stage does first
    assert os.environ["CUDA_VISIBLE_DEVICES"] == ""
    assert backend.visible_gpus() == expected
    assert backend.visible_gpus([5, "7"]) == ["5", "7"]  # the config's list wins


def test_shares_are_kept_per_host_and_slurm_allocation(monkeypatch, tmp_path):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    local = backend.lock_folder(tmp_path)
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert backend.lock_folder(tmp_path) == local.with_name(local.name + "-slurm42")


THREADS = """
import os, sys
from pathlib import Path
os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:int(sys.argv[2])])
from cifarflow.backend import configure_backend, prepare_training
used = prepare_training("tensorflow", int(sys.argv[1]), {"devices": [], "shares_per_gpu": 1}, lock_root=Path(sys.argv[3]))
configure_backend(used, 0, True, False)
import tensorflow as tf
print("USED", used, tf.config.threading.get_intra_op_parallelism_threads(), flush=True)
"""


@pytest.mark.parametrize("requested,cpus", [(2, 1), (1, 2), (3, 2)])
def test_a_training_runs_no_more_threads_than_it_was_given_or_may_run_on(tmp_path, requested, cpus):
    cpus = min(cpus, len(os.sched_getaffinity(0)))
    worker = python(THREADS, str(requested), str(cpus), str(tmp_path))
    found, lines = read_until(worker, "USED ", 120)
    finish(worker)
    expected = min(requested, cpus)
    assert found == f"{expected} {expected}", "".join(lines)  # what it says and what TensorFlow runs
    assert any(f"threads: {expected} (Snakemake gave the job {requested}; this process may run on {cpus} CPU(s))" in line
               for line in lines)


UNUSED_GPU = """
import json, sys
from pathlib import Path
from cifarflow.backend import backend_record, configure_backend, prepare_training
prepare_training("tensorflow", 1, json.loads(sys.argv[1]), lock_root=Path(sys.argv[2]))
print("DEVICE", configure_backend(1, 0, True, False), json.dumps(backend_record()), flush=True)
"""


@pytest.mark.parametrize("gpu,env,given", [
    ({"devices": [0], "shares_per_gpu": 2}, {}, "GPU share 0"),
    ({"devices": None, "shares_per_gpu": 1}, {"SLURM_JOB_GPUS": "3", "CUDA_VISIBLE_DEVICES": ""}, "SLURM_JOB_GPUS=3"),
])
def test_a_job_given_a_gpu_that_finds_none_says_so(tmp_path, gpu, env, given):
    """What a SLURM GPU job with TensorFlow's CPU build sees: it trains, and its log and training.json say why on the CPU."""
    worker = python(UNUSED_GPU, json.dumps(gpu), str(tmp_path), env=env)
    found, lines = read_until(worker, "DEVICE ", 120)
    finish(worker)
    assert found, "".join(lines)
    device, record = found.split(" ", 1)
    record = json.loads(record)
    assert device == "CPU" and record["device"] == "CPU"
    assert record["gpu_unused"].startswith(f"this job was given a GPU ({given}) but tensorflow finds none")
    assert any(line.startswith("WARNING: this job was given a GPU") for line in lines)


def test_keras_imported_before_the_backend_is_chosen_is_refused(tmp_path):
    import keras

    other = "jax" if keras.backend.backend() == "tensorflow" else "tensorflow"
    with pytest.raises(StageError, match=f"imported with the {keras.backend.backend()} backend before {other} was chosen"):
        backend.prepare_training(other, 1, {"devices": [], "shares_per_gpu": 1}, lock_root=tmp_path)


def test_savedmodel_export_without_tensorflow_says_what_is_missing():
    code = "from cifarflow.backend import use_tensorflow\nuse_tensorflow('the SavedModel export')"
    result = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.path.insert(0, {WORKFLOW!r})\n{code}"],
                            capture_output=True, text=True, timeout=60)  # -S: no site-packages, so no TensorFlow
    assert result.returncode != 0
    assert "StageError: the SavedModel export needs TensorFlow, which is not installed here" in result.stderr


@pytest.fixture(scope="module")
def jax_study(tmp_path_factory, cifar10_archive):
    """The tiny study trained and evaluated under Keras's JAX backend, its trainings on two fake GPUs."""
    import yaml

    from conftest import TINY_CONFIG, archive_config, copy_project, snakemake

    pytest.importorskip("jax")
    project = copy_project(tmp_path_factory.mktemp("jax_study"))
    config = yaml.safe_load(TINY_CONFIG.read_text()) | {"keras_backend": "jax", "gpu": {"shares_per_gpu": 1, "devices": [0, 1]}}
    config["variants"]["small_augmented"]["seeds"] = [0]  # two trainings, side by side on the two GPUs
    (project / "jax.yaml").write_text(yaml.safe_dump(config))
    targets = ["results/test/metrics.json", "results/export/metadata.json", "results/figures/architectures/small.html"]
    snakemake(project, "--cores", "2", "--resources", "gpu=2", *archive_config(cifar10_archive), "--", *targets,
              config=project / "jax.yaml")
    return project


@pytest.mark.slow
def test_the_keras_backend_setting_reaches_the_training(jax_study):
    for variant in ("small", "small_augmented"):
        training = json.loads((jax_study / f"results/variants/{variant}/seed-0/training.json").read_text())
        assert training["software"]["keras_backend"] == "jax" and training["software"]["jax"]
        assert training["backend"]["keras_backend"] == "jax" and training["backend"]["threads"] == 1
        share = training["backend"]["gpu_share"]
        assert share["gpu"] in ("0", "1") and share["shares_per_gpu"] == 1
        log = (jax_study / f"logs/train/{variant}/seed-0.log").read_text()
        assert f"GPU share: GPU {share['gpu']}, share 1 of 1" in log and "threads: 1 (Snakemake gave the job 1;" in log
        # no GPU here: the job says that the GPU it was given is not used, and records it
        assert training["device"] == "CPU" and "but jax finds none" in training["backend"]["gpu_unused"]
        assert "WARNING: this job was given a GPU (GPU share" in log
    assert "Keras backend: jax, on the CPU" in (jax_study / "logs/validate/small/seed-0.log").read_text()


@pytest.mark.slow
def test_a_jax_trained_model_is_evaluated_and_exported(jax_study):
    validation = json.loads((jax_study / "results/variants/small/seed-0/validation.json").read_text())
    assert 0 <= validation["val_accuracy"] <= 1 and validation["epochs"] == 2
    metrics = json.loads((jax_study / "results/test/metrics.json").read_text())
    assert metrics["variant"] in ("small", "small_augmented")
    export = json.loads((jax_study / "results/export/metadata.json").read_text())
    assert export["software"]["keras_backend"] == "tensorflow"  # the SavedModel needs TensorFlow
    assert max(export["check"]["max_abs_difference"].values()) <= export["check"]["tolerance"]
    assert (jax_study / "results/figures/architectures/small.html").stat().st_size > 0


def test_where_a_training_runs_retrains_nothing_but_its_backend_does(tiny_study, cifar10_archive, tmp_path):
    import yaml

    from conftest import TINY_CONFIG, archive_config, planned_jobs, snakemake

    def planned(**changes):
        path = tmp_path / "edited.yaml"
        path.write_text(yaml.safe_dump(yaml.safe_load(TINY_CONFIG.read_text()) | changes))
        return planned_jobs(snakemake(tiny_study, "-n", *archive_config(cifar10_archive), config=path))

    moved = planned(gpu={"shares_per_gpu": 3, "devices": [0, 1]}, train_gpus=2)
    assert not [job for job in moved if job.startswith(("train", "validate", "evaluate_test", "export_model"))], moved
    switched = planned(keras_backend="jax")
    assert {"train:variant=small, seed=0", "train:variant=small_augmented, seed=1",
            "validate:variant=small, seed=0"} <= set(switched)
