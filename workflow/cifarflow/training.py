"""Train one variant: seeded, thread-limited, resumable after a kill, stopped with a clear error on a NaN loss."""

import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np

from .backend import configure_backend
from .errors import StageError
from .fileio import save_json


def software_versions() -> dict:
    import importlib
    import importlib.metadata
    import platform
    import sys

    import keras

    versions = {"python": sys.version.split()[0], "keras_backend": keras.backend.backend(),
                "platform": platform.platform(), "processor": platform.machine()}
    backend = keras.backend.backend()
    versions[backend] = importlib.import_module(backend).__version__
    for package in ("keras", "numpy", "scikit-learn"):
        versions[package] = importlib.metadata.version(package)
    return versions


def make_optimizer(train: dict, steps_per_epoch: int):
    import keras

    lr = train["lr"]
    total_steps = train["epochs"] * steps_per_epoch
    schedule = train.get("schedule", "constant")
    if "warmup_fraction" in train:  # scales with the epochs, so a budget or a benchmark keeps the schedule's shape
        warmup = int(train["warmup_fraction"] * total_steps)
    else:
        warmup = int(train.get("warmup_epochs", 0) * steps_per_epoch)
    if schedule == "triangular":
        from .optimizers import Triangular

        lr = Triangular(lr, total_steps, warmup, train.get("initial_lr_fraction", 0.2), train.get("final_lr_fraction", 0.0))
    elif schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=lr * train.get("initial_lr_fraction", 0.1) if warmup else lr,
            decay_steps=max(1, total_steps - warmup),
            alpha=train.get("final_lr_fraction", 0.0),
            warmup_target=lr if warmup else None,
            warmup_steps=warmup,
        )
    ema = {"use_ema": True, "ema_momentum": train["ema"]} if train.get("ema") else {}
    name = train["optimizer"]
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr, **ema)
    if name == "sgd":
        from .optimizers import BiasScaledSGD

        return BiasScaledSGD(learning_rate=lr, momentum=train.get("momentum", 0.9), nesterov=train.get("nesterov", True),
                             bias_lr_scale=train.get("bias_lr_scale", 1.0), **ema)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr, **ema)
    raise ValueError(f"unknown optimizer {name!r}; use adam, sgd or rmsprop")


def compile_model(model, train: dict, steps_per_epoch: int) -> None:
    """The optimizer, loss and metric every training of a variant uses (the pipeline's and the benchmark's)."""
    import keras

    model.compile(
        optimizer=make_optimizer(train, steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=train.get("label_smoothing", 0.0)),
        metrics=["accuracy"],
    )


def recalibrate_batchnorm(model, images: np.ndarray, batch_size: int = 500) -> int:
    """Precise batch norm: replace each batch-norm layer's moving statistics, which trail the weights while the
    learning rate is high, by the mean of its batch statistics over ``images`` under the final weights.
    Returns the number of layers recalibrated."""
    import keras

    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for k, start in enumerate(range(0, len(images) if norms else 0, batch_size)):
        for layer in norms:
            layer.momentum = k / (k + 1)  # moving = running mean of the batch statistics so far
        model(images[start:start + batch_size], training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum
    return len(norms)


def fingerprint(settings: dict, stats: dict, *arrays: np.ndarray) -> str:
    """Identifies what a checkpoint was trained with (settings, normalization and every byte of the given data); a
    checkpoint of other settings or data is never resumed."""
    digest = hashlib.sha256(json.dumps({"settings": settings, "stats": stats}, sort_keys=True).encode())
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()[:16]


def _random_states(model) -> list:
    """The state variables of the model's seed generators (dropout), in layer order."""
    return [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]


class Checkpoint:
    """The model (with optimizer state) and history after the last completed epoch.

    Each epoch is written into a folder of its own (``epoch_0003/`` holding ``model.keras`` and ``state.json``),
    built under a temporary name and renamed into place in one step, then the older epochs are removed: a kill at any
    moment leaves model and state of one and the same epoch, never a mix."""

    def __init__(self, folder: Path, key: str):
        self.folder = Path(folder)
        self.key = key

    def epochs(self) -> list[Path]:
        """Complete epoch folders, newest first."""
        return sorted(self.folder.glob("epoch_[0-9][0-9][0-9][0-9]"), reverse=True)

    def state_file(self, epoch: int) -> Path:
        return self.folder / f"epoch_{epoch:04d}" / "state.json"

    def latest_state_file(self) -> Path | None:
        """The state of the newest complete epoch (whatever it was trained with), or None."""
        latest = self.epochs()[:1]
        return latest[0] / "state.json" if latest else None

    def load_model(self, state: dict):
        """The checkpoint's model with its optimizer, and the random state of its dropout layers, which a saved
        Keras model does not keep: without it a resumed run would drop other units than an uninterrupted one."""
        import keras

        from . import optimizers  # noqa: F401 - registers what a checkpoint's optimizer may use

        model = keras.models.load_model(self.epochs()[0] / "model.keras")
        for variable, value in zip(_random_states(model), state["random_states"], strict=True):
            variable.assign(np.asarray(value, dtype=variable.dtype))
        return model

    def load_state(self) -> dict | None:
        latest = self.latest_state_file()
        if latest is None:
            return None
        state = json.loads(latest.read_text())
        if state.get("fingerprint") != self.key:
            print(f"checkpoint in {self.folder} was made with other settings or data: starting over")
            return None
        return state

    def save(self, model, epoch: int, history: list[dict]) -> None:
        final = self.folder / f"epoch_{epoch:04d}"
        building = self.folder / f".{final.name}.partial"
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        model.save(building / "model.keras")
        random_states = [variable.numpy().tolist() for variable in _random_states(model)]
        save_json(building / "state.json", {"fingerprint": self.key, "epochs_done": epoch, "history": history,
                                            "random_states": random_states})
        shutil.rmtree(final, ignore_errors=True)
        os.rename(building, final)
        for older in self.epochs()[1:]:
            shutil.rmtree(older, ignore_errors=True)

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _epoch_callback(checkpoint: Checkpoint, history: list[dict], images_per_epoch: int, total_epochs: int):
    import keras

    class EpochEnd(keras.callbacks.Callback):
        """Checks for NaN, records the epoch, saves the checkpoint and logs progress with an ETA.

        It has no per-batch hook, so Keras runs the steps without waiting on the host after each batch."""

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.monotonic()
            self.trained_until = None

        def on_test_begin(self, logs=None):  # validation follows the epoch's training steps
            self.trained_until = self.trained_until or time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            loss = float((logs or {}).get("loss", 0.0))
            if not math.isfinite(loss):
                raise StageError(
                    f"training loss became {loss} at epoch {epoch + 1}: the run diverged (lower the learning rate or "
                    "the weight decay); the last good epoch stays in the checkpoint"
                )
            seconds = time.monotonic() - self.started
            train_seconds = (self.trained_until or time.monotonic()) - self.started
            row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
            row["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            row["seconds"] = seconds
            row["train_seconds"] = train_seconds
            row["images_per_second"] = images_per_epoch / train_seconds
            history.append(row)
            checkpoint.save(self.model, epoch + 1, history)
            left = (total_epochs - epoch - 1) * seconds
            print(
                f"epoch {epoch + 1}/{total_epochs}: loss {row.get('loss', float('nan')):.4f} "
                f"accuracy {row.get('accuracy', float('nan')):.4f} "
                f"val_loss {row.get('val_loss', float('nan')):.4f} val_accuracy {row.get('val_accuracy', float('nan')):.4f} "
                f"| {seconds:.1f} s, {row['images_per_second']:.0f} images/s, ETA {left / 60:.1f} min",
                flush=True,
            )

    return EpochEnd()


def train_variant(
    settings: dict,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    num_classes: int,
    stats: dict,
    checkpoint_dir: Path,
    threads: int = 1,
    live=None,
):
    """Train (or resume) one variant; returns (model, history rows, summary dict). ``live`` (a ``live.LiveView``)
    shows each epoch once its checkpoint is saved."""
    import keras

    from .inputs_common import full_batches, input_pipeline
    from .models import build_model, initialize_from_data

    train_settings = settings["train"]
    device = configure_backend(threads, train_settings["seed"], settings.get("deterministic", True),
                                  train_settings.get("mixed_precision", False))
    x_train, y_train = train
    limit = settings.get("max_train_images")
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
    epochs = train_settings["epochs"]
    checkpoint = Checkpoint(checkpoint_dir, fingerprint(settings, stats, x_train, y_train, *val))
    state = checkpoint.load_state()
    if state:
        model = checkpoint.load_model(state)
        history, first_epoch = state["history"], state["epochs_done"]
        print(f"resuming from the checkpoint after epoch {first_epoch} of {epochs}")
    else:
        model = build_model(settings, num_classes, stats["mean"], stats["std"])
        initialize_from_data(model, x_train, stats["mean"], stats["std"])
        history, first_epoch = [], 0
    training_dataset, evaluation_data = input_pipeline()
    monitored = settings.get("epoch_validation_images") or len(val[1])  # the validate stage scores them all
    validation = evaluation_data(val[0][:monitored], val[1][:monitored], num_classes)
    dataset, steps = training_dataset(x_train, y_train, num_classes, train_settings["batch_size"], train_settings["seed"],
                                      first_epoch, epochs, settings.get("augment"))
    batch_size, _ = full_batches(len(y_train), train_settings["batch_size"])
    images_per_epoch = steps * batch_size
    if not state:
        compile_model(model, train_settings, steps)
    model.summary(print_fn=lambda line, **_: print(line))
    print(f"training {settings.get('name', '')} on {device} with {threads} thread(s): {len(y_train)} images, "
          f"{epochs} epochs of {steps} full batches of {images_per_epoch // steps}", flush=True)
    watchers = live.follow(history, first_epoch, epochs) if live else []
    started = time.monotonic()
    if first_epoch < epochs:
        model.fit(
            dataset,
            epochs=epochs,
            initial_epoch=first_epoch,
            steps_per_epoch=steps,
            validation_data=validation,
            callbacks=[_epoch_callback(checkpoint, history, images_per_epoch, epochs), *watchers],
            shuffle=False,  # the stream is already shuffled, per epoch and seeded
            verbose=2,
        )
    if first_epoch >= epochs and getattr(model.optimizer, "use_ema", False):
        model.optimizer.finalize_variable_values(model.trainable_variables)  # what fit does at its end
    calibration = train_settings.get("batchnorm_recalibration", 0)
    if calibration and recalibrate_batchnorm(model, x_train[:calibration]):
        print(f"batch-norm statistics recomputed on {min(calibration, len(x_train))} training images (not augmented)")
    wall = time.monotonic() - started
    trained = sum(r["seconds"] for r in history)
    fitting = sum(r["train_seconds"] for r in history)
    summary = {
        "variant": settings.get("name"),
        "device": device,
        "precision": keras.mixed_precision.global_policy().name,
        "threads": threads,
        "epochs": epochs,
        "resumed_after_epoch": first_epoch,
        "train_images": int(len(y_train)),
        "training_seconds": trained,
        "wall_seconds_this_run": wall,
        "images_per_second": images_per_epoch * len(history) / fitting if fitting else None,
        "parameters": int(model.count_params()),
        "software": software_versions(),
    }
    return model, history, summary, checkpoint
