"""What both input pipelines (tf.data and numpy) share: batching and the augmentation settings."""

from .recipe import Augment


def shift_pixels(max_shift: float, image_size: int) -> int:
    """A shift given as a fraction of the image's ``image_size`` (the seed's 0.1) or in whole pixels (2, 4...)."""
    return int(round(max_shift * image_size)) if 0 < max_shift < 1 else int(max_shift)


def augment_options(augment: Augment, image_size: int) -> tuple[int, bool, str]:
    """(maximum shift in pixels, random horizontal flip, fill mode) from a variant's ``augment`` settings, for images
    of ``image_size`` pixels."""
    if augment.fill not in ("nearest", "reflect"):
        raise ValueError(f"unknown fill {augment.fill!r}; use 'nearest' or 'reflect'")
    return shift_pixels(augment.shift, image_size), augment.flip, augment.fill


def full_batches(images: int, batch_size: int) -> tuple[int, int]:
    """(batch size, steps per epoch) such that every training batch is full: each epoch's shuffle leaves out its
    last ``images % batch_size`` images (different ones each epoch). A small batch at the end of an epoch would
    take a full-size step on a noisy gradient and, with a low batch-norm momentum, set the stored statistics."""
    batch_size = min(batch_size, images)
    return batch_size, images // batch_size
