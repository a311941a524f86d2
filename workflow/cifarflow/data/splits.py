"""Train/validation/test splits and normalization statistics, cached as uncompressed ``.npz`` files.

Each split file holds ``images`` (uint8, N x height x width x channels, channels last; 32 x 32 x 3 for CIFAR) and
``labels`` (int16, N): 3 KiB per CIFAR image, loaded in well under a second, with no float copy on disk.
``normalization.json`` holds the per-channel mean and standard deviation of the training split, in 0-255 pixel units.
"""

from pathlib import Path

import numpy as np

from .archive import Batch
from .datasets import DatasetSpec
from ..fileio import save_npz


def save_batch(path: Path, batch: Batch) -> None:
    save_npz(path, images=batch.images, labels=batch.labels)


def split_batches(
    batches: dict[str, Batch], spec: DatasetSpec, validation_batches: list[str], validation_size: int
) -> dict[str, Batch]:
    """Build train/val/test. Several training batches (CIFAR-10): whole batches for validation; one (CIFAR-100): the
    last ``validation_size`` images of it."""
    test = _concat([batches[name] for name in spec.test_batches])
    spec.check_validation_batches(validation_batches)
    if len(spec.train_batches) > 1:
        val = _concat([batches[name] for name in spec.train_batches if name in validation_batches])
        train = _concat([batches[name] for name in spec.train_batches if name not in validation_batches])
    else:
        full = batches[spec.train_batches[0]]
        if not 0 < validation_size < len(full.labels):
            raise ValueError(f"validation_size must be between 1 and {len(full.labels) - 1}, got {validation_size}")
        cut = len(full.labels) - validation_size
        train = Batch(full.images[:cut], full.labels[:cut])
        val = Batch(full.images[cut:], full.labels[cut:])
    return {"train": train, "val": val, "test": test}


def _concat(batches: list[Batch]) -> Batch:
    return Batch(np.concatenate([b.images for b in batches]), np.concatenate([b.labels for b in batches]))


def channel_stats(images: np.ndarray) -> dict:
    """Exact per-channel mean and std of uint8 images, from 256-bin histograms (no float copy of the data)."""
    values = np.arange(256, dtype=np.float64)
    mean, std = [], []
    for channel in range(images.shape[-1]):
        counts = np.bincount(images[..., channel].ravel(), minlength=256).astype(np.float64)
        total = counts.sum()
        m = (counts * values).sum() / total
        mean.append(m)
        std.append(float(np.sqrt((counts * (values - m) ** 2).sum() / total)))
    return {"mean": mean, "std": std, "units": "0-255 pixel values", "n_images": int(images.shape[0])}
