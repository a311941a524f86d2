"""Export the selected model so that it can be used without the pipeline.

The exported model takes raw uint8 images of the dataset's size (N x 32 x 32 x 3 for CIFAR, values 0-255) and returns class
probabilities. Everything a user needs is inside it: the training split's mean and variance (the model's own
``Normalization`` layer), when the selected variant is evaluated with test-time augmentation, the
weighted mean over its views (mirror image and/or shifted views: built-in ``flip``, ``pad`` and slicing ops), and,
with temperature scaling, softmax(log p / T) with the temperature fitted on the validation split. So plain
``keras.models.load_model(path)`` (no custom objects, no ``safe_mode=False``) or ``tf.saved_model.load(path).serve``
gives the pipeline's test predictions (``evaluation.calibrated_probabilities``) to float32 round-off.

The same model is also exported to LiteRT (``model.tflite``, Keras's own ``format="litert"``), which the small
``ai-edge-litert`` runtime runs without TensorFlow (``cifarflow predict`` by default, C++, Java, mobile). Each file is
checked at export time against the pipeline's predictions on the whole test split; the LiteRT file is put in place only
when it passes.
"""

import os
import shutil
from pathlib import Path

import numpy as np

from ..evaluate.calibration import PROBABILITY_FLOOR, uses_temperature
from ..evaluate.evaluation import calibrated_probabilities
from .predict import LITERT_FILE, load_litert, litert_runtime
from ..evaluate.tta import tta_views, uses_tta
from ..errors import StageError

INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
# The exported model must reproduce the pipeline's probabilities; they agree to float32 round-off (LiteRT measured
# 1.6e-8 on the tiny study, 7.2e-7 on the laptop study's 1,000 test images).
TOLERANCE = 1e-5


def with_tta_and_temperature(model, tta: dict | None, temperature: float | None):
    """A model that averages ``model``'s probabilities over the test-time augmentation views of ``tta`` and then
    divides their logarithms by ``temperature`` (``calibration.scale_probabilities``), with built-in ops only."""
    import keras
    from keras import layers, ops

    images = keras.Input(model.input.shape[1:], dtype=model.input.dtype, name=INPUT_NAME)
    weighted = [weight * model(view) for weight, view in tta_views(images, tta)]
    probabilities = sum(weighted[1:], weighted[0])
    if uses_temperature(temperature):
        probabilities = ops.softmax(ops.log(ops.maximum(probabilities, PROBABILITY_FLOOR)) / temperature, axis=-1)
    return keras.Model(images, layers.Identity(name=OUTPUT_NAME)(probabilities), name=f"{model.name}_exported")


def exportable_model(model, tta: dict | None, temperature: float | None = None):
    """The model to hand out: the trained model itself, or wrapped so that it does its test-time averaging and
    temperature scaling itself."""
    return with_tta_and_temperature(model, tta, temperature) if uses_tta(tta) or uses_temperature(temperature) else model


def layer_records(model) -> list[dict]:
    """One JSON-ready record per layer of ``model`` (name, type, output shape, parameters), for the export's
    metadata.json; the report's HTML layer table is tables.layer_table."""
    rows = []
    for layer in model.layers:
        try:
            shape = tuple(layer.output.shape)
        except (AttributeError, ValueError):  # a layer used more than once has no single output
            shape = None
        rows.append({
            "name": layer.name,
            "type": type(layer).__name__,
            "output_shape": None if shape is None else [d for d in shape],
            "parameters": int(layer.count_params()),
        })
    return rows


def export_model(model_path: Path, tta: dict | None, keras_path: Path, saved_model_dir: Path, litert_path: Path,
                 check_images: np.ndarray, temperature: float | None = None, tolerance: float = TOLERANCE) -> dict:
    """Write the Keras file, the SavedModel and the LiteRT file, reload each and check it against the pipeline's
    predictions on ``check_images`` (``check_exported``); the LiteRT file is moved into place only once it passes.

    Returns what the export's metadata records: the checks' figures, the files' sizes and the model's layers.
    """
    import keras
    import tensorflow as tf

    trained = keras.models.load_model(model_path, compile=False)  # no optimizer state: it is not needed to predict
    model = exportable_model(trained, tta, temperature)
    keras_path, saved_model_dir, litert_path = Path(keras_path), Path(saved_model_dir), Path(litert_path)
    keras_path.parent.mkdir(parents=True, exist_ok=True)
    model.save(keras_path)
    if saved_model_dir.exists():
        shutil.rmtree(saved_model_dir)
    model.export(os.fspath(saved_model_dir), format="tf_saved_model", verbose=False)
    litert_path.unlink(missing_ok=True)
    unchecked = litert_path.with_suffix(".unchecked.tflite")
    model.export(os.fspath(unchecked), format="litert", verbose=False)
    print(model_summary(model))

    _, expected = calibrated_probabilities(trained, check_images, tta, temperature)
    reloaded = keras.models.load_model(keras_path)  # what a user does: the default safe mode, no custom objects
    served = tf.saved_model.load(os.fspath(saved_model_dir))
    litert, _, _ = load_litert(unchecked)
    try:
        check = check_exported(expected, {
            "keras": reloaded.predict(check_images, batch_size=500, verbose=0),
            "saved_model": served.serve(tf.constant(check_images)).numpy(),
            "litert": np.concatenate([litert(check_images[start:start + 500]) for start in range(0, len(check_images), 500)]),
        }, tolerance)
    except StageError:
        unchecked.unlink()
        raise
    os.replace(unchecked, litert_path)
    return {
        "check": check,
        "litert": {"file": litert_path.name, "runtime": litert_runtime(), "format": litert_format(litert_path)},
        "sizes": {fmt: file_size(path) for fmt, path in (("keras", keras_path), ("saved_model", saved_model_dir),
                                                        ("litert", litert_path))},
        "parameters": int(trained.count_params()),
        "layers": layer_records(trained),
    }


def check_exported(expected: np.ndarray, exported: dict[str, np.ndarray], tolerance: float = TOLERANCE) -> dict:
    """Each exported format's probabilities against the pipeline's ``expected`` ones: the largest absolute difference must
    be at most ``tolerance`` and the top class the same on every image, else StageError. Returns the figures."""
    differences, same_top_class = {}, {}
    for fmt, probabilities in exported.items():
        differences[fmt] = float(np.abs(probabilities - expected).max())
        same_top_class[fmt] = int((probabilities.argmax(axis=1) == expected.argmax(axis=1)).sum())
        print(f"exported {fmt} model vs the pipeline's predictions on {len(expected)} test images: largest probability "
              f"difference {differences[fmt]:.2e}, same top class on {same_top_class[fmt]}/{len(expected)}")
        if not differences[fmt] <= tolerance or same_top_class[fmt] != len(expected):
            raise StageError(f"the exported {fmt} model does not reproduce the pipeline's predictions on the test split: "
                             f"largest probability difference {differences[fmt]:.3g} (at most {tolerance} allowed), same top "
                             f"class on {same_top_class[fmt]} of {len(expected)} images (all required)")
    return {"images": int(len(expected)), "split": "test", "max_abs_difference": differences,
            "same_top_class": same_top_class, "tolerance": tolerance}


def litert_format(path: Path) -> str:
    """The flatbuffer schema a LiteRT file is written in, from its file identifier (bytes 4-8: TFL3)."""
    with open(path, "rb") as file:
        identifier = file.read(8)[4:].decode("ascii", "replace")
    return f"{identifier} flatbuffer"


def file_size(path: Path) -> int:
    """Bytes of a file, or of every file in a folder."""
    path = Path(path)
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def model_summary(model) -> str:
    lines = []
    model.summary(print_fn=lambda line, **_: lines.append(line))
    return "\n".join(lines)


def export_metadata(selection: dict, classes: list[str], stats: dict, exported: dict, software: dict,
                    image_shape: tuple[int, int, int]) -> dict:
    """What a user of the exported model needs to know: its input (images of ``image_shape``), its output and where it
    came from."""
    return {
        "variant": selection["variant"],
        "seed": selection.get("exported_seed"),
        "selection": {key: selection.get(key) for key in ("metric", "val_accuracy", "val_log_loss", "runner_up", "margin",
                                                          "tie_rule", "tied", "rule", "seeds", "export_rule")},
        "input": {
            "name": INPUT_NAME,
            "shape": [None, *map(int, image_shape)],
            "dtype": "uint8",
            "layout": "N x height x width x RGB channels, pixel values 0-255, no preprocessing",
            "normalization": "inside the model: (x - mean) / std per channel, the training split's statistics",
            "mean": stats["mean"],
            "std": stats["std"],
        },
        "output": {
            "name": OUTPUT_NAME,
            "shape": [None, len(classes)],
            "dtype": "float32",
            "meaning": "class probabilities (softmax), in the order of classes.json"
                       + (", temperature-scaled" if uses_temperature(selection.get("temperature")) else ""),
            "saved_model_signature": "serve / serving_default: image (uint8) -> output_0 (float32)",
            "litert_signature": "serving_default: image (uint8) -> output_0 (float32)",
        },
        "tta": selection["tta"],
        "tta_in_model": uses_tta(selection["tta"]),
        "temperature": selection.get("temperature", 1.0),
        "temperature_in_model": uses_temperature(selection.get("temperature")),
        "classes": classes,
        "files": {"keras": "model.keras", "saved_model": "saved_model/", "litert": LITERT_FILE, "classes": "classes.json"},
        "software": software,
        **exported,
    }
