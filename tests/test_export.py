"""The exported model (Keras file, SavedModel and LiteRT file), its README and the model card of a finished tiny study."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cifarflow.data.datasets import DATASETS, described_dataset
from cifarflow.errors import StageError
from cifarflow.evaluate.evaluation import predict_probabilities
from cifarflow.export.export import TOLERANCE, check_exported, export_model, exportable_model
from cifarflow.export.predict import load_litert
from conftest import REPO
from floats import NETWORK_ULPS, assert_float32_close
from recipes import recipe


def stored_predictions(study):
    """The pipeline's test predictions: class probabilities (N x classes) and predicted class names."""
    table = pd.read_csv(study / "results/test/predictions.csv").sort_values("index")
    return table.filter(like="p_").to_numpy(), table["predicted"].tolist()


def load_test_split(study):
    with np.load(study / "results/data/test.npz") as data:
        return data["images"], data["labels"]


def test_export_files(tiny_study):
    export = tiny_study / "results/export"
    selection = json.loads((tiny_study / "results/selection/selection.json").read_text())
    classes = json.loads((tiny_study / "results/data/classes.json").read_text())
    assert json.loads((export / "classes.json").read_text()) == classes
    assert (export / "saved_model/saved_model.pb").is_file()
    assert not list(export.glob("*.unchecked.tflite"))
    metadata = json.loads((export / "metadata.json").read_text())
    assert metadata["variant"] == selection["variant"] and metadata["seed"] == selection["exported_seed"]
    tta = selection["tta"]
    assert metadata["tta"] == tta and metadata["tta_in_model"] == (tta["flip"] or tta["translate"] > 0)
    assert metadata["input"]["dtype"] == "uint8" and metadata["input"]["shape"] == [None, 32, 32, 3]
    assert metadata["classes"] == classes and metadata["parameters"] > 0
    check, (test_images, _) = metadata["check"], load_test_split(tiny_study)
    assert check["split"] == "test" and check["images"] == len(test_images)  # the whole test split
    assert set(check["max_abs_difference"]) == set(check["same_top_class"]) == {"keras", "saved_model", "litert"}
    assert max(check["max_abs_difference"].values()) <= check["tolerance"] == TOLERANCE
    assert set(check["same_top_class"].values()) == {len(test_images)}
    for fmt, name in metadata["files"].items():
        path = export / name
        size = path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        assert metadata["sizes"].get(fmt, size) == size > 0
    import importlib.metadata

    assert metadata["litert"] == {"file": "model.tflite", "format": "TFL3 flatbuffer",
                                  "runtime": f"ai-edge-litert {importlib.metadata.version('ai-edge-litert')}"}
    exported = f"results/variants/{selection['variant']}/seed-{selection['exported_seed']}"
    fitted = json.loads((tiny_study / exported / "calibration.json").read_text())["temperature"]
    assert metadata["temperature"] == selection["temperature"] == fitted  # configs/tiny.yaml: temperature scaling on
    assert metadata["temperature_in_model"] and "temperature-scaled" in metadata["output"]["meaning"]


def test_stored_test_predictions_are_temperature_scaled(tiny_study):
    """The probabilities the exported model must reproduce are the trained model's, scaled by the temperature."""
    import keras

    from cifarflow.evaluate.calibration import scale_probabilities

    table = pd.read_csv(tiny_study / "results/test/predictions.csv").sort_values("index")
    selection = json.loads((tiny_study / "results/selection/selection.json").read_text())
    model = keras.models.load_model(tiny_study / "results/selection/best_model.keras", compile=False)
    images, _ = load_test_split(tiny_study)
    raw = predict_probabilities(model, images, selection["tta"])
    assert_float32_close(table["uncalibrated_confidence"], raw.max(axis=1), ulps=NETWORK_ULPS)
    scaled = scale_probabilities(raw, selection["temperature"])
    assert_float32_close(table.filter(like="p_").to_numpy(), scaled, ulps=NETWORK_ULPS / min(1.0, selection["temperature"]))
    assert np.abs(scaled - raw).max() > 1e-3  # the temperature changes them


def test_exported_keras_model_gives_the_pipeline_predictions(tiny_study):
    import keras

    model = keras.models.load_model(tiny_study / "results/export/model.keras")  # plain: no custom objects
    assert getattr(model, "optimizer", None) is None
    assert model.input.dtype == "uint8" and tuple(model.input.shape) == (None, 32, 32, 3)
    images, _ = load_test_split(tiny_study)
    expected, predicted = stored_predictions(tiny_study)
    classes = json.loads((tiny_study / "results/export/classes.json").read_text())
    probs = model.predict(images, verbose=0)
    assert_float32_close(probs, expected, ulps=NETWORK_ULPS)
    assert [classes[i] for i in probs.argmax(axis=1)] == predicted


def test_exported_saved_model_gives_the_pipeline_predictions(tiny_study):
    import tensorflow as tf

    serve = tf.saved_model.load(str(tiny_study / "results/export/saved_model")).signatures["serve"]
    images, _ = load_test_split(tiny_study)
    expected, _ = stored_predictions(tiny_study)
    probs = serve(image=tf.constant(images))["output_0"].numpy()
    assert_float32_close(probs, expected, ulps=NETWORK_ULPS)


def test_exported_litert_model_gives_the_pipeline_predictions(tiny_study):
    """Through the LiteRT runtime, as cifarflow predict runs it: the pipeline's probabilities and top classes."""
    predict_fn, outputs, image_size = load_litert(tiny_study / "results/export/model.tflite")
    images, _ = load_test_split(tiny_study)
    expected, predicted = stored_predictions(tiny_study)
    classes = json.loads((tiny_study / "results/export/classes.json").read_text())
    probs = predict_fn(images)
    assert (outputs, image_size) == (len(classes), 32) and probs.dtype == np.float32
    assert_float32_close(probs, expected, ulps=NETWORK_ULPS)
    assert [classes[i] for i in probs.argmax(axis=1)] == predicted


def test_export_check_refuses_a_difference_or_another_top_class():
    expected = np.array([[0.7, 0.3], [0.2, 0.8], [0.5 + 1e-6, 0.5 - 1e-6]])
    figures = check_exported(expected, {"litert": expected + 2e-6})
    assert figures["max_abs_difference"]["litert"] == pytest.approx(2e-6, rel=1e-6) and figures["same_top_class"]["litert"] == 3
    with pytest.raises(StageError, match=r"exported litert model does not .* largest probability difference 2e-05 \(at most "
                                         r"1e-05 allowed\), same top class on 3 of 3"):
        check_exported(expected, {"keras": expected, "litert": expected + 2e-5})
    flipped = expected.copy()
    flipped[2] = [0.5 - 1e-6, 0.5 + 1e-6]  # within the tolerance, but the other class on top
    with pytest.raises(StageError, match=r"same top class on 2 of 3 images \(all required\)"):
        check_exported(expected, {"saved_model": flipped})


def test_a_failed_check_leaves_no_litert_file(tiny_study, tmp_path):
    """The real export of the tiny study's model, held to a bound no file meets: it fails, and no model.tflite
    (nor its unchecked copy) is left to look finished."""
    images, _ = load_test_split(tiny_study)
    selection = json.loads((tiny_study / "results/selection/selection.json").read_text())
    paths = {"keras_path": tmp_path / "model.keras", "saved_model_dir": tmp_path / "saved_model",
             "litert_path": tmp_path / "model.tflite"}
    paths["litert_path"].write_bytes(b"an earlier export")
    with pytest.raises(StageError, match="does not reproduce the pipeline's predictions on the test split"):
        export_model(tiny_study / "results/selection/best_model.keras", selection["tta"], **paths, check_images=images[:8],
                     temperature=selection["temperature"], tolerance=-1.0)
    assert not list(tmp_path.glob("*.tflite"))


def test_readme_example_runs_with_numpy_pillow_and_litert_only(tiny_study, tmp_path):
    """The README's Python example, run in a fresh venv that holds only numpy, Pillow and the LiteRT runtime (with
    the runtime's own dependencies; installed from PyPI, the only test that does), on a picture of another size,
    prints the classes and probabilities that cifarflow predict prints."""
    from test_predict import cifarflow

    readme = (tiny_study / "results/export/README.md").read_text()
    example = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    assert len(example.strip().splitlines()) <= 12
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("model.tflite", "classes.json"):
        shutil.copy(tiny_study / "results/export" / name, folder / name)
    images, _ = load_test_split(tiny_study)
    from PIL import Image

    Image.fromarray(images[3]).resize((64, 48), Image.Resampling.BICUBIC).save(folder / "cat.png")
    (folder / "example.py").write_text(example)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pins = [line for line in (REPO / "requirements.txt").read_text().splitlines()
            if line.split("==")[0] in ("numpy", "pillow", "ai-edge-litert")]
    assert len(pins) == 3
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    installed = subprocess.run([venv / "bin/pip", "install", "-q", "--disable-pip-version-check", *pins],
                               capture_output=True, text=True, env=env, timeout=600)
    assert installed.returncode == 0, installed.stderr
    packages = subprocess.run([venv / "bin/pip", "list", "--format=freeze"], capture_output=True, text=True, env=env,
                              timeout=120).stdout
    names = {line.split("==")[0].lower() for line in packages.splitlines()}
    assert {"numpy", "pillow", "ai-edge-litert"} <= names and not names & {"tensorflow", "tensorflow-cpu", "keras", "jax"}
    ran = subprocess.run([venv / "bin/python", "example.py"], capture_output=True, text=True, cwd=folder, env=env, timeout=120)
    assert ran.returncode == 0, ran.stderr
    predicted = cifarflow("predict", "--model", str(folder / "model.tflite"), str(folder / "cat.png"))
    answer = [pair.rsplit(" ", 1) for pair in predicted.stdout.split(": ", 1)[1].strip().split(", ")]
    printed = [line.rsplit(" ", 1) for line in ran.stdout.splitlines()]
    assert printed[0] == answer[0]  # the top class and its probability
    assert [p for _, p in printed] == [p for _, p in answer]  # lower classes may tie (0.000) and swap places


@pytest.mark.parametrize("tta, temperature", [(None, None), ({"flip": True, "translate": 0}, None),
                                              ({"flip": False, "translate": 1}, None), ({"flip": True, "translate": 2}, None),
                                              (None, 0.4), ({"flip": True, "translate": 1}, 2.5)])
def test_test_time_augmentation_and_temperature_are_built_into_the_exported_model(tmp_path, tta, temperature):
    import keras

    from cifarflow.evaluate.calibration import scale_probabilities
    from cifarflow.train.models import build_model

    settings = {"arch": "lenet2", "weight_decay": 0.0, "dropout": False, "name": "untrained"}
    model = build_model(recipe(**settings), 10, mean=[120.0, 110.0, 100.0], std=[60.0, 60.0, 60.0], image_shape=(32, 32, 3))
    images = np.random.default_rng(0).integers(0, 256, size=(16, 32, 32, 3), dtype=np.uint8)
    path = tmp_path / "model.keras"
    exportable_model(model, tta, temperature).save(path)
    reloaded = keras.models.load_model(path)  # no custom objects
    expected = predict_probabilities(model, images, tta)
    if temperature:
        scaled = scale_probabilities(expected, temperature)
        assert np.abs(scaled - expected).max() > 1e-3  # the temperature changes these probabilities
        expected = scaled
    # float32 round-off of the model, amplified by at most 1 / temperature in the scaling
    assert_float32_close(reloaded.predict(images, verbose=0), expected, ulps=NETWORK_ULPS / min(1.0, temperature or 1.0))


def test_translate_and_flip_views_average_like_numpy():
    """predict_probabilities against a plain numpy statement of the views: half on the image, a quarter on each
    view shifted (edges mirrored) down-right and up-left, each split with its mirror image."""
    from cifarflow.train.models import build_model

    model = build_model(recipe(arch="lenet2", weight_decay=0.0, dropout=False), 10, [120.0] * 3, [60.0] * 3, (32, 32, 3))
    images = np.random.default_rng(1).integers(0, 256, size=(8, 32, 32, 3), dtype=np.uint8)
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    down_right, up_left = padded[:, :-2, :-2], padded[:, 2:, 2:]
    assert (down_right[:, 1:, 1:] == images[:, :-1, :-1]).all()

    def both(view):
        return (model.predict(view, verbose=0) + model.predict(view[:, :, ::-1], verbose=0)) / 2

    expected = 0.5 * both(images) + 0.25 * both(down_right) + 0.25 * both(up_left)
    got = predict_probabilities(model, images, {"flip": True, "translate": 1})
    assert_float32_close(got, expected / expected.sum(axis=1, keepdims=True), ulps=NETWORK_ULPS)


def test_model_card(tiny_study):
    export = tiny_study / "results/export"
    card = (export / "model_card.md").read_text()
    selection = json.loads((tiny_study / "results/selection/selection.json").read_text())
    metrics = json.loads((tiny_study / "results/test/metrics.json").read_text())
    for heading in ("## Data and split", "## Architecture", "## Training", "## Validation and test results",
                    "### Confusion-prone classes", "## Calibration", "## Robustness to corruptions", "## Known limits",
                    "## Software"):
        assert heading in card
    calibration = metrics["calibration"]
    assert f"T = **{selection['temperature']:.4f}**" in card and "15 equal-width bins" in card
    assert f"| expected calibration error (ECE) | {calibration['uncalibrated']['ece']:.4f} | " in card
    robustness = json.loads((tiny_study / "results/robustness/summary.json").read_text())
    assert f"**{robustness['mean_corruption_accuracy']:.2%}**" in card
    assert "weakest under " + ", ".join(f"**{name}**" for name in robustness["weakest"][:1]) in card
    assert f"`{selection['variant']}`" in card
    assert f"{metrics['accuracy']:.4f}" in card and f"{selection['val_accuracy']:.4f}" in card
    assert "32×32" in card and "10 CIFAR-10 classes" in card
    assert "| normalize | Normalization |" in card  # the layer table
    assert "`train.optimizer` | `adam`" in card  # the training settings
    assert "| keras | `3." in card and "| numpy | `" in card  # the software versions
    assert "not the official download" in card  # the tiny study's archive is a local file
    metadata = json.loads((export / "metadata.json").read_text())
    size = metadata["sizes"]["litert"] / 1e6
    assert f"| `model.tflite` | LiteRT (TFL3 flatbuffer) | {size:.1f} MB | {metadata['litert']['runtime']}, no TensorFlow" in card
    check = metadata["check"]
    assert (f"checked at export against the pipeline's predictions on all {check['images']} test images: largest "
            f"probability difference keras {check['max_abs_difference']['keras']:.1e}") in card
    assert f"litert {check['images']} of {check['images']} (all required)" in card
    assert 'Interpreter(model_path="model.tflite")' in card
    readme = (export / "README.md").read_text()
    assert f"`{selection['variant']}`" in readme and "| `model.tflite` |" in readme and "(N, 32, 32, 3)" in readme
    html = (export / "model_card.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<table>" in html and "<h2>Known limits</h2>" in html


def cifar100_card_inputs(image_size: int = 32) -> dict:
    """model_card's arguments for a CIFAR-100 run on the known lossy archive with a training budget."""
    classes = [f"class{i:02d}" for i in range(100)]
    rng = np.random.default_rng(0)
    confusion = pd.DataFrame(np.diag(rng.integers(50, 100, 100)) + rng.integers(0, 3, (100, 100)), index=classes, columns=classes)
    recall = rng.uniform(0.2, 0.9, 100)
    report = pd.DataFrame({"precision": recall, "recall": recall, "f1-score": recall, "support": 100}, index=classes)
    settings = {"arch": "lenet3", "weight_decay": 0.0, "train": {"optimizer": "sgd", "epochs": 3}, "name": "v"}
    shape = [None, image_size, image_size, 3]
    return dict(
        dataset=DATASETS["cifar100"].facts("coarse", [], 5000),
        source={"archive": "/data/cifar-100-python.tar.gz", "official": False, "md5": None,
                "sha256": "6fb7806f985b21c938aa6f693d2912a891a6547b4cf975edc08d22cacbf4d6cd"},
        splits={"train": {"images": 45000, "per_class_min": 440, "per_class_max": 460},
                "validation": {"images": 5000, "per_class_min": 40, "per_class_max": 60},
                "test": {"images": 10000, "per_class_min": 100, "per_class_max": 100}},
        stats={"mean": [129.3, 124.1, 112.4], "std": [68.2, 65.4, 70.4]},
        classes=classes,
        selection={"variant": "v", "metric": "val_log_loss", "val_accuracy": 0.41, "val_log_loss": 2.3,
                   "runner_up": None, "margin": None, "tta": {"flip": False, "translate": 0}, "level": 0.05,
                   "rule": "best mean val_log_loss: v (2.3000); the only variant", "seeds": [0, 1], "exported_seed": 1,
                   "export_rule": "the seed with the best val_log_loss (ties: the lowest seed)"},
        variants=pd.DataFrame([{"rank": 1, "variant": "v", "n_seeds": 2, "val_accuracy": 0.41, "val_accuracy_low": 0.39,
                                "val_accuracy_high": 0.43, "val_log_loss": 2.3, "verdict": "selected", "parameters": 1000}]),
        training={"settings": settings, "train_images": 1000, "epochs": 3, "device": "GPU", "threads": 4,
                  "training_seconds": 12.0, "images_per_second": 250.0, "software": {"keras": "3.15.1"}},
        export={"parameters": 1000, "software": {"keras": "3.16.0", "python": "3.12"}, "input": {"shape": shape},
                "sizes": {"keras": 40_000, "saved_model": 90_000, "litert": 30_000},
                "litert": {"file": "model.tflite", "runtime": "ai-edge-litert 2.3.0", "format": "TFL3 flatbuffer"},
                "check": {"images": 10000, "split": "test", "tolerance": 1e-5,
                          "max_abs_difference": {"keras": 0.0, "saved_model": 0.0, "litert": 7e-7},
                          "same_top_class": {"keras": 10000, "saved_model": 10000, "litert": 10000}},
                "layers": [{"name": "image", "type": "InputLayer", "output_shape": shape, "parameters": 0}]},
        test_metrics={"accuracy": 0.4, "log_loss": 2.4, "n_images": 10000,
                      "over_seeds": {"text": "accuracy 0.3950 ± 0.0071, log-loss 2.4100 ± 0.0141 (mean ± std over 2 seeds)"}},
        confusion=confusion, class_report=report, confused_pairs=5,
    )


def test_model_card_of_a_cifar100_run_on_the_lossy_archive():
    """The card's other branches: 100 classes (only the 10 hardest listed), the known lossy archive, a budget."""
    from cifarflow.report.modelcard import model_card, to_html

    inputs = cifar100_card_inputs()
    card = model_card(**inputs)
    assert "100 CIFAR-100 (coarse labels) classes" in card
    assert "The 10 classes with the lowest test recall" in card
    recall = inputs["class_report"]["recall"]
    assert all(f"| {name} |" in card for name in recall.sort_values().index[:10])
    assert card.count("**lossy**") == 2  # in the data section and in the known limits
    assert "first 1,000 images of the training split" in card
    assert "test figure comes from" not in card  # the full 10,000 test images
    assert "Exported with keras `3.16.0`." in card
    assert "<h3>Confusion-prone classes</h3>" in to_html(card, "card")
    assert "The exported model is seed 1 of 0, 1" in card and "± 0.0071" in card and "0.3900 to 0.4300" in card


def test_a_described_dataset_speaks_for_itself_in_the_model_card():
    """The dataset's name, its validation split and what its images are come from its description, never from CIFAR's."""
    from cifarflow.report.modelcard import model_card

    spec = described_dataset("shapes", {"folder": "shapes", "train_batches": ["a", "b"], "test_batches": ["t"],
                                        "meta_file": "meta", "label_sets": {"one": {"labels": "l", "names": "n"}},
                                        "max_batch_images": 100, "title": "Shapes", "about": "Drawn shapes on grey"})
    source = {"archive": "/data/shapes.tar.gz", "official": False, "md5": None, "sha256": "0" * 64}
    card = model_card(**cifar100_card_inputs() | {"dataset": spec.facts("fine", ["b"], 0), "source": source})
    assert "100 Shapes classes" in card and "the training batch(es) `b`, held out from training" in card
    assert "Drawn shapes on grey; pictures framed" in card
    assert "CIFAR" not in card.replace("CIFAR-10-C", "")


def test_model_card_gives_the_image_size_of_the_data():
    from cifarflow.report.modelcard import model_card

    card = model_card(**cifar100_card_inputs(image_size=24))
    assert card.count("**24×24 pixels**") == 2  # in the use and in the known limits
    assert "shape `(N, 24, 24, 3)`" in card and "input `uint8` (None, 24, 24, 3)" in card and "resized to 24×24" in card
    assert "32×32" not in card and "32, 32" not in card
