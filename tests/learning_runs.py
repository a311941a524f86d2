"""Short trainings on a learnable image set through the package's own training entry point (``train_variant``), for
the learning tests. Run as a script (``python learning_runs.py``) it does every run in this process's Keras backend
and prints one JSON object: how test_learning.py runs them under JAX, whose backend is fixed at import."""

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from archives import class_images  # noqa: E402

CLASSES, SIZE = 4, 16  # 16 x 16 images: every architecture's pooling still fits, and an epoch takes a fraction of a second
TRAIN, HELD_OUT = 256, 128
CHANCE = 1 / CLASSES
ONE_BATCH = 16  # images the over-fit check memorizes (with random labels)
SMALL = {"widths": [16, 32, 32]}  # the batch-norm architectures made narrow: the same layers, seconds to train
ARCHITECTURES = {"lenet2": {}, "lenet3": {}, "resnet_fast": SMALL | {"stem_width": 16}, "whitened_cnn": SMALL}


def learnable_set(seed: int = 0) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(train, held out): images whose class is a colour and a bright square at the class's place, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(TRAIN + HELD_OUT) % CLASSES)
    images = class_images(labels, rng, SIZE)
    return (images[:TRAIN], labels[:TRAIN]), (images[TRAIN:], labels[TRAIN:])


def settings(arch: str, epochs: int, batch_size: int = 32) -> dict:
    """A variant as the workflow's config makes it: no regularization or augmentation, Adam, fixed seed."""
    return {"name": f"learn-{arch}", "arch": arch, "arch_options": ARCHITECTURES[arch], "weight_decay": 0.0,
            "dropout": False, "deterministic": True,
            "train": {"optimizer": "adam", "lr": 1e-3, "batch_size": batch_size, "epochs": epochs, "seed": 0}}


def train_and_score(arch: str, train, score_on, epochs: int, batch_size: int = 32) -> float:
    """Train ``arch`` on ``train`` with ``train_variant``; its accuracy on ``score_on`` (images, labels), which the
    epoch loop scores as its validation images after the last epoch."""
    from cifarflow.backend import configure_training
    from cifarflow.data.splits import channel_stats
    from cifarflow.train.recipe import recipe_of
    from cifarflow.train.training import train_variant

    variant = recipe_of(settings(arch, epochs, batch_size))
    with tempfile.TemporaryDirectory() as folder:
        _, history, *_ = train_variant(variant, train, score_on, CLASSES, channel_stats(train[0]), Path(folder) / "ckpt",
                                       device=configure_training(variant, threads=1))
    return history[-1]["val_accuracy"]


def unpaired(labels: np.ndarray) -> np.ndarray:
    """Labels that say nothing of the images: each class's images get every label equally often, in random order (a
    plain permutation would leave each class a by-chance majority label that a model of separable classes learns)."""
    rng = np.random.default_rng(1)
    shuffled = np.empty_like(labels)
    for label in range(CLASSES):
        members = np.flatnonzero(labels == label)
        shuffled[members] = rng.permutation(np.arange(len(members)) % CLASSES)
    return shuffled


def held_out_accuracy(arch: str, shuffled: bool = False, epochs: int = 3) -> float:
    """Accuracy on the held-out images after training on the training images (their labels permuted: ``shuffled``)."""
    (images, labels), held_out = learnable_set()
    if shuffled:
        labels = unpaired(labels)
    return train_and_score(arch, (images, labels), held_out, epochs)


def one_batch_accuracy(arch: str, epochs: int = 4) -> float:
    """Training accuracy after fitting ONE_BATCH images with random labels, seen 16 times an epoch: a model, loss and
    optimizer that can learn at all memorize them."""
    (images, _), _ = learnable_set()
    images, labels = images[:ONE_BATCH], np.random.default_rng(2).integers(0, CLASSES, ONE_BATCH)
    repeated = (np.concatenate([images] * 16), np.concatenate([labels] * 16))
    return train_and_score(arch, repeated, (images, labels), epochs, batch_size=ONE_BATCH)


if __name__ == "__main__":
    import keras

    results = {"backend": keras.backend.backend(), "held_out": {arch: held_out_accuracy(arch) for arch in ARCHITECTURES}}
    print("RESULTS " + json.dumps(results))
