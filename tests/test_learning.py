"""The study's models learn: trained by the package's own entry point (``train_variant``: recipe, input stream,
epoch loop) on a small image set whose class is a colour and a square plus noise, every architecture family scores
far above chance on held-out images, under TensorFlow and under JAX; the same images with labels that say nothing
of them stay near chance (so these tests would notice images and labels coming apart; the JAX input stream's
pairing: test_pairing.py); and every architecture memorizes one batch of randomly labelled images (model, loss and
optimizer can fit anything)."""

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


@pytest.fixture(scope="module", autouse=True)
def jax_trainings():
    """The same trainings under JAX, in a process of their own (the Keras backend is fixed when Keras is imported),
    started before the TensorFlow tests so that both run side by side."""
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="2")
    with subprocess.Popen([sys.executable, str(Path(__file__).with_name("learning_runs.py"))], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=env) as process:
        try:
            yield process
        finally:
            process.kill()


def test_every_architecture_learns_under_jax(jax_trainings):
    output, _ = jax_trainings.communicate(timeout=600)
    lines = [line for line in output.splitlines() if line.startswith("RESULTS ")]
    assert jax_trainings.returncode == 0 and lines, output[-5000:]
    results = json.loads(lines[0].removeprefix("RESULTS "))
    assert results["backend"] == "jax"
    assert set(results["held_out"]) == set(ARCHITECTURES) and min(results["held_out"].values()) >= LEARNED, results
