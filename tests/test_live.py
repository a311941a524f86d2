"""Watching a training: TensorBoard events (read back with TensorBoard's own reader), the live learning-curve PNG,
a resume after a kill, and `cifarflow status` on a running or killed study."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from archives import class_images
from conftest import REPO, TINY_CONFIG
from cifarflow import cli
from cifarflow.codeinputs import package_modules
from cifarflow.config import LAST_RUN_CONFIG
from cifarflow.train.live import HPARAMS_TAG, SETTINGS_TAG, LiveView
from cifarflow.fileio import save_json
from cifarflow.data.splits import channel_stats
from cifarflow.status import study_status
from cifarflow.backend import configure_training
from cifarflow.train.checkpoints import Checkpoint
from cifarflow.train.recipe import recipe_of
from cifarflow.train.training import train_variant

tensorboard = pytest.importorskip("tensorboard", reason="the tests read the events with TensorBoard's reader")
from live_checks import FLOAT32, assert_events_match, assert_png, read_run  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import TENSORS, EventAccumulator  # noqa: E402
from tensorboard.plugins.hparams import metadata as hparams_metadata  # noqa: E402
from tensorboard.util import tensor_util  # noqa: E402

LABELS = np.arange(60) % 3
IMAGES = class_images(LABELS, np.random.default_rng(0))
SETTINGS = {
    "name": "unit", "arch": "lenet2", "weight_decay": 1e-4, "dropout": True,
    "dropout_rates": {"conv": 0.25, "dense": 0.4}, "augment": {"shift": 0.1, "flip": True, "fill": "nearest"},
    "deterministic": True, "train": {"optimizer": "adam", "lr": 1e-3, "batch_size": 16, "epochs": 3, "seed": 0},
}
RECIPE = recipe_of(SETTINGS)


class CheckedView(LiveView):
    """A LiveView that, after each epoch's update, checks the PNG is a new, complete image."""

    def __init__(self, *args):
        super().__init__(*args)
        self.pictures = []

    def epoch_end(self, history):
        super().epoch_end(history)
        self.pictures.append(assert_png(self.figure_path))


def test_training_writes_one_event_per_epoch_and_a_png_after_every_epoch(tmp_path):
    view = CheckedView(tmp_path / "tensorboard/unit", tmp_path / "logs/unit.png", SETTINGS)
    reads, training = [], True

    def read_while_training():  # a user refreshing the picture: every read must be a complete PNG
        while training:
            if view.figure_path.exists():
                try:
                    reads.append(assert_png(view.figure_path))
                except FileNotFoundError:
                    pass
            time.sleep(0.01)

    reader = threading.Thread(target=read_while_training)
    reader.start()
    try:
        _, history, _, _ = train_variant(RECIPE, (IMAGES, LABELS), (IMAGES[:30], LABELS[:30]), 3, channel_stats(IMAGES),
                                         tmp_path / "ckpt", threads=1, live=view, device=configure_training(RECIPE, threads=1))
    finally:
        training = False
        reader.join()
    assert len(view.pictures) == 3 and len(set(view.pictures)) == 3  # redrawn after each epoch
    assert reads and set(reads) <= set(view.pictures)
    assert_events_match(tmp_path / "tensorboard/unit", history)
    assert [row["learning_rate"] for row in history] == pytest.approx([1e-3] * 3, rel=FLOAT32)

    root = EventAccumulator(str(tmp_path / "tensorboard/unit"), size_guidance={TENSORS: 0}).Reload()
    [settings] = root.Tensors(SETTINGS_TAG)
    assert settings.step == 0 and '"lr": 0.001' in tensor_util.make_ndarray(settings.tensor_proto).item().decode()
    [_] = root.Tensors(HPARAMS_TAG)
    info = hparams_metadata.parse_session_start_info_plugin_data(root.SummaryMetadata(HPARAMS_TAG).plugin_data.content)
    assert info.hparams["train.lr"].number_value == pytest.approx(1e-3, rel=FLOAT32)
    assert info.hparams["augment.flip"].bool_value is True and info.group_name == "unit"


def rows(epochs, offset=0.0):
    return [{"epoch": k, "loss": 2.0 - k / 10 + offset, "accuracy": k / 10, "val_loss": 2.1 - k / 10, "val_accuracy": k / 11,
             "learning_rate": 1e-3, "images_per_second": 100.0 + k, "seconds": 10.0} for k in range(1, epochs + 1)]


def write_epochs(folder: Path, history: list[dict], until: int, epochs: int = 6) -> LiveView:
    """What a training writes: the view follows from the start, then epoch by epoch up to ``until``."""
    view = LiveView(folder / "tensorboard/unit", folder / "unit.png", SETTINGS)
    view.follow([], 0, epochs)
    for k in range(1, until + 1):
        view.epoch_end(history[:k])
    return view


def test_tiny_study_has_events_and_a_picture_of_every_training(tiny_study):
    for variant, seed in (("small", 0), ("small_augmented", 0), ("small_augmented", 1)):
        history = pd.read_csv(tiny_study / f"results/variants/{variant}/seed-{seed}/history.csv").to_dict("records")
        assert_events_match(tiny_study / f"logs/tensorboard/{variant}/seed-{seed}", history)
        assert_png(tiny_study / f"logs/train/{variant}/seed-{seed}.png")


def test_resume_drops_events_beyond_the_checkpoint_and_writes_those_a_kill_left_out(tmp_path):
    first = rows(4)
    write_epochs(tmp_path, first, until=4)
    events = tmp_path / "tensorboard/unit"
    written_at = EventAccumulator(str(events / "train"), size_guidance={TENSORS: 0}).Reload().Tensors("epoch_loss")

    # events beyond the checkpoint (epoch 2): dropped, then the resumed epochs written once
    resumed = first[:2] + rows(4, offset=0.5)[2:]
    view = LiveView(events, tmp_path / "unit.png", SETTINGS)
    view.follow(first[:2], 2, 6)
    assert_events_match(events, first[:2])
    assert_png(tmp_path / "unit.png")  # drawn from the checkpoint's history before training goes on
    for k in (3, 4):
        view.epoch_end(resumed[:k])
    assert_events_match(events, resumed)
    kept = EventAccumulator(str(events / "train"), size_guidance={TENSORS: 0}).Reload().Tensors("epoch_loss")
    assert [e.wall_time for e in kept[:2]] == [e.wall_time for e in written_at[:2]]  # kept as they were written

    # a kill after epoch 5's checkpoint, before its events: the resume writes them from the checkpoint's history
    history = resumed + rows(5)[4:]
    LiveView(events, tmp_path / "unit.png", SETTINGS).follow(history, 5, 6)
    assert_events_match(events, history)

    # a kill in the middle of writing: the cut record is dropped and written again
    train_file = max((events / "train").glob("events.out.tfevents.*"), key=lambda path: path.stat().st_mtime)
    os.truncate(train_file, train_file.stat().st_size - 5)
    LiveView(events, tmp_path / "unit.png", SETTINGS).follow(history, 5, 6)
    assert_events_match(events, history)

    # a fresh start (new settings, or a finished training run again) begins a new record
    LiveView(events, tmp_path / "unit.png", SETTINGS).follow([], 0, 6)
    assert read_run(events / "train") == {} and read_run(events / "validation") == {}
    assert len(EventAccumulator(str(events), size_guidance={TENSORS: 0}).Reload().Tensors(SETTINGS_TAG)) == 1


def test_events_need_no_tensorboard_package(tmp_path):
    """Without tensorboard installed (imports of it fail here), TensorFlow alone writes the events; hparams are
    skipped with one line."""
    program = f"""
import json, sys
sys.modules["tensorboard"] = None  # as if it were not installed: every import of it fails
sys.path.insert(0, {str(REPO / "workflow")!r})
from cifarflow.train.live import LiveView
history = json.loads({json.dumps(rows(3))!r})
view = LiveView({str(tmp_path / "tensorboard/unit")!r}, {str(tmp_path / "unit.png")!r}, {SETTINGS!r})
view.follow([], 0, 3)
for k in range(1, 4):
    view.epoch_end(history[:k])
"""
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "TensorBoard hparams skipped: the tensorboard package is not installed" in result.stdout
    assert_events_match(tmp_path / "tensorboard/unit", rows(3))
    assert HPARAMS_TAG not in EventAccumulator(str(tmp_path / "tensorboard/unit")).Reload().Tags()["tensors"]


def test_training_code_inputs_leave_out_what_only_watches():
    reached = package_modules(REPO / "workflow/scripts/train.py", REPO / "workflow/cifarflow")
    modules = {path.name for path in reached}
    assert "training.py" in modules and "models.py" in modules
    # an edit to the live view or to the figures it draws retrains nothing
    assert "live.py" not in modules and not any("report" in path.relative_to(REPO).parts for path in reached)


def write_training(folder: Path, name: str, seed: int, history: list[dict], epochs_done: int, log: str, age: float,
                   now: float):
    """The files of a training in progress: its checkpoint state and log, last written ``age`` seconds ago."""
    state = Checkpoint(folder / "checkpoints" / name / f"seed-{seed}", key="").state_file(epochs_done)
    save_json(state, {"fingerprint": "x", "epochs_done": epochs_done, "history": history})
    log_path = folder / "logs/train" / name / f"seed-{seed}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text(log)
    for path in (state, log_path):
        os.utime(path, (now - age, now - age))


def test_status_table_from_the_study_files(tmp_path):
    now = time.time()
    write_training(tmp_path, "model", 1, rows(3), 3, "epoch 3/10: loss 1.7\n", age=5, now=now)
    write_training(tmp_path, "broken", 0, rows(2), 2, "epoch 2/10: ...\nERROR: training loss became nan at epoch 3\n",
                   age=5, now=now)
    write_training(tmp_path, "killed", 0, rows(4), 4, "epoch 4/10: ...\n", age=3600, now=now)
    write_training(tmp_path, "unlisted", 7, rows(1), 1, "epoch 1/4: ...\n", age=5, now=now)  # not in the config
    finished = tmp_path / "results/variants/model/seed-0"
    save_json(finished / "training.json", {"epochs": 2, "training_seconds": 30.0})
    pd.DataFrame(rows(2)).to_csv(finished / "history.csv", index=False)
    save_json(tmp_path / "results/variants/old/training.json", {"epochs": 2})  # no seed folder: not a training
    epochs = {("model", 0): 2, ("model", 1): 10, ("broken", 0): 10, ("killed", 0): 10, ("model", 2): 10}
    table = {(t.variant, t.seed): t for t in study_status(tmp_path, epochs, now=now)}
    assert list(table) == [*epochs, ("unlisted", 7)]
    assert [t.state for t in table.values()] == ["done", "training", "failed", "stalled", "waiting", "training"]
    assert [t.epochs_done for t in table.values()] == [2, 3, 2, 4, 0, 1]
    assert table["unlisted", 7].epochs == 4  # as its log says
    running = table["model", 1]
    assert running.val_accuracy == pytest.approx(3 / 11) and running.seconds_per_epoch == pytest.approx(10.0)
    assert running.eta_seconds == pytest.approx(7 * 10.0 - 5, abs=0.01)  # 7 epochs left, 5 s into the next one
    assert table["model", 0].val_accuracy == pytest.approx(2 / 11) and table["model", 0].seconds_per_epoch == 15.0


def test_status_lists_every_configured_variant_and_seed(tmp_path, capsys):
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["seeds"] = [2, 0]
    config["variants"]["small"]["seeds"] = [5]
    config["variants"]["small_augmented"].pop("seeds", None)  # it takes the study's
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    assert cli.main(["status", "--dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "trainings of config.yaml:"
    assert [line.split()[:4] for line in lines[2:-1]] == [
        ["small", "5", "waiting", "0/2"], ["small_augmented", "0", "waiting", "0/2"], ["small_augmented", "2", "waiting", "0/2"]]
    assert lines[-1] == "3 waiting"


def test_status_shows_the_config_of_the_last_run(tmp_path, capsys):
    """A study run with --configfile: status without it lists that run's trainings, not config.yaml's."""
    config = yaml.safe_load(TINY_CONFIG.read_text())
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    last_run = dict(config, only_variants=["small"], seeds=[3])
    (tmp_path / LAST_RUN_CONFIG).parent.mkdir(parents=True)
    (tmp_path / LAST_RUN_CONFIG).write_text(yaml.safe_dump(last_run))
    assert cli.main(["status", "--dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"trainings of the config of the last run ({LAST_RUN_CONFIG}):"
    assert [line.split()[:3] for line in lines[2:-1]] == [["small", "3", "waiting"]]
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"seeds": [4]}))
    assert cli.main(["status", "--dir", str(tmp_path), "--configfile", str(other)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"trainings of config.yaml + {other}:"
    assert [line.split()[:2] for line in lines[2:-1]] == [["small", "4"], ["small_augmented", "0"], ["small_augmented", "1"]]


def test_status_imports_no_tensorflow(tmp_path):
    """On a login node, beside a running study: quick, without TensorFlow or Keras."""
    write_training(tmp_path, "running", 0, rows(3), 3, "epoch 3/10: loss 1.7\n", age=5, now=time.time())
    code = (f"import sys\nfrom cifarflow import cli\nassert cli.main(['status', '--dir', {str(tmp_path)!r}]) == 0\n"
            "heavy = {'tensorflow', 'keras', 'matplotlib'} & set(sys.modules)\nassert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO / "workflow")), timeout=120)
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()[1:3]
    assert header.split() == ["variant", "seed", "state", "epoch", "val_accuracy", "s/epoch", "ETA"]
    assert row.split()[:6] == ["running", "0", "training", "3/10", "0.2727", "10.0"]
