"""The tf.data pipeline: augmentation against a numpy reference, determinism, resumable streams."""

import numpy as np
import pytest
import tensorflow as tf

from cifarflow.train.inputs import evaluation_dataset, training_dataset, translate_flip
from cifarflow.train.inputs_common import shift_pixels
from cifarflow.train.recipe import Augment

IMAGES = np.random.default_rng(0).integers(0, 256, size=(10, 32, 32, 3), dtype=np.uint8)
LABELS = np.arange(10) % 3


def reference(image, dy, dx, flip, fill):
    """out[i, j] = image[src(i + dy), src(j + dx)] of the (optionally) mirrored image."""
    mode = {"nearest": "edge", "reflect": "reflect"}[fill]
    padded = np.pad(image[:, ::-1] if flip else image, ((8, 8), (8, 8), (0, 0)), mode=mode)
    return padded[8 + dy:8 + dy + 32, 8 + dx:8 + dx + 32]


@pytest.mark.parametrize("fill", ["nearest", "reflect"])
def test_translate_flip_matches_numpy(fill):
    dy = np.array([0, 3, -3, 2, -1, 0, 1, -2, 3, 0], np.int32)
    dx = np.array([0, -2, 3, 0, 1, -3, 2, 2, 0, 1], np.int32)
    flip = np.array([False, True, False, True, True, False, False, True, False, True])
    out = translate_flip(tf.constant(IMAGES), tf.constant(dy), tf.constant(dx), tf.constant(flip), fill).numpy()
    for i in range(len(IMAGES)):
        expected = reference(IMAGES[i], dy[i], dx[i], flip[i], fill)  # mirror first, then translate
        assert np.array_equal(out[i], expected), i


def test_shift_is_a_fraction_or_pixels():
    assert shift_pixels(0.1, 32) == 3 and shift_pixels(2, 32) == 2 and shift_pixels(0, 32) == 0
    assert shift_pixels(0.1, 24) == 2


def batches(first_epoch, epochs, augment=None, seed=0):
    dataset, steps = training_dataset(IMAGES, LABELS, 3, 4, seed, first_epoch, epochs, Augment(**(augment or {})))
    return [(x.numpy(), y.numpy()) for x, y in dataset], steps


def test_every_batch_is_full_and_each_epoch_leaves_out_a_different_remainder():
    stream, steps = batches(0, 3)
    assert steps == 2 and len(stream) == 6  # 10 images in batches of 4: two full batches per epoch
    assert all(len(x) == 4 for x, _ in stream)
    left_out = []
    for epoch in range(3):
        seen = [bytes(image) for x, _ in stream[2 * epoch:2 * epoch + 2] for image in x]
        assert len(set(seen)) == 8  # no image twice within an epoch
        left_out.append(set(map(bytes, IMAGES)) - set(seen))
    assert len({frozenset(images) for images in left_out}) > 1
    labels = np.concatenate([y for _, y in stream[:2]])
    assert labels.shape == (8, 3) and np.all(labels.sum(axis=1) == 1)


def test_fewer_images_than_a_batch_make_one_batch_per_epoch():
    dataset, steps = training_dataset(IMAGES[:3], LABELS[:3], 3, 4, 0, 0, 2)
    assert steps == 1 and [len(x) for x, _ in dataset] == [3, 3]


def test_stream_is_deterministic_and_epochs_differ():
    augment = {"shift": 2, "flip": True, "fill": "reflect"}
    one, steps = batches(0, 2, augment)
    two, _ = batches(0, 2, augment)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(one, two))
    epoch1 = np.concatenate([x for x, _ in one[:steps]])
    epoch2 = np.concatenate([x for x, _ in one[steps:]])
    assert not np.array_equal(epoch1, epoch2)
    other_seed, _ = batches(0, 2, augment, seed=1)
    assert not np.array_equal(other_seed[0][0], one[0][0])


def test_resumed_stream_equals_the_rest_of_an_uninterrupted_one():
    augment = {"shift": 0.1, "flip": True, "fill": "nearest"}
    full, steps = batches(0, 3, augment)
    resumed, _ = batches(1, 3, augment)
    assert len(resumed) == 2 * steps
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(full[steps:], resumed))


def test_augmentation_changes_images_but_keeps_labels():
    plain, _ = batches(0, 1)
    augmented, _ = batches(0, 1, {"shift": 3, "flip": True, "fill": "reflect"})
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(plain, augmented))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(plain, augmented))


def test_evaluation_dataset_keeps_order():
    x = np.concatenate([x for x, _ in evaluation_dataset(IMAGES, LABELS, 3, batch_size=4)])
    assert np.array_equal(x, IMAGES)


@pytest.mark.parametrize("fill", ["nearest", "reflect"])
def test_numpy_pipeline_augments_exactly_like_the_tf_one(fill):
    from cifarflow.train import array_inputs

    rng = np.random.default_rng(1)  # its own generator: the same shifts whatever ran before
    dy = rng.integers(-3, 4, 10).astype(np.int32)
    dx = rng.integers(-3, 4, 10).astype(np.int32)
    flip = rng.random(10) < 0.5
    with_tf = translate_flip(tf.constant(IMAGES), tf.constant(dy), tf.constant(dx), tf.constant(flip), fill).numpy()
    assert np.array_equal(array_inputs.translate_flip(IMAGES, dy, dx, flip, fill), with_tf)


def test_numpy_stream_has_full_batches_and_resumes_exactly():
    from cifarflow.train.array_inputs import training_batches

    augment = {"shift": 2, "flip": True, "fill": "reflect"}
    full, steps = training_batches(IMAGES, LABELS, 3, 4, 0, 0, 2, Augment(**augment))
    full = list(full)
    assert steps == 2 and len(full) == 4 and all(len(x) == 4 for x, _ in full)
    first_epoch = [bytes(image) for x, _ in full[:2] for image in x]
    assert len(set(first_epoch)) == 8
    resumed, _ = training_batches(IMAGES, LABELS, 3, 4, 0, 1, 2, Augment(**augment))
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(full[2:], resumed))
