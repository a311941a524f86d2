"""Export the selected model so that it can be used without the pipeline.

The exported model takes raw uint8 images of the dataset's size (N x 32 x 32 x 3 for CIFAR, values 0-255) and returns class
probabilities. Everything a user needs is inside it: the training split's mean and variance (the model's own
``Normalization`` layer), when the selected variant is evaluated with test-time augmentation, the
weighted mean over its views (mirror image and/or shifted views: built-in ``flip``, ``pad`` and slicing ops), and,
with temperature scaling, softmax(log p / T) with the temperature fitted on the validation split. So plain
``keras.models.load_model(path)`` (no custom objects, no ``safe_mode=False``) or ``tf.saved_model.load(path).serve``
gives the pipeline's test predictions (``evaluation.calibrated_probabilities``) to float32 round-off.
"""

import os
import shutil
from pathlib import Path

import numpy as np

from .calibration import PROBABILITY_FLOOR, uses_temperature
from .evaluation import calibrated_probabilities
from .tta import tta_views, uses_tta
from .errors import StageError

INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
# The exported model must reproduce the pipeline's probabilities; they agree to float32 round-off.
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


def export_model(model_path: Path, tta: dict | None, keras_path: Path, saved_model_dir: Path,
                 check_images: np.ndarray, temperature: float | None = None) -> dict:
    """Write the Keras file and the SavedModel, reload both and check them against the pipeline's predictions.

    Returns what the export's metadata records: the checks' largest differences and the model's layers.
    """
    import keras
    import tensorflow as tf

    trained = keras.models.load_model(model_path, compile=False)  # no optimizer state: it is not needed to predict
    model = exportable_model(trained, tta, temperature)
    keras_path, saved_model_dir = Path(keras_path), Path(saved_model_dir)
    keras_path.parent.mkdir(parents=True, exist_ok=True)
    model.save(keras_path)
    if saved_model_dir.exists():
        shutil.rmtree(saved_model_dir)
    model.export(os.fspath(saved_model_dir), format="tf_saved_model", verbose=False)
    print(model_summary(model))

    _, expected = calibrated_probabilities(trained, check_images, tta, temperature)
    reloaded = keras.models.load_model(keras_path)  # what a user does: the default safe mode, no custom objects
    served = tf.saved_model.load(os.fspath(saved_model_dir))
    differences = {
        "keras": float(np.abs(reloaded.predict(check_images, batch_size=500, verbose=0) - expected).max()),
        "saved_model": float(np.abs(served.serve(tf.constant(check_images)).numpy() - expected).max()),
    }
    for fmt, difference in differences.items():
        print(f"exported {fmt} model vs the pipeline's predictions on {len(check_images)} images: "
              f"largest difference {difference:.2e}")
        if not difference <= TOLERANCE:
            raise StageError(f"the exported {fmt} model does not reproduce the pipeline's predictions "
                             f"(largest difference {difference:.3g} > {TOLERANCE})")
    return {
        "check": {"images": int(len(check_images)), "max_abs_difference": differences, "tolerance": TOLERANCE},
        "parameters": int(trained.count_params()),
        "layers": layer_records(trained),
    }


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
        },
        "tta": selection["tta"],
        "tta_in_model": uses_tta(selection["tta"]),
        "temperature": selection.get("temperature", 1.0),
        "temperature_in_model": uses_temperature(selection.get("temperature")),
        "classes": classes,
        "files": {"keras": "model.keras", "saved_model": "saved_model/", "classes": "classes.json"},
        "software": software,
        **exported,
    }
