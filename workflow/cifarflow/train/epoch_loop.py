"""The epoch loop: Keras's ``fit`` from the first epoch not yet done, with a NaN check, the history row, the
checkpoint and a progress line after every epoch."""

import math
import time

import keras

from .checkpoints import Checkpoint
from ..errors import StageError


class EpochEnd(keras.callbacks.Callback):
    """Checks for NaN, records the epoch, saves the checkpoint and logs progress with an ETA.

    It has no per-batch hook, so Keras runs the steps without waiting on the host after each batch."""

    def __init__(self, checkpoint: Checkpoint, history: list[dict], images_per_epoch: int, total_epochs: int):
        super().__init__()
        self.checkpoint = checkpoint
        self.history = history
        self.images_per_epoch = images_per_epoch
        self.total_epochs = total_epochs

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
        row["images_per_second"] = self.images_per_epoch / train_seconds
        self.history.append(row)
        self.checkpoint.save(self.model, epoch + 1, self.history)
        left = (self.total_epochs - epoch - 1) * seconds
        print(
            f"epoch {epoch + 1}/{self.total_epochs}: loss {row.get('loss', float('nan')):.4f} "
            f"accuracy {row.get('accuracy', float('nan')):.4f} "
            f"val_loss {row.get('val_loss', float('nan')):.4f} val_accuracy {row.get('val_accuracy', float('nan')):.4f} "
            f"| {seconds:.1f} s, {row['images_per_second']:.0f} images/s, ETA {left / 60:.1f} min",
            flush=True,
        )


def run_epochs(model, stream, steps: int, validation, checkpoint: Checkpoint, history: list[dict], first_epoch: int,
               epochs: int, images_per_epoch: int, watchers: list) -> None:
    """Train epochs ``first_epoch .. epochs-1`` on ``stream`` (``steps`` batches an epoch), appending to ``history``.
    The model ends with its final weights (the moving average's, with ``ema``) even when nothing was left to train."""
    if first_epoch < epochs:
        model.fit(
            stream,
            epochs=epochs,
            initial_epoch=first_epoch,
            steps_per_epoch=steps,
            validation_data=validation,
            callbacks=[EpochEnd(checkpoint, history, images_per_epoch, epochs), *watchers],
            shuffle=False,  # the stream is already shuffled, per epoch and seeded
            verbose=2,
        )
    elif getattr(model.optimizer, "use_ema", False):
        model.optimizer.finalize_variable_values(model.trainable_variables)  # what fit does at its end
