"""Training one variant: fixed seeds give the same result, a diverging run stops with a clear error."""

import numpy as np
import pytest

from archives import class_images
from cifarflow.runlog import StageError
from cifarflow.splits import channel_stats
from cifarflow.training import Checkpoint, fingerprint, train_variant

RNG = np.random.default_rng(0)
LABELS = np.arange(60) % 3
IMAGES = class_images(LABELS, RNG)
STATS = channel_stats(IMAGES)


def settings(**train):
    return {
        "name": "unit", "arch": "lenet2", "weight_decay": 1e-4, "dropout": True,
        "dropout_rates": {"conv": 0.25, "dense": 0.4}, "augment": {"shift": 0.1, "flip": True, "fill": "nearest"},
        "deterministic": True,
        "train": {"optimizer": "adam", "lr": 1e-3, "batch_size": 16, "epochs": 2, "seed": 0} | train,
    }


def run(tmp_path, variant):
    return train_variant(variant, (IMAGES, LABELS), (IMAGES[:30], LABELS[:30]), 3, STATS, tmp_path / "ckpt", threads=1)


def test_same_settings_give_the_same_history(tmp_path):
    _, first, summary, checkpoint = run(tmp_path, settings())
    checkpoint.clear()
    _, second, _, _ = run(tmp_path, settings())
    keys = ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert [[row[k] for k in keys] for row in first] == [[row[k] for k in keys] for row in second]
    assert summary["epochs"] == 2 and summary["software"]["tensorflow"]
    assert len(first) == 2 and first[0]["images_per_second"] > 0


def test_checkpoint_after_each_epoch_is_resumed(tmp_path):
    _, history, _, checkpoint = run(tmp_path, settings())
    state = checkpoint.load_state()
    assert state["epochs_done"] == 2 and len(state["history"]) == 2
    _, resumed, summary, _ = run(tmp_path, settings())  # nothing left to train: history comes from the checkpoint
    assert summary["resumed_after_epoch"] == 2 and resumed == history


def test_checkpoint_of_other_settings_is_not_resumed(tmp_path):
    run(tmp_path, settings())
    other = Checkpoint(tmp_path / "ckpt", fingerprint(settings(lr=5e-4), STATS))
    assert other.load_state() is None


def test_nan_loss_stops_with_a_clear_error(tmp_path):
    with pytest.raises(StageError, match=r"training loss became (nan|inf) at epoch 1.*lower the learning rate"):
        run(tmp_path, settings(optimizer="sgd", lr=1e12))
