"""The tf.data input pipeline: shuffling, batching and augmentation on whole batches, with no per-image Python.

The training stream is a pure function of (seed, epoch): epoch ``e`` is a stateless shuffle of the training
indices seeded with ``(seed, e)``, and each batch's augmentation is seeded with ``(seed, e, batch)``. So a run
resumed at epoch ``e`` sees exactly the images an uninterrupted run would have seen.
"""

import numpy as np
import tensorflow as tf

from .inputs_common import augment_options, full_batches
from .recipe import Augment


def _source_indices(offsets, fill: str, size: int):
    """Map shifted pixel positions back into [0, size - 1]: 'nearest' repeats the edge, 'reflect' mirrors it."""
    if fill == "nearest":
        return tf.clip_by_value(offsets, 0, size - 1)
    offsets = tf.abs(offsets)
    return (size - 1) - tf.abs((size - 1) - offsets)


def translate_flip(images, shift_y, shift_x, flip, fill: str = "reflect"):
    """Mirror the images marked in ``flip``, then translate each by its own (shift_y, shift_x) pixels:
    ``out[i, j] = image[fill(i + shift_y), fill(j + shift_x)]``; one gather per axis."""
    height, width = images.shape[1:3]
    rows = _source_indices(tf.range(height, dtype=tf.int32)[None, :] + shift_y[:, None], fill, height)
    cols = tf.range(width, dtype=tf.int32)[None, :] + shift_x[:, None]
    cols = tf.where(flip[:, None], (width - 1) - cols, cols)
    cols = _source_indices(cols, fill, width)
    images = tf.gather(images, rows, axis=1, batch_dims=1)
    return tf.gather(images, cols, axis=2, batch_dims=1)


def augment_batch(images, seed, max_shift: int, flip: bool, fill: str):
    """Random translation by up to ``max_shift`` pixels and random horizontal flip of a whole batch."""
    n = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, 3)
    shifts = tf.random.stateless_uniform((2, n), seeds[0], minval=-max_shift, maxval=max_shift + 1, dtype=tf.int32)
    if flip:
        mirror = tf.random.stateless_uniform((n,), seeds[1]) < 0.5
    else:
        mirror = tf.zeros((n,), dtype=tf.bool)
    return translate_flip(images, shifts[0], shifts[1], mirror, fill)


def training_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    batch_size: int,
    seed: int,
    first_epoch: int,
    epochs: int,
    augment: Augment = Augment(),
) -> tuple[tf.data.Dataset, int]:
    """Batches for epochs ``first_epoch .. epochs-1`` as one stream; returns it and the steps per epoch."""
    n = len(labels)
    batch_size, steps = full_batches(n, batch_size)
    x = tf.constant(images)
    y = tf.one_hot(tf.constant(labels.astype(np.int32)), num_classes)
    max_shift, flip, fill = augment_options(augment, images.shape[1])
    active = max_shift > 0 or flip

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=tf.stack([tf.cast(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size, drop_remainder=True).enumerate()

    def load(step, index):
        batch = tf.gather(x, index)
        if active:
            batch_seed = tf.stack([tf.cast(seed, tf.int64) + 1, step])
            batch = augment_batch(batch, batch_seed, max_shift, flip, fill)
        return batch, tf.gather(y, index)

    def numbered(epoch):
        return epoch_batches(epoch).map(lambda b, index: (epoch * steps + b, index))

    dataset = (
        tf.data.Dataset.range(first_epoch, epochs)
        .flat_map(numbered)
        .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    return dataset, steps


def evaluation_dataset(images: np.ndarray, labels: np.ndarray, num_classes: int, batch_size: int = 500) -> tf.data.Dataset:
    y = tf.one_hot(labels.astype(np.int32), num_classes)
    return tf.data.Dataset.from_tensor_slices((images, y)).batch(batch_size).prefetch(tf.data.AUTOTUNE)
