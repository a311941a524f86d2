"""The study's models learn: trained by the package's own entry point (``train_variant``: recipe, input stream,
epoch loop) on a small image set whose class is a colour and a square plus noise, every architecture family scores
far above chance on held-out images, under TensorFlow and under JAX; the same images with labels that say nothing
of them stay near chance (so these tests would notice images and labels coming apart); and every architecture
memorizes one batch of randomly labelled images (model, loss and optimizer can fit anything)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from learning_runs import ARCHITECTURES, CHANCE, HELD_OUT, held_out_accuracy, one_batch_accuracy

LEARNED = 0.9  # the classes are separable at a glance: a model that learns gets (nearly) all of them
# chance plus four standard deviations of the held-out accuracy of a guess: a model without signal stays below
NEAR_CHANCE = CHANCE + 4 * math.sqrt(CHANCE * (1 - CHANCE) / HELD_OUT)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_architecture_learns_under_tensorflow(arch):
    assert held_out_accuracy(arch) >= LEARNED


def test_labels_that_say_nothing_of_the_images_stay_near_chance():
    assert held_out_accuracy("lenet2", shuffled=True) < NEAR_CHANCE


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_every_architecture_overfits_one_batch(arch):
    assert one_batch_accuracy(arch) == 1.0


def test_every_architecture_learns_under_jax():
    """The same trainings in a process of their own: the Keras backend is fixed when Keras is imported."""
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, str(Path(__file__).with_name("learning_runs.py"))], capture_output=True,
                            text=True, env=env, timeout=600)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULTS ")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads(lines[0].removeprefix("RESULTS "))
    assert results["backend"] == "jax"
    assert set(results["held_out"]) == set(ARCHITECTURES) and min(results["held_out"].values()) >= LEARNED, results
    assert results["shuffled"] < NEAR_CHANCE
