"""A variant's model: the raw uint8 image input, normalization and the variant's architecture
(``architectures.py``), plus what is initialized from the training data.

Every model takes raw uint8 images of the dataset's size and normalizes them itself (a built-in
``Normalization`` layer holding the training split's mean and variance), so a saved model is self-contained.
"""

import keras
import numpy as np
from keras import layers

from .architectures import ARCHITECTURES, WHITENING_LAYER, architecture_and_options
from .recipe import Recipe


def whitening_kernel(images: np.ndarray, mean, std, patch: int = 2, eps: float = 5e-4, max_images: int = 5000) -> np.ndarray:
    """A ``patch`` x ``patch`` convolution kernel that whitens the normalized images' patches: the eigenvectors of
    the patch covariance scaled by 1/sqrt(eigenvalue + eps), each paired with its negation (2 x channels x patch^2
    filters)."""
    x = (images[:max_images].astype(np.float64) - np.asarray(mean)) / np.asarray(std)
    size, channels = x.shape[1] - patch + 1, x.shape[-1]
    # patch vector index (i * patch + j) * channels + c, the order of a Conv2D kernel of shape (patch, patch, channels, filters)
    patches = np.concatenate([x[:, i:i + size, j:j + size, :] for i in range(patch) for j in range(patch)], axis=-1)
    patches = patches.reshape(-1, patch * patch * channels)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(patches, rowvar=False))
    filters = eigenvectors / np.sqrt(eigenvalues + eps)
    kernel = np.concatenate([filters, -filters], axis=1)
    return kernel.reshape(patch, patch, channels, -1).astype(np.float32)


def initialize_from_data(model: keras.Model, images: np.ndarray, mean, std) -> None:
    """Data-dependent initialization of a new model: its whitening stem, when the architecture has one."""
    try:
        stem = model.get_layer(WHITENING_LAYER)
    except ValueError:
        return
    kernel = whitening_kernel(images, mean, std, stem.kernel.shape[0])
    stem.set_weights([kernel, np.zeros(kernel.shape[-1], dtype=np.float32)])


def build_model(recipe: Recipe, num_classes: int, mean, std, image_shape: tuple[int, int, int]) -> keras.Model:
    """Build a variant's model for images of ``image_shape`` (height, width, channels; the training images' shape):
    uint8 input, normalization with the training split's statistics, architecture."""
    architecture, options = architecture_and_options(recipe)
    inputs = keras.Input(tuple(image_shape), dtype="uint8", name="image")
    x = layers.Normalization(mean=list(mean), variance=[s * s for s in std], name="normalize")(inputs)
    return keras.Model(inputs, architecture(x, num_classes, **options), name=recipe.name)


def architecture_param_count(arch: str, image_shape: tuple[int, int, int], num_classes: int = 10, **options) -> int:
    """Parameters of the bare architecture on float input of ``image_shape`` (no normalization layer)."""
    inputs = keras.Input(tuple(image_shape))
    return keras.Model(inputs, ARCHITECTURES[arch](inputs, num_classes, **options)).count_params()
