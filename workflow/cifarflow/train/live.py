"""Watch a training while it runs: TensorBoard event files and a learning-curve PNG, both brought up to date after
every epoch, once that epoch's checkpoint is saved.

Events: ``<events_dir>/train`` and ``<events_dir>/validation`` hold one scalar per epoch (step = epoch number) under
Keras's tags (``epoch_loss``, ``epoch_accuracy``; training also ``epoch_learning_rate`` and
``epoch_images_per_second``), so TensorBoard draws training against validation in one chart. ``<events_dir>`` itself
holds the settings as text and, where the tensorboard package is installed, as hparams. A resumed training keeps the
events up to its checkpoint's epoch, drops any beyond it and writes the ones a kill left out: one value per epoch.

Neither file is a result: nothing reads them back, so this module does not count as code of the training
(``AFFECTS_RESULTS``) and an edit to it reruns nothing.
"""

import json
import os
import shutil
from pathlib import Path

AFFECTS_RESULTS = False  # see cifarflow.codeinputs

# run (subfolder) -> {TensorBoard tag: history column}
SCALARS = {
    "train": {"epoch_loss": "loss", "epoch_accuracy": "accuracy", "epoch_learning_rate": "learning_rate",
              "epoch_images_per_second": "images_per_second"},
    "validation": {"epoch_loss": "val_loss", "epoch_accuracy": "val_accuracy"},
}
SETTINGS_TAG = "settings"
HPARAMS_TAG = "_hparams_/session_start_info"  # what tensorboard's hparams summary writes


def flat_settings(settings: dict, prefix: str = "") -> dict:
    """Nested settings as one level of ``a.b`` keys with bool, int, float or str values (what hparams accept)."""
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat |= flat_settings(value, f"{prefix}{key}.")
        elif isinstance(value, (bool, int, float, str)):
            flat[f"{prefix}{key}"] = value
        else:
            flat[f"{prefix}{key}"] = json.dumps(value)
    return flat


def atomic_figure(draw, path: Path) -> None:
    """Call ``draw(temporary path)``, then rename the file into place: a reader never sees a half-written PNG."""
    path = Path(path)
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    draw(tmp)
    os.replace(tmp, path)


class EventLog:
    """The TensorBoard runs of one training, written with TensorFlow's summary ops (no tensorboard package needed)."""

    def __init__(self, folder: Path, settings: dict):
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        self.tf, self.folder, self.settings = tf, Path(folder), settings
        self.writers, self.present = {}, set()
        plugin = summary_pb2.SummaryMetadata.PluginData
        self.scalar_metadata = summary_pb2.SummaryMetadata(plugin_data=plugin(plugin_name="scalars"),
                                                           data_class=summary_pb2.DATA_CLASS_SCALAR)
        self.text_metadata = summary_pb2.SummaryMetadata(plugin_data=plugin(plugin_name="text"),
                                                         data_class=summary_pb2.DATA_CLASS_TENSOR)

    def writer(self, run: str):
        if run not in self.writers:
            self.writers[run] = self.tf.summary.create_file_writer(str(self.folder / run))
        return self.writers[run]

    def keep_until(self, epochs_done: int) -> None:
        """Remove every event after epoch ``epochs_done`` (all of them for a fresh start) and any record a kill cut
        short; remember the (run, tag, step) summaries that remain."""
        from tensorflow.core.util import event_pb2

        self.present = set()
        if epochs_done == 0:
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        for path in sorted(self.folder.rglob("events.out.tfevents.*")):
            run = "" if path.parent == self.folder else path.parent.relative_to(self.folder).as_posix()
            kept, complete = [], True
            try:
                for record in self.tf.data.TFRecordDataset(str(path)):
                    event = event_pb2.Event.FromString(record.numpy())
                    if event.step <= epochs_done:
                        kept.append(record.numpy())
                        self.present |= {(run, value.tag, event.step) for value in event.summary.value}
                    else:
                        complete = False
            except self.tf.errors.DataLossError:  # the last record was cut short
                complete = False
            if not complete:
                tmp = path.with_name("rewrite.tmp")
                with self.tf.io.TFRecordWriter(str(tmp)) as out:
                    for record in kept:
                        out.write(record)
                os.replace(tmp, path)

    def write(self, history: list[dict]) -> None:
        """Write the settings (step 0) and every epoch of ``history``, each summary unless it is there already."""
        tf = self.tf
        if ("", SETTINGS_TAG, 0) not in self.present:
            text = "    " + json.dumps(self.settings, indent=2).replace("\n", "\n    ")  # a Markdown code block
            with self.writer("").as_default():
                tf.summary.write(SETTINGS_TAG, tf.constant(text), step=0, metadata=self.text_metadata)
                self.write_hparams()
            self.present |= {("", SETTINGS_TAG, 0), ("", HPARAMS_TAG, 0)}
        for run, tags in SCALARS.items():
            with self.writer(run).as_default():
                for row in history:
                    for tag, column in tags.items():
                        if column in row and (run, tag, row["epoch"]) not in self.present:
                            tf.summary.write(tag, tf.constant(row[column], tf.float32), step=row["epoch"],
                                             metadata=self.scalar_metadata)
                            self.present.add((run, tag, row["epoch"]))
        for writer in self.writers.values():
            writer.flush()

    def write_hparams(self) -> None:
        if ("", HPARAMS_TAG, 0) in self.present:
            return
        try:
            from tensorboard.plugins.hparams import api as hparams
        except ImportError:
            print("TensorBoard hparams skipped: the tensorboard package is not installed (the settings are in the "
                  "event files as text)")
            return
        hparams.hparams(flat_settings(self.settings), trial_id=self.settings["name"])

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


class LiveView:
    """What a user can watch while a training runs: TensorBoard events in ``events_dir`` and the learning curves in
    ``figure_path``. ``follow`` brings both up to date with a resumed history and returns the Keras callback that
    updates them after every epoch."""

    def __init__(self, events_dir: Path, figure_path: Path, settings: dict):
        self.events_dir, self.figure_path, self.settings = Path(events_dir), Path(figure_path), settings
        self.events = None
        self.total_epochs = None

    def follow(self, history: list[dict], epochs_done: int, total_epochs: int) -> list:
        """Call before training, with the checkpoint's history; the returned callback must run after the one that
        saves the checkpoint (Keras calls callbacks in list order)."""
        import keras

        self.total_epochs = total_epochs
        if keras.backend.backend() == "tensorflow":
            self.events = EventLog(self.events_dir, self.settings)
            self.events.keep_until(epochs_done)
            self.events.write(history[:epochs_done])
            # events_dir is <logdir>/{variant}/seed-{seed}: the logdir shows every training, the HParams tab compares them
            logdir = self.events_dir.parents[1]
            print(f"TensorBoard events in {self.events_dir}; watch with: tensorboard --logdir {logdir}")
        else:
            print(f"TensorBoard events skipped: they need TensorFlow, and the Keras backend is {keras.backend.backend()}")
        print(f"learning curves redrawn after every epoch in {self.figure_path}", flush=True)
        if history:
            self.draw(history)
        view = self

        class Watch(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                view.epoch_end(history)

            def on_train_end(self, logs=None):
                if view.events:
                    view.events.close()

        return [Watch()]

    def epoch_end(self, history: list[dict]) -> None:
        if self.events:
            self.events.write(history[-1:])
        self.draw(history)

    def draw(self, history: list[dict]) -> None:
        import pandas as pd

        # the report's figure; imported at the first epoch's end, once
        from ..report.figures.style import save
        from ..report.figures.training import learning_curves

        name = self.settings["name"]
        figure = learning_curves(pd.DataFrame(history), name, total_epochs=self.total_epochs)
        atomic_figure(lambda path: save(figure, path), self.figure_path)
