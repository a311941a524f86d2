"""The input stream for Keras backends other than TensorFlow (JAX, PyTorch), where tf.data is not available.

Same contract as ``inputs.training_dataset``: epoch ``e`` is a permutation seeded with ``(seed, e)``, each batch is
mirrored then translated on the whole batch at once (numpy indexing, no per-image Python), and a background
thread prepares the next batches while the accelerator trains on the current one.
"""

import queue
import threading

import numpy as np

from .inputs_common import augment_options, full_batches
from .recipe import Augment


def source_indices(offsets: np.ndarray, fill: str, size: int) -> np.ndarray:
    if fill == "nearest":
        return np.clip(offsets, 0, size - 1)
    offsets = np.abs(offsets)
    return (size - 1) - np.abs((size - 1) - offsets)


def translate_flip(images: np.ndarray, shift_y: np.ndarray, shift_x: np.ndarray, flip: np.ndarray, fill: str) -> np.ndarray:
    height, width = images.shape[1:3]
    rows = source_indices(np.arange(height)[None, :] + shift_y[:, None], fill, height)
    cols = np.arange(width)[None, :] + shift_x[:, None]
    cols = np.where(flip[:, None], (width - 1) - cols, cols)
    cols = source_indices(cols, fill, width)
    batch = np.arange(len(images))[:, None, None]
    return images[batch, rows[:, :, None], cols[:, None, :]]


def training_batches(images, labels, num_classes, batch_size, seed, first_epoch, epochs, augment=Augment(), prefetch=8):
    """A generator of (images, one-hot labels) batches for epochs ``first_epoch .. epochs-1``; returns it and steps."""
    n = len(labels)
    batch_size, steps = full_batches(n, batch_size)
    max_shift, flip, fill = augment_options(augment, images.shape[1])
    onehot = np.eye(num_classes, dtype=np.float32)

    def produce(out: queue.Queue):
        for epoch in range(first_epoch, epochs):
            order = np.random.default_rng([seed, epoch]).permutation(n)
            for step in range(steps):
                index = np.sort(order[step * batch_size:(step + 1) * batch_size])
                batch = images[index]
                if max_shift or flip:
                    rng = np.random.default_rng([seed + 1, epoch * steps + step])
                    shifts = rng.integers(-max_shift, max_shift + 1, size=(2, len(index)))
                    mirror = rng.random(len(index)) < 0.5 if flip else np.zeros(len(index), bool)
                    batch = translate_flip(batch, shifts[0], shifts[1], mirror, fill)
                out.put((batch, onehot[labels[index]]))
        out.put(None)

    def stream():
        buffer = queue.Queue(maxsize=prefetch)
        threading.Thread(target=produce, args=(buffer,), daemon=True).start()
        while (item := buffer.get()) is not None:
            yield item

    return stream(), steps


def evaluation_arrays(images: np.ndarray, labels: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Validation data as (images, one-hot labels) arrays, for ``model.fit(validation_data=...)``."""
    return images, np.eye(num_classes, dtype=np.float32)[labels]
