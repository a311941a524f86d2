"""Training one variant: fixed seeds give the same result, a diverging run stops with a clear error."""

from pathlib import Path

import numpy as np
import pytest

from archives import class_images
from cifarflow.errors import StageError
from cifarflow.data.splits import channel_stats
from cifarflow.backend import configure_training
from cifarflow.train.checkpoints import Checkpoint, fingerprint
from cifarflow.train.training import train_variant
from floats import SUM_ULPS, approx_float32, assert_float32_close
from cifarflow.train.recipe import recipe_of, recipe_record
from recipes import recipe

LABELS = np.arange(60) % 3
IMAGES = class_images(LABELS, np.random.default_rng(0))
STATS = channel_stats(IMAGES)


def settings(**train):
    return {
        "name": "unit", "arch": "lenet2", "weight_decay": 1e-4, "dropout": True,
        "dropout_rates": {"conv": 0.25, "dense": 0.4}, "augment": {"shift": 0.1, "flip": True, "fill": "nearest"},
        "deterministic": True,
        "train": {"optimizer": "adam", "lr": 1e-3, "batch_size": 16, "epochs": 2, "seed": 0} | train,
    }


def run(tmp_path, variant, images=IMAGES):
    """A training as the train script runs it: the variant's recipe, the backend set up for it, then the training."""
    recipe = recipe_of(variant)
    return train_variant(recipe, (images, LABELS), (IMAGES[:30], LABELS[:30]), 3, STATS, tmp_path / "ckpt", threads=1,
                         device=configure_training(recipe, threads=1))


def test_same_settings_give_the_same_history(tmp_path):
    _, first, summary, checkpoint = run(tmp_path, settings())
    checkpoint.clear()
    _, second, _, _ = run(tmp_path, settings())
    keys = ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert [[row[k] for k in keys] for row in first] == [[row[k] for k in keys] for row in second]
    assert summary["epochs"] == 2 and summary["software"]["tensorflow"]
    assert len(first) == 2 and first[0]["images_per_second"] > 0


def test_checkpoint_after_each_epoch_is_resumed(tmp_path):
    _, history, _, checkpoint = run(tmp_path, settings())
    state = checkpoint.load_state()
    assert state["epochs_done"] == 2 and len(state["history"]) == 2
    _, resumed, summary, _ = run(tmp_path, settings())  # nothing left to train: history comes from the checkpoint
    assert summary["resumed_after_epoch"] == 2 and resumed == history


def test_checkpoint_of_other_settings_is_not_resumed(tmp_path):
    run(tmp_path, settings())
    data = (IMAGES, LABELS, IMAGES[:30], LABELS[:30])
    def saved(variant):
        return Checkpoint(tmp_path / "ckpt", fingerprint(recipe_record(recipe_of(variant)), STATS, *data)).load_state()

    assert saved(settings()) is not None
    assert saved(settings(lr=5e-4)) is None


def test_checkpoint_of_other_data_with_the_same_size_and_statistics_is_not_resumed(tmp_path, capsys):
    mirrored = IMAGES[:, :, ::-1]  # other images, the same count, per-channel mean and std
    assert channel_stats(mirrored) == STATS
    run(tmp_path, settings())
    capsys.readouterr()
    _, _, summary, _ = run(tmp_path, settings(), mirrored)
    assert summary["resumed_after_epoch"] == 0
    assert "was made with other settings or data: starting over" in capsys.readouterr().out


def test_nan_loss_stops_with_a_clear_error(tmp_path):
    with pytest.raises(StageError, match=r"training loss became (nan|inf) at epoch 1.*lower the learning rate"):
        run(tmp_path, settings(optimizer="sgd", lr=1e12))


def test_triangular_schedule_rises_to_the_peak_then_falls():
    from cifarflow.train.optimizers import Triangular

    schedule = Triangular(peak=2.0, total_steps=100, peak_step=20, initial_fraction=0.2, final_fraction=0.1)
    values = [float(schedule(step)) for step in (0, 10, 20, 60, 100, 120)]
    assert values == approx_float32([0.4, 1.2, 2.0, 1.1, 0.2, 0.2])
    assert Triangular.from_config(schedule.get_config()).get_config() == schedule.get_config()


def learning_rate_at(optimizer, step: int) -> float:
    optimizer.iterations.assign(step)
    return float(optimizer.learning_rate)


@pytest.mark.parametrize("epochs", [10, 30])
def test_warmup_fraction_keeps_the_schedules_shape_when_the_epochs_change(epochs):
    from cifarflow.train.optimizers import make_optimizer
    from cifarflow.train.recipe import Train

    train = {"optimizer": "sgd", "lr": 1.0, "epochs": epochs, "schedule": "triangular", "warmup_fraction": 0.25,
             "initial_lr_fraction": 0.2, "final_lr_fraction": 0.0}
    optimizer = make_optimizer(Train(**train, batch_size=8, seed=0), steps_per_epoch=8)
    peak = 2 * epochs  # a quarter of 8 * epochs steps
    assert [learning_rate_at(optimizer, step) for step in (0, peak, 8 * epochs)] == approx_float32([0.2, 1.0, 0.0])
    assert learning_rate_at(optimizer, peak - 1) < 1.0
    by_epochs = {key: value for key, value in train.items() if key != "warmup_fraction"} | {"warmup_epochs": 1}
    assert learning_rate_at(make_optimizer(Train(**by_epochs, batch_size=8, seed=0), steps_per_epoch=8), 8) == approx_float32(1.0)


def test_bias_scaled_sgd_speeds_up_batch_norm_shifts_only():
    import keras

    from cifarflow.train.optimizers import BiasScaledSGD

    def one_step(optimizer):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization(),
                                  keras.layers.Dense(2)])
        before = [v.numpy().copy() for v in model.trainable_variables]
        model.compile(optimizer=optimizer, loss="mse")
        model.train_on_batch(np.arange(32, dtype="float32").reshape(8, 4) / 32, np.ones((8, 2), "float32"))
        return [(v.path.endswith("beta"), v.numpy() - b) for v, b in zip(model.trainable_variables, before)]

    plain = one_step(keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True))
    scaled = one_step(BiasScaledSGD(bias_lr_scale=8.0, learning_rate=0.1, momentum=0.9, nesterov=True))
    for (is_shift, delta), (_, scaled_delta) in zip(plain, scaled):
        assert_float32_close(scaled_delta, (8.0 if is_shift else 1.0) * delta, ulps=16)
    assert any(is_shift and np.abs(delta).max() > 0 for is_shift, delta in plain)


def test_run_killed_mid_way_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch):
    """The airbench-style recipe (triangular schedule, bias-scaled SGD, whitening stem) resumes exactly."""
    fast = settings(optimizer="sgd", lr=0.2, momentum=0.85, bias_lr_scale=8.0, schedule="triangular", warmup_epochs=1,
                    epochs=3, label_smoothing=0.2) | {"arch": "whitened_cnn", "arch_options": {"widths": [8, 16, 16]},
                                                        "augment": {"shift": 2, "flip": True, "fill": "reflect"}}
    _, uninterrupted, _, checkpoint = run(tmp_path, fast)
    checkpoint.clear()

    save = Checkpoint.save

    def killed_after_first_epoch(self, model, epoch, history):
        save(self, model, epoch, history)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(Checkpoint, "save", killed_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, fast)
    monkeypatch.setattr(Checkpoint, "save", save)
    _, resumed, summary, _ = run(tmp_path, fast)
    assert summary["resumed_after_epoch"] == 1
    keys = ["loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"]
    assert [[row[k] for k in keys] for row in resumed] == [[row[k] for k in keys] for row in uninterrupted]


def test_a_kill_between_writing_the_model_and_its_state_resumes_the_last_complete_epoch(tmp_path, monkeypatch):
    """Killed after epoch 2's model file is written but before its state: the checkpoint still holds epoch 1
    (model and state together), and the resumed run ends exactly where an uninterrupted one does."""
    from cifarflow.train import checkpoints

    _, uninterrupted, _, checkpoint = run(tmp_path, settings(epochs=3))
    checkpoint.clear()
    save_json = checkpoints.save_json

    def killed_writing_epoch_2(path, data):
        if data.get("epochs_done") == 2:
            assert (Path(path).parent / "model.keras").exists()  # the model of epoch 2 is on disk already
            raise KeyboardInterrupt("killed")
        save_json(path, data)

    monkeypatch.setattr(checkpoints, "save_json", killed_writing_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, settings(epochs=3))
    monkeypatch.setattr(checkpoints, "save_json", save_json)
    assert [folder.name for folder in checkpoint.epochs()] == ["epoch_0001"]
    _, resumed, summary, _ = run(tmp_path, settings(epochs=3))
    assert summary["resumed_after_epoch"] == 1
    keys = ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert [[row[k] for k in keys] for row in resumed] == [[row[k] for k in keys] for row in uninterrupted]
    assert not list(checkpoint.folder.glob(".*partial"))  # the half-written epoch was cleaned up by the next save


def test_bfloat16_only_where_the_hardware_computes_it():
    import keras

    from cifarflow.backend import configure_backend, cpu_has_bfloat16

    configure_backend(1, 0, True, mixed_precision=True)
    assert keras.mixed_precision.global_policy().name == ("mixed_bfloat16" if cpu_has_bfloat16() else "float32")
    configure_backend(1, 0, True, mixed_precision=False)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_batchnorm_recalibration_uses_the_final_weights_statistics():
    import keras

    from cifarflow.train.models import build_model
    from cifarflow.train.training import recalibrate_batchnorm

    model = build_model(recipe(arch="whitened_cnn", arch_options={"widths": [8, 16, 16]}), 3, STATS["mean"], STATS["std"],
                        IMAGES.shape[1:])
    first = next(layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    first.moving_mean.assign(np.full(first.moving_mean.shape, 7.0, "float32"))  # stale statistics
    assert recalibrate_batchnorm(model, IMAGES, batch_size=20) == 6
    inputs = keras.ops.convert_to_numpy(keras.Model(model.input, first.input)(IMAGES))
    # a running mean over 3 batches of per-batch means over 20 images x H x W positions
    assert_float32_close(keras.ops.convert_to_numpy(first.moving_mean), inputs.mean(axis=(0, 1, 2)), ulps=64 * SUM_ULPS)
    assert first.momentum == 0.4  # the layer's own momentum is back


def test_epoch_curves_can_score_fewer_validation_images_than_selection(tmp_path):
    variant = settings(epochs=1) | {"epoch_validation_images": 12}
    model, history, _, _ = run(tmp_path, variant)
    onehot = np.eye(3, dtype=np.float32)[LABELS[:12]]
    loss, accuracy = model.evaluate(IMAGES[:12], onehot, verbose=0)  # the model is the one after the epoch's curve point
    assert history[-1]["val_accuracy"] == approx_float32(accuracy, 1.0)
    assert history[-1]["val_loss"] == approx_float32(loss, 12 * SUM_ULPS)
