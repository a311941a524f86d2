"""Moving a study made before seeds into the seed layout, so that its trainings are kept (``cifarflow
migrate-seeds``).

Before seeds, a variant's training wrote ``results/variants/<variant>/model.keras`` and its companions; now each
(variant, seed) writes ``results/variants/<variant>/seed-<seed>/``. The seed of an old training is the one its
``training.json`` records. Files keep their time stamps, so Snakemake sees finished trainings; the validation and
calibration records gain the ``seed`` key that selection reads. Nothing is moved where the new place is taken.
"""

import json
import os
import shutil
from pathlib import Path

from .config import training_results

# A training's result files, in results/variants/<variant>/
RESULT_FILES = ("model.keras", "history.csv", "training.json", "validation.json", "val_predictions.npz", "calibration.json")
# The records that gain the seed key
SEEDED_RECORDS = ("validation.json", "calibration.json")
# Logs and benchmarks per variant: <folder>/<variant><suffix> -> <folder>/<variant>/seed-<seed><suffix>
PER_VARIANT = (("logs/train", ".log"), ("logs/train", ".png"), ("logs/validate", ".log"), ("logs/calibrate", ".log"),
               ("benchmarks/train", ".tsv"), ("benchmarks/validate", ".tsv"), ("benchmarks/calibrate", ".tsv"))


def old_trainings(directory: Path) -> dict[str, int]:
    """Variants whose training is in the old layout, with the seed it recorded."""
    found = {}
    for summary in sorted(Path(directory, "results", "variants").glob("*/training.json")):
        settings = json.loads(summary.read_text()).get("settings", {})
        found[summary.parent.name] = int(settings.get("train", {}).get("seed", 0))
    return found


def _move(source: Path, target: Path, moves: list[tuple[Path, Path]]) -> None:
    if source.exists() and not target.exists():
        moves.append((source, target))


def planned_moves(directory: Path, trainings: dict[str, int]) -> list[tuple[Path, Path]]:
    moves: list[tuple[Path, Path]] = []
    for variant, seed in trainings.items():
        old, new = directory / "results" / "variants" / variant, training_results(directory, variant, seed)
        for name in RESULT_FILES:
            _move(old / name, new / name, moves)
        for folder, suffix in PER_VARIANT:
            _move(directory / folder / f"{variant}{suffix}", directory / folder / variant / f"seed-{seed}{suffix}", moves)
    return moves


def migrate(directory: Path, dry_run: bool = False) -> list[str]:
    """Move every old-layout training of the study in ``directory`` to its seed folder; returns what was (or, with
    ``dry_run``, would be) moved, one line each."""
    directory = Path(directory)
    trainings = old_trainings(directory)
    moves = planned_moves(directory, trainings)
    lines = [f"{source.relative_to(directory)} -> {target.relative_to(directory)}" for source, target in moves]
    if dry_run:
        return lines + [f"logs/tensorboard/{variant} -> logs/tensorboard/{variant}/seed-{seed}"
                        for variant, seed in trainings.items() if _old_events(directory / "logs" / "tensorboard" / variant)]
    for source, target in moves:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)
        if target.name in SEEDED_RECORDS:
            _add_seed(target, int(target.parent.name.removeprefix("seed-")))
    for variant, seed in trainings.items():
        _move_events(directory / "logs" / "tensorboard" / variant, seed, lines, directory)
    return lines


def _old_events(folder: Path) -> bool:
    return folder.is_dir() and not any(path.name.startswith("seed-") for path in folder.iterdir())


def _move_events(folder: Path, seed: int, lines: list[str], directory: Path) -> None:
    """A variant's TensorBoard folder becomes the folder of its seed, inside a new folder of the variant's name."""
    if _old_events(folder):
        moving = folder.with_name(folder.name + ".migrating")
        folder.rename(moving)
        folder.mkdir()
        moving.rename(folder / f"seed-{seed}")
        lines.append(f"{folder.relative_to(directory)} -> {(folder / f'seed-{seed}').relative_to(directory)}")


def _add_seed(path: Path, seed: int) -> None:
    """Adds the seed to a JSON record, keeping its time stamps (Snakemake must still see it as up to date)."""
    stat = path.stat()
    record = json.loads(path.read_text())
    if record.get("seed") != seed:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({**record, "seed": seed}, indent=2) + "\n")
        os.replace(tmp, path)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
