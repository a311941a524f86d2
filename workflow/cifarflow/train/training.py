"""Train one variant from its recipe: data, model (new or resumed from its checkpoint), optimizer, the epoch loop,
precise batch norm, a summary. Seeds, threads and device are set up before (``backend.configure_training``)."""

import time
from pathlib import Path

import numpy as np

from ..backend import software_versions
from .checkpoints import Checkpoint, fingerprint
from .epoch_loop import run_epochs
from .optimizers import make_optimizer
from .recipe import Recipe, Train, recipe_record


def compile_model(model, train: Train, steps_per_epoch: int) -> None:
    """The optimizer, loss and metric every training of a variant uses (the pipeline's and the benchmark's)."""
    import keras

    model.compile(
        optimizer=make_optimizer(train, steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=train.label_smoothing),
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


def new_model(recipe: Recipe, images: np.ndarray, num_classes: int, stats: dict):
    """The variant's untrained model, its data-dependent layers set from the training images."""
    from .models import build_model, initialize_from_data

    model = build_model(recipe, num_classes, stats["mean"], stats["std"], images.shape[1:])
    initialize_from_data(model, images, stats["mean"], stats["std"])
    return model


def training_summary(recipe: Recipe, model, history: list[dict], *, device: str, threads: int, first_epoch: int,
                     train_images: int, images_per_epoch: int, wall_seconds: float) -> dict:
    """What training.json records of a training: where it ran, how long, how fast, the model's size, its recipe."""
    import keras

    fitting = sum(r["train_seconds"] for r in history)
    return {
        "variant": recipe.name,
        "device": device,
        "precision": keras.mixed_precision.global_policy().name,
        "threads": threads,
        "epochs": recipe.train.epochs,
        "resumed_after_epoch": first_epoch,
        "train_images": train_images,
        "training_seconds": sum(r["seconds"] for r in history),
        "wall_seconds_this_run": wall_seconds,
        "images_per_second": images_per_epoch * len(history) / fitting if fitting else None,
        "parameters": int(model.count_params()),
        "software": software_versions(),
        "recipe": recipe_record(recipe),
    }


def input_pipeline():
    """(training stream, validation data) functions for the Keras backend in use: tf.data under TensorFlow, the
    numpy stream of ``array_inputs`` under other backends, where tf.data cannot feed the model."""
    import keras

    if keras.backend.backend() == "tensorflow":
        from .inputs import evaluation_dataset, training_dataset

        return training_dataset, evaluation_dataset
    from .array_inputs import evaluation_arrays, training_batches

    return training_batches, evaluation_arrays


def train_variant(recipe: Recipe, train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
                  num_classes: int, stats: dict, checkpoint_dir: Path, threads: int = 1, live=None, *, device: str):
    """Train (or resume) one variant on the ``device`` that ``backend.configure_training`` set up; returns (model,
    history rows, summary dict, checkpoint). ``live`` (a ``live.LiveView``) shows each epoch once its checkpoint is
    saved; the caller clears the checkpoint once it has saved the model."""
    from .inputs_common import full_batches

    epochs, seed = recipe.train.epochs, recipe.train.seed
    limit = recipe.max_train_images  # None: all
    x_train, y_train = train[0][:limit], train[1][:limit]
    checkpoint = Checkpoint(checkpoint_dir, fingerprint(recipe_record(recipe), stats, x_train, y_train, *val))
    state = checkpoint.load_state()
    if state:
        model, history, first_epoch = checkpoint.load_model(state), state["history"], state["epochs_done"]
        print(f"resuming from the checkpoint after epoch {first_epoch} of {epochs}")
    else:
        model, history, first_epoch = new_model(recipe, x_train, num_classes, stats), [], 0
    training_stream, evaluation_data = input_pipeline()
    monitored = recipe.epoch_validation_images or len(val[1])  # the validate stage scores them all
    validation = evaluation_data(val[0][:monitored], val[1][:monitored], num_classes)
    stream, steps = training_stream(x_train, y_train, num_classes, recipe.train.batch_size, seed, first_epoch, epochs,
                                    recipe.augment)
    batch_size, _ = full_batches(len(y_train), recipe.train.batch_size)
    if not state:
        compile_model(model, recipe.train, steps)
    model.summary(print_fn=lambda line, **_: print(line))
    print(f"training {recipe.name} on {device} with {threads} thread(s): {len(y_train)} images, "
          f"{epochs} epochs of {steps} full batches of {batch_size}", flush=True)
    watchers = live.follow(history, first_epoch, epochs) if live else []
    started = time.monotonic()
    run_epochs(model, stream, steps, validation, checkpoint, history, first_epoch, epochs, steps * batch_size, watchers)
    calibration = recipe.train.batchnorm_recalibration
    if calibration and recalibrate_batchnorm(model, x_train[:calibration]):
        print(f"batch-norm statistics recomputed on {min(calibration, len(x_train))} training images (not augmented)")
    summary = training_summary(recipe, model, history, device=device, threads=threads, first_epoch=first_epoch,
                               train_images=int(len(y_train)), images_per_epoch=steps * batch_size,
                               wall_seconds=time.monotonic() - started)
    return model, history, summary, checkpoint
