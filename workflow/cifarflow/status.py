"""Progress of a study's trainings, read from the files a running study writes (``cifarflow status``).

Per training (a variant and a seed): ``results/variants/{variant}/seed-{seed}/training.json`` (finished),
``checkpoints/{variant}/seed-{seed}/`` (the last completed epoch, with the history and each epoch's seconds) and
``logs/train/{variant}/seed-{seed}.log`` (the job started; an ``ERROR:`` last line when it failed). It reads files
only, so it works from any machine that sees the study's folder, while a local or SLURM run goes on.
"""

import csv
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .config import training_results

STALLED_AFTER_SECONDS = 600  # no new epoch for this long (or 3 epochs' time, whichever is longer): the job stopped
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+):", re.M)
START_LINE = re.compile(r"^training \S* on .*?: \d+ images, (\d+) epochs", re.M)
FINISHED_LINE = "trained in "  # the train script's last line
SEED_FOLDER = re.compile(r"^seed-(\d+)$")


@dataclass
class Training:
    variant: str
    seed: int
    state: str  # done, training, stalled, failed, waiting
    epochs_done: int
    epochs: int | None
    val_accuracy: float | None = None
    seconds_per_epoch: float | None = None
    eta_seconds: float | None = None


def checkpoint_state_file(folder: Path) -> Path | None:
    """Where a training's checkpoint keeps the state of its newest epoch (``epochs_done``, ``history``), if it has
    one: the Checkpoint class knows."""
    from .train.checkpoints import Checkpoint

    return Checkpoint(folder, key="").latest_state_file()


def checkpoint_state(folder: Path) -> dict | None:
    path = checkpoint_state_file(folder)
    try:
        return json.loads(path.read_text()) if path else None
    except (OSError, ValueError):
        return None


def study_config(directory: Path, configfiles: list[Path], replace: bool) -> tuple[dict, str]:
    """(the study's config, which one it is): with ``--configfile`` files, DIR/config.yaml with them merged in as
    snakemake does; without, the config the last run used (``LAST_RUN_CONFIG``), else DIR/config.yaml."""
    import yaml

    from .config import LAST_RUN_CONFIG, deep_merge

    directory = Path(directory)
    last_run = directory / LAST_RUN_CONFIG
    if not configfiles and not replace and last_run.exists():
        return yaml.safe_load(last_run.read_text()), f"the config of the last run ({LAST_RUN_CONFIG})"
    config_path = directory / "config.yaml"
    config = {} if replace or not config_path.exists() else yaml.safe_load(config_path.read_text())
    for path in configfiles:
        config = deep_merge(config, yaml.safe_load(Path(path).read_text()))
    sources = ([] if replace or not config_path.exists() else ["config.yaml"]) + [str(path) for path in configfiles]
    return config, " + ".join(sources) or "no config"


def configured_epochs(config: dict) -> dict[tuple[str, int], int]:
    """Each (variant, seed) of the study's config and its epochs."""
    from .config import all_variants, variant_seeds

    if not config.get("variants"):
        return {}
    variants = all_variants(config)
    return {(name, seed): variants[name]["train"]["epochs"] for name, seeds in variant_seeds(config).items()
            for seed in seeds}


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def _finished(directory: Path, name: str, seed: int) -> Training | None:
    folder = training_results(directory, name, seed)
    try:
        summary = json.loads((folder / "training.json").read_text())
        with open(folder / "history.csv", newline="") as file:
            rows = list(csv.DictReader(file))
    except (OSError, ValueError):
        return None
    epochs = summary.get("epochs")
    seconds = summary.get("training_seconds")
    return Training(name, seed, "done", len(rows), epochs, float(rows[-1]["val_accuracy"]) if rows else None,
                    seconds / len(rows) if seconds and rows else None, 0.0)


def training_status(directory: Path, name: str, seed: int, epochs: int | None = None, now: float | None = None) -> Training:
    directory, now = Path(directory), time.time() if now is None else now
    checkpoint_folder = directory / "checkpoints" / name / f"seed-{seed}"
    state = checkpoint_state(checkpoint_folder)
    log_path = directory / "logs" / "train" / name / f"seed-{seed}.log"
    try:
        log = log_path.read_text(errors="replace")
    except OSError:
        log = None
    if state is None and (done := _finished(directory, name, seed)):
        return done
    if epochs is None and log:  # not in the config given: as the log says
        planned = [total for _, total in EPOCH_LINE.findall(log)] or START_LINE.findall(log)
        epochs = int(planned[-1]) if planned else None
    if state is None and (log is None or FINISHED_LINE in _last_line(log)):
        return Training(name, seed, "waiting", 0, epochs)
    history = state["history"] if state else []
    epochs_done = state["epochs_done"] if state else 0
    recent = [row["seconds"] for row in history[-3:]]
    per_epoch = sum(recent) / len(recent) if recent else None
    last_epoch_at = _mtime(checkpoint_state_file(checkpoint_folder)) if state else None
    updates = [t for t in (last_epoch_at, _mtime(log_path)) if t is not None]
    quiet = now - max(updates) if updates else 0.0
    val_accuracy = history[-1].get("val_accuracy") if history else None
    if log is not None and _last_line(log).startswith("ERROR:"):
        return Training(name, seed, "failed", epochs_done, epochs, val_accuracy, per_epoch)
    if quiet > max(STALLED_AFTER_SECONDS, 3 * (per_epoch or 0)):
        return Training(name, seed, "stalled", epochs_done, epochs, val_accuracy, per_epoch)
    eta = None
    if per_epoch is not None and epochs is not None and last_epoch_at is not None:
        eta = max(0.0, (epochs - epochs_done) * per_epoch - (now - last_epoch_at))
    return Training(name, seed, "training", epochs_done, epochs, val_accuracy, per_epoch, eta)


def _seed(folder_or_file: Path) -> int | None:
    match = SEED_FOLDER.match(folder_or_file.name.removesuffix(".log"))
    return int(match.group(1)) if match else None


def found_trainings(directory: Path) -> set[tuple[str, int]]:
    """Every (variant, seed) that has a checkpoint, a result or a training log in the study's folder."""
    directory = Path(directory)
    paths = [path for path in (directory / "checkpoints").glob("*/seed-*") if path.is_dir()]
    paths += [path.parent for path in (directory / "results" / "variants").glob("*/seed-*/training.json")]
    paths += list((directory / "logs" / "train").glob("*/seed-*.log"))
    return {(path.parent.name, seed) for path in paths if (seed := _seed(path)) is not None}


def study_status(directory: Path, epochs: dict[tuple[str, int], int] | None = None,
                 now: float | None = None) -> list[Training]:
    """Every training of the study in ``directory``: the configured ones (``epochs``: (variant, seed) -> epochs), in
    their order, then any other (variant, seed) that has a checkpoint, a result or a training log there."""
    epochs = epochs or {}
    trainings = list(epochs) + sorted(found_trainings(directory) - set(epochs))
    return [training_status(directory, name, seed, epochs.get((name, seed)), now) for name, seed in trainings]


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def format_table(trainings: list[Training]) -> str:
    if not trainings:
        return "no trainings found (no config.yaml, --configfile, checkpoints/, results/variants/ or logs/train/ there)"
    header = ("variant", "seed", "state", "epoch", "val_accuracy", "s/epoch", "ETA")
    rows = [header] + [
        (t.variant, str(t.seed), t.state, f"{t.epochs_done}/{t.epochs if t.epochs is not None else '?'}",
         "-" if t.val_accuracy is None else f"{t.val_accuracy:.4f}",
         "-" if t.seconds_per_epoch is None else f"{t.seconds_per_epoch:.1f}",
         "-" if t.state == "done" else duration_text(t.eta_seconds))
        for t in trainings
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    counts = {}
    for t in trainings:
        counts[t.state] = counts.get(t.state, 0) + 1
    lines.append(", ".join(f"{count} {state}" for state, count in counts.items()))
    return "\n".join(lines)
