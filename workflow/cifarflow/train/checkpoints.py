"""Resumable training: what a checkpoint was trained with (its fingerprint), and the checkpoint itself."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..fileio import save_json


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
