import math
from fractions import Fraction

import numpy as np
import pytest

from cifarflow.archive import load_batches
from cifarflow.datasets import get_dataset
from cifarflow.fileio import save_npz
from cifarflow.splits import channel_stats, load_split, split_batches
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

