import math
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest

from cifarflow.data.archive import Batch, load_batches
from cifarflow.data.datasets import get_dataset
from cifarflow.fileio import load_split, save_npz
from cifarflow.data.splits import channel_stats, save_batch, split_batches
from floats import approx_float64

CIFAR10 = get_dataset("cifar10")


def test_seed_split_validation_is_batch_1(cifar10_archive):
    batches, _ = load_batches(cifar10_archive, CIFAR10)
    splits = split_batches(batches, CIFAR10, ["data_batch_1"], 0)
    assert np.array_equal(splits["val"].images, batches["data_batch_1"].images)
    assert np.array_equal(splits["train"].images[:50], batches["data_batch_2"].images)
    assert len(splits["train"].labels) == 200 and len(splits["test"].labels) == 50


def test_validation_batches_are_checked(cifar10_archive):
    batches, _ = load_batches(cifar10_archive, CIFAR10)
    with pytest.raises(ValueError, match="not training batches"):
        split_batches(batches, CIFAR10, ["test_batch"], 0)
    with pytest.raises(ValueError, match="nothing is left to train on"):
        split_batches(batches, CIFAR10, list(CIFAR10.train_batches), 0)


def test_cifar100_validation_is_the_last_slice_of_train(cifar100_archive):
    spec = get_dataset("cifar100")
    batches, _ = load_batches(cifar100_archive, spec)
    splits = split_batches(batches, spec, [], 40)
    assert len(splits["train"].labels) == 160 and len(splits["val"].labels) == 40
    assert np.array_equal(splits["val"].labels, batches["train"].labels[-40:])
    with pytest.raises(ValueError, match="validation_size"):
        split_batches(batches, spec, [], 200)


def test_channel_stats_are_exact():
    images = np.random.default_rng(1).integers(0, 256, size=(64, 32, 32, 3), dtype=np.uint8)
    stats = channel_stats(images)
    pixels = images.reshape(-1, 3).astype(np.int64)  # integer sums are exact: the reference has one rounding
    n = len(pixels)
    exact_mean = [Fraction(int(total), n) for total in pixels.sum(0)]
    exact_std = [math.sqrt(Fraction(int(squares), n) - m * m) for squares, m in zip((pixels**2).sum(0), exact_mean)]
    # the histogram sums 256 float64 terms per channel
    assert stats["mean"] == approx_float64([float(m) for m in exact_mean], ulps=256 * 4)
    assert stats["std"] == approx_float64(exact_std, ulps=256 * 4)
    assert stats["n_images"] == 64


def test_split_files_round_trip(tmp_path):
    images = np.arange(2 * 32 * 32 * 3, dtype=np.uint8).reshape(2, 32, 32, 3)
    save_npz(tmp_path / "s.npz", images=images, labels=np.array([1, 2], np.int16))
    loaded_images, labels = load_split(tmp_path / "s.npz")
    assert np.array_equal(loaded_images, images) and labels.tolist() == [1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.npz"]



def batch_of(first: int, n: int) -> Batch:
    """n 2 x 2 images whose pixels and labels are their index, from ``first`` on."""
    index = np.arange(first, first + n)
    return Batch(np.repeat(index.astype(np.uint8), 12).reshape(n, 2, 2, 3), index.astype(np.int16))


def test_two_training_batches_split_by_whole_batches():
    spec = replace(CIFAR10, train_batches=("a", "b"), test_batches=("t",))
    splits = split_batches({"a": batch_of(0, 4), "b": batch_of(4, 4), "t": batch_of(8, 2)}, spec, ["b"], 0)
    assert splits["val"].labels.tolist() == [4, 5, 6, 7] and splits["train"].labels.tolist() == [0, 1, 2, 3]
    assert splits["test"].images[:, 0, 0, 0].tolist() == [8, 9]


@pytest.mark.parametrize("size, refused", [(0, True), (1, False), (9, False), (10, True)])
def test_one_training_batch_keeps_its_last_images_for_validation(size, refused):
    spec = replace(CIFAR10, train_batches=("train",), test_batches=("test",))
    batches = {"train": batch_of(0, 10), "test": batch_of(10, 3)}
    if refused:
        with pytest.raises(ValueError, match=rf"^validation_size must be between 1 and 9, got {size}$"):
            split_batches(batches, spec, [], size)
        return
    splits = split_batches(batches, spec, [], size)
    for split, first, n in (("train", 0, 10 - size), ("val", 10 - size, size)):
        assert splits[split].labels.tolist() == list(range(first, first + n))
        assert splits[split].images[:, 1, 1, 2].tolist() == list(range(first, first + n))  # each image with its label


def test_channel_stats_of_dark_images_and_their_units():
    images = np.zeros((2, 2, 2, 3), np.uint8)
    images[0, ..., 1] = 10  # channel 1: half 10, half 0; nothing reaches 255
    stats = channel_stats(images)
    assert stats["mean"] == [0.0, 5.0, 0.0] and stats["std"] == [0.0, 5.0, 0.0]
    assert stats["units"] == "0-255 pixel values"


def test_a_saved_batch_loads_as_it_was(tmp_path):
    save_batch(tmp_path / "raw.npz", batch_of(3, 5))
    images, labels = load_split(tmp_path / "raw.npz")
    assert labels.tolist() == [3, 4, 5, 6, 7] and images.dtype == np.uint8 and images[:, 0, 0, 0].tolist() == [3, 4, 5, 6, 7]
