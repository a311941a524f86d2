"""The benchmark script runs the pipeline's own training code and prints every figure it promises."""

import json
import os
import subprocess
import sys

from conftest import REPO, TINY_CONFIG


def bench(tmp_path, data, *args):
    out = tmp_path / "bench.json"
    env = dict(os.environ, PYTHONPATH=str(REPO / "workflow"), TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, str(REPO / "workflow/bench/bench.py"), "--config", str(TINY_CONFIG),
                             "--data", str(data), "--threads", "1", "--json", str(out), *args],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, json.loads(out.read_text())


def test_bench_prints_throughput_time_to_accuracy_accuracy_and_memory(tiny_study, tmp_path):
    stdout, report = bench(tmp_path, tiny_study / "results/data", "--variants", "small", "--epochs", "2",
                           "--target", "0.0", "--bare-fit", "1")
    assert stdout.startswith("machine: ") and "cores" in stdout
    assert report["machine"]["cores"] == os.cpu_count()
    bare, trained = report["results"]
    assert bare["variant"] == "small (bare model.fit)" and bare["images_per_second"] > 0
    assert trained["epochs"] == 2 and len(trained["accuracy_curve"]) == 2
    assert 0 <= trained["val_accuracy"] <= 1 and 0 <= trained["test_accuracy"] <= 1 and trained["peak_rss_mb"] > 0
    assert trained["accuracy_curve"][-1] == round(trained["val_accuracy"], 4)  # the curve scores the model as validation does
    reached = trained["at_target"]  # a target of 0 is met by the first epoch: its test score is read then
    assert reached["epoch"] == 1 and 0 < reached["seconds"] < trained["training_seconds"]
    assert round(reached["val_accuracy"], 4) == trained["accuracy_curve"][0]
    assert 0 <= reached["test_accuracy"] <= 1
    assert f"val {trained['val_accuracy']:.4f}  test {trained['test_accuracy']:.4f}" in stdout
    assert f"epoch 1, {reached['seconds']:.1f} s of training, test then {reached['test_accuracy']:.4f}" in stdout


def test_bench_says_when_the_target_is_not_reached(tiny_study, tmp_path):
    stdout, report = bench(tmp_path, tiny_study / "results/data", "--variants", "small", "--epochs", "1", "--target", "1.01")
    (trained,) = report["results"]
    assert trained["at_target"] is None and "not reached" in stdout


def test_bench_times_the_input_pipeline_alone(tiny_study, tmp_path):
    stdout, report = bench(tmp_path, tiny_study / "results/data", "--variants", "small_augmented", "--input-only")
    (row,) = report["results"]
    assert row["variant"] == "small_augmented (input pipeline only)" and row["images_per_second"] > 0
    assert "input pipeline only" in stdout
