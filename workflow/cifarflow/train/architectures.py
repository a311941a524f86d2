"""Model architectures, one function each, all of one shape (as in the keras-io examples):
``arch(x, num_classes, *, options...)`` takes the normalized image tensor and returns the softmax output tensor.

A variant's ``arch_options`` are the architecture's keyword options; the options the study sets for every variant
(``STUDY_OPTIONS``: weight decay, dropout rates) reach only the architectures whose signature names them. Keras is
imported when a model is built, not with this module, so the workflow checks every variant's options against these
signatures before any job runs. A new architecture is one function here and its entry in ``ARCHITECTURES``."""

import inspect

from ..errors import UserError
from .recipe import Recipe, recipe_of

STUDY_OPTIONS = ("weight_decay", "conv_dropout", "dense_dropout")
WHITENING_LAYER = "whiten"


def _l2(weight_decay: float):
    from keras import regularizers

    return regularizers.L2(weight_decay) if weight_decay else None


def _fan_in_uniform():
    """Uniform in +-1/sqrt(fan_in): PyTorch's default for convolutions and linear layers, the fast recipes' setting."""
    import keras

    return keras.initializers.VarianceScaling(scale=1 / 3, mode="fan_in", distribution="uniform")


def _lenet(x, filters: tuple[int, ...], num_classes: int, weight_decay: float, conv_dropout: float, dense_dropout: float):
    """Per width CONV => RELU => CONV => RELU => POOL => DROPOUT (the first block's second conv 3x3, later ones 5x5),
    then a 512-unit dense layer, dropout and the softmax classifier, as in the seed study."""
    from keras import layers

    for width in filters:
        for kernel in (3, 3 if width == filters[0] else 5):
            x = layers.Conv2D(width, kernel, padding="same", activation="relu", kernel_regularizer=_l2(weight_decay))(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(conv_dropout)(x) if conv_dropout else x
    x = layers.Flatten()(x)
    x = layers.Dense(512, activation="relu")(x)
    x = layers.Dropout(dense_dropout)(x) if dense_dropout else x
    return layers.Dense(num_classes, activation="softmax")(x)


def lenet2(x, num_classes: int, *, weight_decay: float = 1e-4, conv_dropout: float = 0.25, dense_dropout: float = 0.4):
    """The seed's model 1: two conv blocks of 32 and 64 filters, a 512-unit dense layer."""
    return _lenet(x, (32, 64), num_classes, weight_decay, conv_dropout, dense_dropout)


def lenet3(x, num_classes: int, *, weight_decay: float = 1e-4, conv_dropout: float = 0.25, dense_dropout: float = 0.4):
    """The seed's model 3: three conv blocks of 32, 64 and 128 filters, a 512-unit dense layer."""
    return _lenet(x, (32, 64, 128), num_classes, weight_decay, conv_dropout, dense_dropout)


def _conv_bn_act(x, filters: int, weight_decay: float, activation: str):
    from keras import layers

    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_regularizer=_l2(weight_decay))(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)
    return layers.Activation(activation)(x)


def _scaled_linear_head(x, num_classes: int, weight_decay: float, logit_scale: float, initializer="glorot_uniform",
                        dropout: float = 0.0):
    """Global max-pool, a linear layer without bias and small initial logits, as the fast recipes scale their output."""
    from keras import layers

    x = layers.GlobalMaxPooling2D()(x)
    x = layers.Dropout(dropout)(x) if dropout else x
    x = layers.Dense(num_classes, use_bias=False, kernel_initializer=initializer,
                     kernel_regularizer=_l2(weight_decay))(x)
    x = layers.Rescaling(logit_scale)(x)
    return layers.Activation("softmax", dtype="float32")(x)


def resnet_fast(x, num_classes: int, *, weight_decay: float = 5e-4, widths=(64, 128, 256), residual=(True, False, True),
                stem_width: int = 32, activation: str = "gelu", logit_scale: float = 0.125):
    """A small ResNet in the DAWNBench ResNet-9 / airbench style: a stem, then per stage conv-bn-act, max-pool and
    either a residual pair of conv-bn-act or one more conv-bn-act; global max-pool and a scaled linear head."""
    from keras import layers

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


def set_identity_filters(conv) -> None:
    """Make the first min(in, out) filters of a built square, odd-sized convolution the identity of their channel
    (a Dirac delta at the kernel's centre); the remaining filters keep their random values."""
    import keras
    import numpy as np

    kernel = keras.ops.convert_to_numpy(conv.kernel).copy()
    centre, channels = kernel.shape[0] // 2, min(kernel.shape[2], kernel.shape[3])
    kernel[..., :channels] = 0.0
    kernel[centre, centre, np.arange(channels), np.arange(channels)] = 1.0
    conv.kernel.assign(kernel)


def whitened_cnn(x, num_classes: int, *, weight_decay: float = 0.0, widths=(64, 256, 256), patch: int = 2,
                 stem_stride: int = 1, batchnorm_momentum: float = 0.4, shift_weight_decay: float = 0.0, activation: str = "gelu",
                 logit_scale: float = 1 / 9, identity_init: bool = False, conv_dropout: float = 0.0,
                 dense_dropout: float = 0.0):
    """The airbench style: a frozen patch-whitening convolution (set from the training images, see
    ``models.initialize_from_data``), then per stage conv, max-pool, batch norm, activation, conv, batch norm,
    activation; global max-pool and a scaled linear head. Batch norm has a shift but no scale. A ``stem_stride`` of
    ``patch`` whitens non-overlapping patches: every later layer then costs a quarter (patch 2). With
    ``identity_init`` each convolution starts by passing its first input channels through unchanged (airbench's
    Dirac initialization). With the study's dropout, each stage ends with ``conv_dropout`` and the pooled features
    with ``dense_dropout``, where the seed's LeNets drop them."""
    from keras import layers

    def conv_bn_act(x, width, pool):
        conv = layers.Conv2D(width, 3, padding="same", use_bias=False, kernel_initializer=_fan_in_uniform(),
                             kernel_regularizer=_l2(weight_decay))
        x = conv(x)  # calling it on the input tensor creates its weights
        if identity_init:
            set_identity_filters(conv)
        if pool:
            x = layers.MaxPooling2D(2)(x)
        x = layers.BatchNormalization(scale=False, momentum=batchnorm_momentum, epsilon=1e-5,
                                      beta_regularizer=_l2(shift_weight_decay))(x)
        return layers.Activation(activation)(x)

    x = layers.Conv2D(2 * x.shape[-1] * patch * patch, patch, strides=stem_stride, padding="valid", name=WHITENING_LAYER,
                      trainable=False)(x)
    x = layers.Activation(activation)(x)
    for width in widths:
        x = conv_bn_act(conv_bn_act(x, width, pool=True), width, pool=False)
        x = layers.Dropout(conv_dropout)(x) if conv_dropout else x
    return _scaled_linear_head(x, num_classes, weight_decay, logit_scale, _fan_in_uniform(), dense_dropout)


ARCHITECTURES = {"lenet2": lenet2, "lenet3": lenet3, "resnet_fast": resnet_fast, "whitened_cnn": whitened_cnn}


def options_of(arch: str) -> tuple[str, ...]:
    """The keyword options an architecture takes (the study's among them)."""
    parameters = inspect.signature(ARCHITECTURES[arch]).parameters.values()
    return tuple(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)


def architecture_and_options(recipe: Recipe) -> tuple:
    """A variant's architecture function and its keyword options: its ``arch_options`` plus the study's weight decay
    and dropout rates where the architecture takes them. Refuses an unknown architecture or option (UserError)."""
    arch, variant = recipe.arch, recipe.name
    if arch not in ARCHITECTURES:
        raise UserError(f"{variant}: unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    takes = options_of(arch)
    options = dict(recipe.arch_options)
    own = [name for name in takes if name not in STUDY_OPTIONS]
    unknown = sorted(set(options) - set(own))
    if unknown:
        raise UserError(f"{variant}: architecture {arch} takes no option {', '.join(map(repr, unknown))} (arch_options); "
                        f"its options are {', '.join(own) or 'none'}")
    rates = recipe.dropout_rates
    study = {"weight_decay": recipe.weight_decay, "conv_dropout": rates.conv if recipe.dropout else 0.0,
             "dense_dropout": rates.dense if recipe.dropout else 0.0}
    return ARCHITECTURES[arch], options | {name: value for name, value in study.items() if name in takes}


def check_architectures(variants: dict[str, dict]) -> None:
    """Every variant's architecture and options, checked before any job runs."""
    for settings in variants.values():
        architecture_and_options(recipe_of(settings))
