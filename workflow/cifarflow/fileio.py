"""Small file helpers shared by every stage: JSON and ``.npz`` files, written atomically so that an interrupted
write never looks complete; the split files (``images`` and ``labels``) and the digest of their images."""

import hashlib
import json
import os
from pathlib import Path

import numpy as np


def save_npz(path: Path, **arrays) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read into memory (the file is closed again)."""
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def save_json(path: Path, data) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def load_json(path: Path):
    return json.loads(Path(path).read_text())


def load_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as data:
        return data["images"], data["labels"]


def image_digest(images: np.ndarray) -> str:
    """SHA-256 of the images, their shape and order included: two sets of predictions with the same digest were made
    on the very same images in the same order."""
    digest = hashlib.sha256(str(images.shape).encode())
    digest.update(np.ascontiguousarray(images).tobytes())
    return digest.hexdigest()
