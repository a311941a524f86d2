"""Model architectures: one small function per architecture, each built from a variant's settings.

Every model takes raw uint8 RGB images of 32x32 and normalizes them itself (a built-in ``Normalization``
layer holding the training split's mean and variance), so a saved model is self-contained.
"""

import keras
import numpy as np
from keras import layers, regularizers


def _l2(weight_decay: float):
    return regularizers.L2(weight_decay) if weight_decay else None


def _conv_block(filters: int, second_kernel: int, weight_decay: float, dropout: float) -> list:
    """CONV => RELU => CONV => RELU => POOL => DROPOUT, as in the seed study."""
    block = [
        layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_regularizer=_l2(weight_decay)),
        layers.Conv2D(filters, second_kernel, padding="same", activation="relu", kernel_regularizer=_l2(weight_decay)),
        layers.MaxPooling2D(2),
    ]
    if dropout:
        block.append(layers.Dropout(dropout))
    return block


def _lenet(filters: tuple[int, ...], num_classes: int, weight_decay: float, conv_dropout: float, dense_dropout: float) -> list:
    stack = []
    for width in filters:
        stack += _conv_block(width, 3 if width == filters[0] else 5, weight_decay, conv_dropout)
    stack += [layers.Flatten(), layers.Dense(512, activation="relu")]
    if dense_dropout:
        stack.append(layers.Dropout(dense_dropout))
    stack.append(layers.Dense(num_classes, activation="softmax"))
    return stack


def lenet2(num_classes: int, weight_decay: float = 1e-4, conv_dropout: float = 0.25, dense_dropout: float = 0.4, **_) -> list:
    """The seed's model 1: two conv blocks of 32 and 64 filters, a 512-unit dense layer."""
    return _lenet((32, 64), num_classes, weight_decay, conv_dropout, dense_dropout)


def lenet3(num_classes: int, weight_decay: float = 1e-4, conv_dropout: float = 0.25, dense_dropout: float = 0.4, **_) -> list:
    """The seed's model 3: three conv blocks of 32, 64 and 128 filters, a 512-unit dense layer."""
    return _lenet((32, 64, 128), num_classes, weight_decay, conv_dropout, dense_dropout)


def _conv_bn_act(x, filters: int, weight_decay: float, activation: str):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_regularizer=_l2(weight_decay))(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)
    return layers.Activation(activation)(x)


def _fan_in_uniform():
    """Uniform in +-1/sqrt(fan_in): PyTorch's default for convolutions and linear layers, the fast recipes' setting."""
    return keras.initializers.VarianceScaling(scale=1 / 3, mode="fan_in", distribution="uniform")


def _scaled_linear_head(x, num_classes: int, weight_decay: float, logit_scale: float, initializer="glorot_uniform"):
    """Global max-pool, a linear layer without bias and small initial logits, as the fast recipes scale their output."""
    x = layers.GlobalMaxPooling2D()(x)
    x = layers.Dense(num_classes, use_bias=False, kernel_initializer=initializer,
                     kernel_regularizer=_l2(weight_decay))(x)
    x = layers.Rescaling(logit_scale)(x)
    return layers.Activation("softmax", dtype="float32")(x)


def resnet_fast(num_classes: int, weight_decay: float = 5e-4, widths=(64, 128, 256), residual=(True, False, True),
                stem_width: int = 32, activation: str = "gelu", logit_scale: float = 0.125, **_):
    """A small ResNet in the DAWNBench ResNet-9 / airbench style: a stem, then per stage conv-bn-act, max-pool and
    either a residual pair of conv-bn-act or one more conv-bn-act; global max-pool and a scaled linear head."""

    def build(x):
        x = _conv_bn_act(x, stem_width, weight_decay, activation)
        for width, skip in zip(widths, residual):
            x = _conv_bn_act(x, width, weight_decay, activation)
            x = layers.MaxPooling2D(2)(x)
            if skip:
                inner = _conv_bn_act(x, width, weight_decay, activation)
                x = layers.Add()([x, _conv_bn_act(inner, width, weight_decay, activation)])
            else:
                x = _conv_bn_act(x, width, weight_decay, activation)
        return _scaled_linear_head(x, num_classes, weight_decay, logit_scale)

    return build


WHITENING_LAYER = "whiten"


def whitened_cnn(num_classes: int, weight_decay: float = 0.0, widths=(64, 256, 256), patch: int = 2, stem_stride: int = 1,
                 batchnorm_momentum: float = 0.4, shift_weight_decay: float = 0.0, activation: str = "gelu",
                 logit_scale: float = 1 / 9, identity_init: bool = False, **_):
    """The airbench style: a frozen patch-whitening convolution (set from the training images, see
    ``initialize_from_data``), then per stage conv, max-pool, batch norm, activation, conv, batch norm,
    activation; global max-pool and a scaled linear head. Batch norm has a shift but no scale. A ``stem_stride`` of
    ``patch`` whitens non-overlapping patches: every later layer then costs a quarter (patch 2). With
    ``identity_init`` each convolution starts by passing its first input channels through unchanged (airbench's
    Dirac initialization)."""

    def conv_bn_act(x, width, pool):
        conv = layers.Conv2D(width, 3, padding="same", use_bias=False, kernel_initializer=_fan_in_uniform(),
                             kernel_regularizer=_l2(weight_decay))
        conv.identity_init = identity_init  # applied by build_model once the weights exist
        x = conv(x)
        if pool:
            x = layers.MaxPooling2D(2)(x)
        x = layers.BatchNormalization(scale=False, momentum=batchnorm_momentum, epsilon=1e-5,
                                      beta_regularizer=_l2(shift_weight_decay))(x)
        return layers.Activation(activation)(x)

    def build(x):
        x = layers.Conv2D(2 * 3 * patch * patch, patch, strides=stem_stride, padding="valid", name=WHITENING_LAYER,
                          trainable=False)(x)
        x = layers.Activation(activation)(x)
        for width in widths:
            x = conv_bn_act(conv_bn_act(x, width, pool=True), width, pool=False)
        return _scaled_linear_head(x, num_classes, weight_decay, logit_scale, _fan_in_uniform())

    return build


def whitening_kernel(images: np.ndarray, mean, std, patch: int = 2, eps: float = 5e-4, max_images: int = 5000) -> np.ndarray:
    """A ``patch`` x ``patch`` convolution kernel that whitens the normalized images' patches: the eigenvectors of
    the patch covariance scaled by 1/sqrt(eigenvalue + eps), each paired with its negation (2 x 3 x patch^2 filters)."""
    x = (images[:max_images].astype(np.float64) - np.asarray(mean)) / np.asarray(std)
    size = x.shape[1] - patch + 1
    # patch vector index (i * patch + j) * 3 + c, the order of a Conv2D kernel of shape (patch, patch, 3, filters)
    patches = np.concatenate([x[:, i:i + size, j:j + size, :] for i in range(patch) for j in range(patch)], axis=-1)
    patches = patches.reshape(-1, patch * patch * 3)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(patches, rowvar=False))
    filters = eigenvectors / np.sqrt(eigenvalues + eps)
    kernel = np.concatenate([filters, -filters], axis=1)
    return kernel.reshape(patch, patch, 3, -1).astype(np.float32)


def set_identity_filters(conv: layers.Conv2D) -> None:
    """Make the first min(in, out) filters of a square, odd-sized convolution the identity of their channel
    (a Dirac delta at the kernel's centre); the remaining filters keep their random values."""
    kernel = keras.ops.convert_to_numpy(conv.kernel).copy()
    centre, channels = kernel.shape[0] // 2, min(kernel.shape[2], kernel.shape[3])
    kernel[..., :channels] = 0.0
    kernel[centre, centre, np.arange(channels), np.arange(channels)] = 1.0
    conv.kernel.assign(kernel)


def initialize_from_data(model: keras.Model, images: np.ndarray, mean, std) -> None:
    """Data-dependent initialization of a new model: its whitening stem, when the architecture has one."""
    try:
        stem = model.get_layer(WHITENING_LAYER)
    except ValueError:
        return
    kernel = whitening_kernel(images, mean, std, stem.kernel.shape[0])
    stem.set_weights([kernel, np.zeros(kernel.shape[-1], dtype=np.float32)])


ARCHITECTURES = {"lenet2": lenet2, "lenet3": lenet3, "resnet_fast": resnet_fast, "whitened_cnn": whitened_cnn}


def build_model(settings: dict, num_classes: int, mean, std) -> keras.Model:
    """Build a variant's model: uint8 input, normalization with the training split's statistics, architecture."""
    arch = settings["arch"]
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    options = dict(settings.get("arch_options") or {})
    options["weight_decay"] = settings.get("weight_decay", 0.0)
    dropout = settings.get("dropout", False)
    rates = settings.get("dropout_rates", {"conv": 0.25, "dense": 0.4})
    options["conv_dropout"] = rates["conv"] if dropout else 0.0
    options["dense_dropout"] = rates["dense"] if dropout else 0.0
    body = ARCHITECTURES[arch](num_classes, **options)

    inputs = keras.Input((32, 32, 3), dtype="uint8", name="image")
    x = layers.Normalization(mean=list(mean), variance=[s * s for s in std], name="normalize")(inputs)
    if callable(body):
        outputs = body(x)
    else:
        for layer in body:
            x = layer(x)
        outputs = x
    model = keras.Model(inputs, outputs, name=settings.get("name", arch))
    for layer in model.layers:
        if getattr(layer, "identity_init", False):
            set_identity_filters(layer)
    return model


def architecture_param_count(arch: str, num_classes: int = 10, **options) -> int:
    """Parameters of the bare architecture on float 32x32x3 input (no normalization layer)."""
    body = ARCHITECTURES[arch](num_classes, **options)
    inputs = keras.Input((32, 32, 3))
    x = inputs
    if callable(body):
        x = body(x)
    else:
        for layer in body:
            x = layer(x)
    return keras.Model(inputs, x).count_params()
