"""Images keep their labels through the whole study: every image of the tiny archives carries its label, batch and
place in its pixels (``archives.stamp``), and each file the rules write from it (unpacked batches, splits, the
training input streams, validation and test predictions, the corrupted test images) is checked row by row against
those pixels. The CIFAR-100 layout, fine and coarse labels: test_data_workflow.py."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from archives import STAMP_MARK, read_stamps
from cifarflow.fileio import image_digest
from cifarflow.train.recipe import Augment
from conftest import TINY_CONFIG

CONFIG = yaml.safe_load(TINY_CONFIG.read_text())
BATCHES = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]  # stamped 1..6, in this order
TRAININGS = [("small", 0), ("small_augmented", 0), ("small_augmented", 1)]


def split(study, name: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(study / f"results/data/{name}.npz") as data:
        return data["images"], data["labels"]


def places(batches: list[str]) -> list[tuple[int, int]]:
    """(batch number, place) of every image of ``batches``, in order: what a split made of them holds."""
    per_batch = 50
    return [(BATCHES.index(name) + 1, index) for name in batches for index in range(per_batch)]


def stamped_places(images: np.ndarray) -> list[tuple[int, int]]:
    stamps = read_stamps(images)
    return list(zip(stamps["batch"].tolist(), stamps["index"].tolist()))


def test_unpacked_batches_and_splits_keep_every_image_with_its_label_in_order(tiny_study):
    for name in BATCHES:
        with np.load(tiny_study / f"results/data/raw/{name}.npz") as raw:
            assert (read_stamps(raw["images"])["label"] == raw["labels"]).all(), name
            assert stamped_places(raw["images"]) == places([name])
    validation = CONFIG["validation_batches"]
    expected = {"train": places([name for name in BATCHES[:5] if name not in validation]), "val": places(validation),
                "test": places(["test_batch"])}
    for name, order in expected.items():
        images, labels = split(tiny_study, name)
        assert (read_stamps(images)["label"] == labels).all(), name
        assert stamped_places(images) == order, name


def unflipped(images: np.ndarray) -> np.ndarray:
    """The images as stamped: those the stream mirrored (their stamp at the right end of the row) mirrored back."""
    mirrored = images[:, -1, 1, 2] != STAMP_MARK
    return np.where(mirrored[:, None, None, None], images[:, :, ::-1], images)


@pytest.mark.parametrize("stream", ["tensorflow", "numpy"])
@pytest.mark.parametrize("augment", [Augment(), Augment(flip=True)], ids=["plain", "flip"])
def test_the_training_streams_keep_every_image_with_its_label(tiny_study, stream, augment):
    """Both input pipelines (tf.data, and numpy for the other Keras backends), plain and with random mirroring: each
    batch's one-hot labels are its images' own, and every epoch draws each image at most once."""
    if stream == "tensorflow":
        from cifarflow.train.inputs import training_dataset as training_stream
    else:
        from cifarflow.train.array_inputs import training_batches as training_stream
    images, labels = split(tiny_study, "train")
    batches, steps = training_stream(images, labels, 10, 32, 0, 0, 2, augment)
    seen = []
    for batch_images, onehot in batches:
        batch_images, onehot = np.asarray(batch_images), np.asarray(onehot)
        stamps = read_stamps(unflipped(batch_images))
        assert (stamps["label"] == onehot.argmax(axis=1)).all() and (onehot.max(axis=1) == 1).all()
        seen.append(stamped_places(unflipped(batch_images)))
    assert len(seen) == 2 * steps
    for epoch in (seen[:steps], seen[steps:]):
        drawn = [place for batch in epoch for place in batch]
        assert len(set(drawn)) == len(drawn) == steps * 32 and set(drawn) <= set(stamped_places(images))


def test_validation_predictions_are_those_of_the_validation_images_in_order(tiny_study):
    images, labels = split(tiny_study, "val")
    for variant, seed in TRAININGS:
        with np.load(tiny_study / f"results/variants/{variant}/seed-{seed}/val_predictions.npz") as stored:
            assert (stored["labels"] == read_stamps(images)["label"]).all()
            assert str(stored["images_sha256"]) == image_digest(images)
            assert len(stored["probabilities"]) == len(images)


def test_test_predictions_are_those_of_the_test_images_in_order(tiny_study):
    images, _ = split(tiny_study, "test")
    classes = json.loads((tiny_study / "results/data/classes.json").read_text())
    predictions = pd.read_csv(tiny_study / "results/test/predictions.csv")
    stamps = read_stamps(images[predictions["index"]])
    assert list(predictions["index"]) == list(range(len(images))) == list(stamps["index"])
    assert list(predictions["true"]) == [classes[label] for label in stamps["label"]]


def test_corrupted_test_images_keep_their_labels(tiny_study):
    images, _ = split(tiny_study, "test")
    for name in CONFIG["corruptions"]:
        with np.load(tiny_study / f"results/robustness/corrupted/{name}.npz") as stored:
            assert (stored["labels"] == read_stamps(images[stored["indices"]])["label"]).all(), name
            assert stored["images"].shape[1] == len(stored["indices"]) == len(stored["labels"])
