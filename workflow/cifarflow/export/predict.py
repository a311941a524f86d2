"""Classify image files with a trained cifarflow model (the logic behind ``cifarflow predict``).

How a picture becomes the model's input (RGB, uint8, of the model's image size: 32x32 for CIFAR):

1. Decoded with Pillow (first frame of an animation), turned upright by its EXIF orientation.
2. Converted to RGB: grayscale and palette images are expanded to three channels; an image with transparency
   (RGBA, LA, a palette or grayscale with a transparent colour) is composited on a **white** background;
   16-bit images are scaled to 8 bits.
3. Resized to the model's size with Pillow's **bicubic** filter, which averages over the whole source area when shrinking.
   ``fit="crop"`` (the default) first cuts the largest centred square, so objects keep their proportions, as in
   the square CIFAR pictures; ``fit="stretch"`` resizes the whole image, changing its aspect ratio.
   An RGB image of the model's size is used exactly as stored.

The model runs in the LiteRT runtime (``ai-edge-litert``: the export's model.tflite) unless the Keras backend is chosen;
TensorFlow is imported only on the Keras path, and only when its model is loaded.
"""

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..evaluate.calibration import scale_probabilities, uses_temperature
from ..evaluate.tta import tta_views, uses_tta

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
FITS = ("crop", "stretch")
LITERT_FILE = "model.tflite"
# A run's models, in the order they are looked for: the portable export first (LiteRT), then the Keras files.
RUN_MODELS = {"litert": [f"results/export/{LITERT_FILE}"],
              "keras": ["results/export/model.keras", "results/selection/best_model.keras"]}
BACKENDS = tuple(RUN_MODELS)


class PredictError(Exception):
    """The command cannot run at all (no model, unreadable class names...): the message says why."""


# --- inputs --------------------------------------------------------------------------------------------------


def find_images(paths: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Expand the command's arguments: files as given, folders to the image files in them (recursively, sorted).

    Returns (files, errors), errors as (path, message) for arguments that name nothing usable.
    """
    files, errors = [], []
    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir())
            if found:
                files += found
            else:
                errors.append((arg, f"folder holds no image files ({', '.join(IMAGE_SUFFIXES[:4])}, ...)"))
        elif path.exists():
            files.append(path)
        else:
            errors.append((arg, "no such file or folder"))
    return files, errors


def to_rgb(image):
    """A Pillow image in any mode as 8-bit RGB; transparency composited on white."""
    from PIL import Image

    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):  # 16/32-bit grayscale -> 8-bit
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or (image.mode == "I" and values.max() > 255):
            values = values / 257.0
        image = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def load_image(path: Path, size: int, fit: str = "crop") -> tuple[np.ndarray, dict]:
    """One image file as a (size, size, 3) uint8 array, plus its original size and mode. Raises on unreadable files."""
    from PIL import Image, ImageOps

    if fit not in FITS:
        raise ValueError(f"unknown fit {fit!r}; use one of {FITS}")
    with Image.open(path) as opened:
        opened.load()  # decode now, so a truncated or corrupt file fails here
        info = {"width": opened.width, "height": opened.height, "mode": opened.mode, "format": opened.format}
        image = to_rgb(ImageOps.exif_transpose(opened))
    size = (size, size)
    if image.size != size:
        if fit == "crop":
            image = ImageOps.fit(image, size, method=Image.Resampling.BICUBIC)
        else:
            image = image.resize(size, Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8), info


def describe_error(error: Exception) -> str:
    from PIL import UnidentifiedImageError

    if isinstance(error, UnidentifiedImageError):
        return "not an image file Pillow can read"
    if isinstance(error, IsADirectoryError):
        return "is a folder, not an image file"
    if isinstance(error, PermissionError):
        return "permission denied"
    text = str(error) or type(error).__name__
    return f"cannot read image: {text}"


def load_images(files: list[Path], size: int,
                fit: str = "crop") -> tuple[list[Path], np.ndarray, list[dict], list[tuple[str, str]]]:
    """Decode every file that can be decoded: (files, images N x size x size x 3, infos, errors)."""
    good, images, infos, errors = [], [], [], []
    for path in files:
        try:
            image, info = load_image(path, size, fit)
        except Exception as error:  # noqa: BLE001 - any file may fail in its own way; report it and go on
            errors.append((str(path), describe_error(error)))
            continue
        good.append(path)
        images.append(image)
        infos.append(info)
    array = np.stack(images) if images else np.zeros((0, size, size, 3), dtype=np.uint8)
    return good, array, infos, errors


# --- the model -----------------------------------------------------------------------------------------------


@dataclass
class Classifier:
    """A loaded model with its class names and input image size; ``tta`` and ``temperature`` when the model needs its
    test-time averaging and temperature scaling done outside."""

    path: Path
    classes: list[str]
    predict_fn: object = field(repr=False)
    image_size: int  # the model's input: square images of this many pixels
    tta: dict | None = None
    temperature: float | None = None

    def probabilities(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        if not len(images):
            return np.zeros((0, len(self.classes)))
        chunks = []
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            views = tta_views(batch, self.tta) if uses_tta(self.tta) else [(1.0, batch)]  # tta_views imports Keras
            chunks.append(sum(weight * np.asarray(self.predict_fn(view), dtype=np.float64) for weight, view in views))
        probs = np.concatenate(chunks).astype(np.float64)
        return scale_probabilities(probs, self.temperature) if uses_temperature(self.temperature) else probs


def default_model(run_dir: Path, backend: str | None = None) -> Path:
    """The selected model of a finished run for ``backend`` (both: LiteRT first): the exported one, else the selection's
    copy of the best variant."""
    candidates = [name for chosen in ([backend] if backend else BACKENDS) for name in RUN_MODELS[chosen]]
    for candidate in candidates:
        if (run_dir / candidate).exists():
            return run_dir / candidate
    raise PredictError(f"no model in {run_dir}: none of {', '.join(candidates)} exists "
                       "(finish the run, or pass --run-dir or --model)")


def backend_of(model_path: Path) -> str:
    return "litert" if model_path.suffix == ".tflite" else "keras"


def find_classes(model_path: Path, run_dir: Path) -> Path | None:
    """Class names beside the model (an export), or the run's."""
    for candidate in (model_path.parent / "classes.json", model_path.parent.parent / "data" / "classes.json",
                      run_dir / "results" / "export" / "classes.json", run_dir / "results" / "data" / "classes.json"):
        if candidate.is_file():
            return candidate
    return None


def outside_processing(model_path: Path) -> tuple[dict | None, float | None]:
    """A selection's best_model.keras is the bare trained model: its selection.json says which test-time averaging
    and temperature to apply, as (tta, temperature). An exported model does both itself."""
    selection = model_path.parent / "selection.json"
    if model_path.is_file() and selection.is_file():
        chosen = json.loads(selection.read_text())
        return chosen.get("tta"), chosen.get("temperature")
    return None, None


@contextlib.contextmanager
def native_stderr_silenced():
    """Hide what TensorFlow's or LiteRT's C++ core prints while it is loaded (oneDNN and XNNPACK notices that
    TF_CPP_MIN_LOG_LEVEL no longer silences); Python errors still propagate and are shown once stderr is back."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def load_classifier(model: str | None = None, run_dir: str = ".", classes: str | None = None,
                    backend: str | None = None) -> Classifier:
    """The model ``model`` (else the run's, ``default_model``) in ``backend`` (else the one its file needs)."""
    run = Path(run_dir)
    model_path = Path(model) if model else default_model(run, backend)
    if not model_path.exists():
        raise PredictError(f"model {model_path} does not exist")
    if backend and backend != backend_of(model_path):
        raise PredictError(f"{model_path} is a {backend_of(model_path)} model, not one for --backend {backend} "
                           f"(LiteRT runs .tflite files, Keras .keras files and SavedModel folders)")
    if backend_of(model_path) == "litert":
        predict_fn, outputs, image_size = load_litert(model_path)
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter
        with native_stderr_silenced():
            import keras  # noqa: F401 - imports TensorFlow
        loader = _load_saved_model if model_path.is_dir() else _load_keras
        predict_fn, outputs, image_size = loader(model_path)
    class_file = Path(classes) if classes else find_classes(model_path, run)
    if class_file is not None:
        try:
            names = json.loads(class_file.read_text())
        except (OSError, ValueError) as error:
            raise PredictError(f"cannot read class names from {class_file}: {error}") from None
        if not (isinstance(names, list) and len(names) == outputs):
            raise PredictError(f"{class_file} does not list the model's {outputs} class names")
    else:
        names = [f"class_{i}" for i in range(outputs)]
    return Classifier(model_path, [str(n) for n in names], predict_fn, image_size, *outside_processing(model_path))


def load_litert(path: Path):
    """A LiteRT model's (predict_fn, number of classes, image size); predict_fn takes any number of uint8 images."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise PredictError("the LiteRT runtime is not installed (pip install ai-edge-litert==2.3.0); "
                           "or use --backend keras") from None
    try:
        threads = len(os.sched_getaffinity(0))  # the runtime's default is one thread
        runner = Interpreter(model_path=os.fspath(path), num_threads=threads).get_signature_runner()
        (image_name, image), = runner.get_input_details().items()
        (output_name, output), = runner.get_output_details().items()
        with native_stderr_silenced():  # the runtime's notice, on the first call, that it uses its XNNPACK CPU kernels
            runner(**{image_name: np.zeros([1, *image["shape_signature"][1:]], dtype=np.uint8)})
    except Exception as error:  # noqa: BLE001 - many formats of failure; the message is what matters
        raise PredictError(f"cannot load the LiteRT model {path}: {error}") from None

    def predict_fn(batch):  # the runner resizes the model's input to the batch
        return runner(**{image_name: np.ascontiguousarray(batch, dtype=np.uint8)})[output_name]

    return predict_fn, int(output["shape_signature"][-1]), int(image["shape_signature"][1])


def litert_runtime() -> str:
    import importlib.metadata

    return f"ai-edge-litert {importlib.metadata.version('ai-edge-litert')}"


def _load_keras(path: Path):
    import keras

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as error:  # noqa: BLE001 - many formats of failure; the message is what matters
        raise PredictError(f"cannot load the Keras model {path}: {error}") from None
    # Calling the model directly avoids building a predict loop: fast for the few images of a command line.
    def predict_fn(batch):
        return keras.ops.convert_to_numpy(model(batch, training=False))

    return predict_fn, int(model.output.shape[-1]), int(model.input.shape[1])


def _load_saved_model(path: Path):
    import tensorflow as tf

    try:
        serve = tf.saved_model.load(os.fspath(path)).signatures["serve"]
    except Exception as error:  # noqa: BLE001
        raise PredictError(f"cannot load the SavedModel {path}: {error}") from None
    output = next(iter(serve.structured_outputs))
    image_size = int(serve.structured_input_signature[1]["image"].shape[1])
    outputs = int(serve.structured_outputs[output].shape[-1])
    return (lambda batch: serve(image=tf.constant(batch))[output].numpy()), outputs, image_size


# --- results -------------------------------------------------------------------------------------------------


def top_k(probs: np.ndarray, classes: list[str], k: int) -> list[list[tuple[str, float]]]:
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return [[(classes[j], float(row[j])) for j in idx] for row, idx in zip(probs, order)]


def prediction_table(files: list[Path], probs: np.ndarray, infos: list[dict], classes: list[str]):
    """One row per image: path, predicted class, its probability, the original size and mode, every class's probability."""
    import pandas as pd

    table = pd.DataFrame({
        "path": [str(f) for f in files],
        "predicted": [classes[i] for i in probs.argmax(axis=1)] if len(probs) else [],
        "confidence": probs.max(axis=1) if len(probs) else [],
        "width": [i["width"] for i in infos],
        "height": [i["height"] for i in infos],
        "mode": [i["mode"] for i in infos],
    })
    return pd.concat([table, pd.DataFrame(probs, columns=[f"p_{name}" for name in classes])], axis=1)
