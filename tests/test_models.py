"""Architectures against the seed study's printed layer lists and parameter counts."""

import keras
import pytest

from cifarflow.errors import UserError
from cifarflow.train.models import architecture_param_count, build_model
from floats import SUM_ULPS, approx_float32, assert_float32_close
from recipes import recipe

STATS = {"mean": [125.3, 123.0, 113.9], "std": [63.0, 62.1, 66.7]}
SHAPE = (32, 32, 3)  # CIFAR's images


def conv_kernels(model):
    return [(layer.filters, layer.kernel_size) for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def test_seed_parameter_counts():
    assert architecture_param_count("lenet2", SHAPE) == 2_233_898  # the seed's model 1 summary
    assert architecture_param_count("lenet3", SHAPE) == 1_668_906  # the seed's model 3 summary


def test_lenet3_layer_list_matches_the_seed():
    model = build_model(recipe(arch="lenet3", weight_decay=5e-4, dropout=True), 10, STATS["mean"], STATS["std"], SHAPE)
    assert conv_kernels(model) == [(32, (3, 3)), (32, (3, 3)), (64, (3, 3)), (64, (5, 5)), (128, (3, 3)), (128, (5, 5))]
    dropouts = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropouts == [0.25, 0.25, 0.25, 0.4]
    dense = [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert dense == [512, 10]
    assert model.layers[-1].activation.__name__ == "softmax"
    assert all(layer.kernel_regularizer.l2 == pytest.approx(5e-4)
               for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert model.count_params() == 1_668_906  # the normalization layer adds no parameters


def test_no_dropout_and_no_weight_decay():
    model = build_model(recipe(arch="lenet3", weight_decay=0.0, dropout=False), 10, STATS["mean"], STATS["std"], SHAPE)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    assert all(layer.kernel_regularizer is None for layer in model.layers if isinstance(layer, keras.layers.Conv2D))


def test_model_takes_raw_uint8_images_and_normalizes_them():
    import numpy as np

    model = build_model(recipe(arch="lenet2"), 10, STATS["mean"], STATS["std"], SHAPE)
    assert model.input.dtype == "uint8"
    normalize = model.get_layer("normalize")
    pixel = np.full((1, 32, 32, 3), 200, np.uint8)
    out = keras.ops.convert_to_numpy(normalize(pixel))[0, 0, 0]
    assert out == approx_float32((200 - np.array(STATS["mean"])) / np.array(STATS["std"]))


def test_fast_resnet_builds_with_batch_norm_and_residuals():
    model = build_model(recipe(arch="resnet_fast", weight_decay=5e-4, arch_options={"widths": [16, 32, 64]}),
                        100, STATS["mean"], STATS["std"], SHAPE)
    assert model.output.shape[-1] == 100
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert any(isinstance(layer, keras.layers.Add) for layer in model.layers)


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(UserError, match="unknown architecture 'lenet9'"):
        build_model(recipe(arch="lenet9"), 10, STATS["mean"], STATS["std"], SHAPE)


WHITENED = {"arch": "whitened_cnn", "weight_decay": 5e-4, "arch_options": {"widths": [16, 32, 32]}}


def test_whitened_cnn_layers():
    model = build_model(recipe(**WHITENED), 10, STATS["mean"], STATS["std"], SHAPE)
    stem = model.get_layer("whiten")
    assert not stem.trainable and stem.kernel_size == (2, 2) and stem.filters == 24
    assert conv_kernels(model)[1:] == [(16, (3, 3))] * 2 + [(32, (3, 3))] * 4
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 6 and not any(layer.scale for layer in norms)
    assert model.output.shape[-1] == 10 and model.layers[-1].dtype_policy.compute_dtype == "float32"


def test_whitening_stem_decorrelates_the_training_patches():
    import numpy as np

    from cifarflow.train.models import initialize_from_data

    rng = np.random.default_rng(1)
    noise = rng.normal(size=(200, 33, 33, 3))
    smooth = noise[:, 1:, 1:] + noise[:, :-1, :-1] + 0.5 * noise[:, 1:, 1:, ::-1]  # correlated pixels and channels
    images = np.clip(128 + 30 * smooth, 0, 255).astype(np.uint8)
    mean, std = images.mean(axis=(0, 1, 2)), images.std(axis=(0, 1, 2))
    model = build_model(recipe(**WHITENED), 10, mean, std, images.shape[1:])
    initialize_from_data(model, images, mean, std)
    stem = keras.Model(model.input, model.get_layer("whiten").output)
    out = keras.ops.convert_to_numpy(stem(images)).reshape(-1, 24).astype(np.float64)
    half = out[:, :12]
    assert_float32_close(out[:, 12:], -half, ulps=12 * SUM_ULPS)  # each filter and its negation: 2x2x3 products each
    covariance = np.cov(half, rowvar=False)
    off_diagonal = covariance - np.diag(np.diag(covariance))
    assert np.abs(off_diagonal).max() < 1e-3
    assert np.diag(covariance) == pytest.approx(np.ones(12), abs=0.05)  # eigenvalues >> eps: unit variance


def test_whitened_cnn_convolutions_can_start_as_the_identity():
    import numpy as np

    with_identity = WHITENED | {"arch_options": {"widths": [16, 32, 32], "identity_init": True}}
    model = build_model(recipe(**with_identity), 10, STATS["mean"], STATS["std"], SHAPE)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)][1:]
    for conv in convs:
        kernel = keras.ops.convert_to_numpy(conv.kernel)
        channels_in, channels_out = kernel.shape[2:]
        n = min(channels_in, channels_out)
        identity = np.zeros((3, 3, channels_in, n), dtype=np.float32)
        identity[1, 1, np.arange(n), np.arange(n)] = 1.0
        assert np.array_equal(kernel[..., :n], identity)
        rest = kernel[..., n:]
        if rest.size:  # the other filters: uniform in +-1/sqrt(fan_in), as PyTorch initializes
            assert 0 < np.abs(rest).max() <= 1 / np.sqrt(9 * channels_in)
    first = convs[0]
    x = np.random.default_rng(0).normal(size=(2, 8, 8, first.kernel.shape[2])).astype(np.float32)
    n = min(first.kernel.shape[2:])  # 24 whitened channels into 16 filters
    # 3x3x24 products, all but one with a zero weight: exact with a direct kernel, within rounding with Winograd's
    assert_float32_close(keras.ops.convert_to_numpy(first(x))[..., :n], x[..., :n], ulps=9 * 24 * SUM_ULPS)

    plain = build_model(recipe(**WHITENED), 10, STATS["mean"], STATS["std"], SHAPE)  # the default: random filters only
    kernel = keras.ops.convert_to_numpy([layer for layer in plain.layers if isinstance(layer, keras.layers.Conv2D)][1].kernel)
    assert np.count_nonzero(kernel == 0) == 0


def test_an_option_the_architecture_does_not_take_is_refused_with_its_name():
    resnet_with_a_whitening_option = {"name": "v", "arch": "resnet_fast", "arch_options": {"patch": 2, "widths": [8]}}
    with pytest.raises(UserError, match=r"v: architecture resnet_fast takes no option 'patch' \(arch_options\); "
                                        r"its options are widths, residual, stem_width, activation, logit_scale"):
        build_model(recipe(**resnet_with_a_whitening_option), 10, STATS["mean"], STATS["std"], SHAPE)
    with pytest.raises(UserError, match="takes no option 'weight_decay'"):  # the study's: a variant key, not arch_options
        build_model(recipe(arch="lenet2", arch_options={"weight_decay": 0.1}), 10, STATS["mean"], STATS["std"], SHAPE)


def test_the_study_options_reach_only_the_architectures_that_take_them():
    from cifarflow.train.architectures import architecture_and_options

    study = {"weight_decay": 5e-4, "dropout": True, "dropout_rates": {"conv": 0.1, "dense": 0.2}}
    _, lenet = architecture_and_options(recipe(**study, arch="lenet2"))
    assert lenet == {"weight_decay": 5e-4, "conv_dropout": 0.1, "dense_dropout": 0.2}
    _, resnet = architecture_and_options(recipe(**study, arch="resnet_fast", arch_options={"stem_width": 8}))
    assert resnet == {"stem_width": 8, "weight_decay": 5e-4}  # it has no dropout


def test_models_take_the_image_size_and_channels_of_their_data():
    import numpy as np

    from cifarflow.train.models import initialize_from_data

    gray = np.random.default_rng(0).integers(0, 256, size=(40, 24, 24, 1), dtype=np.uint8)
    for settings in ({"arch": "lenet2"}, {"arch": "resnet_fast", "arch_options": {"widths": [8, 8, 8]}}, WHITENED):
        model = build_model(recipe(**settings), 4, [120.0], [60.0], gray.shape[1:])
        initialize_from_data(model, gray, [120.0], [60.0])
        assert model.input.shape == (None, 24, 24, 1) and model(gray[:2]).shape == (2, 4)
    assert architecture_param_count("lenet2", (24, 24, 3)) == 2_233_898 - 512 * 64 * (8 * 8 - 6 * 6)  # a smaller dense layer
