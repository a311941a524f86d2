"""The exported model (Keras file and SavedModel) and the model card of a finished tiny study."""

import json

import numpy as np
import pandas as pd
import pytest

from cifarflow.evaluation import predict_probabilities
from cifarflow.export import exportable_model
from floats import NETWORK_ULPS, assert_float32_close


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
    metadata = json.loads((export / "metadata.json").read_text())
    assert metadata["variant"] == selection["variant"] and metadata["seed"] == selection["exported_seed"]
    tta = selection["tta"]
    assert metadata["tta"] == tta and metadata["tta_in_model"] == (tta["flip"] or tta["translate"] > 0)
    assert metadata["input"]["dtype"] == "uint8" and metadata["input"]["shape"] == [None, 32, 32, 3]
    assert metadata["classes"] == classes and metadata["parameters"] > 0
    assert max(metadata["check"]["max_abs_difference"].values()) <= metadata["check"]["tolerance"]
    exported = f"results/variants/{selection['variant']}/seed-{selection['exported_seed']}"
    fitted = json.loads((tiny_study / exported / "calibration.json").read_text())["temperature"]
    assert metadata["temperature"] == selection["temperature"] == fitted  # configs/tiny.yaml: temperature scaling on
    assert metadata["temperature_in_model"] and "temperature-scaled" in metadata["output"]["meaning"]


def test_stored_test_predictions_are_temperature_scaled(tiny_study):
    """The probabilities the exported model must reproduce are the trained model's, scaled by the temperature."""
    import keras

    from cifarflow.calibration import scale_probabilities

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


@pytest.mark.parametrize("tta, temperature", [(None, None), ({"flip": True, "translate": 0}, None),
                                              ({"flip": False, "translate": 1}, None), ({"flip": True, "translate": 2}, None),
                                              (None, 0.4), ({"flip": True, "translate": 1}, 2.5)])
def test_test_time_augmentation_and_temperature_are_built_into_the_exported_model(tmp_path, tta, temperature):
    import keras

    from cifarflow.calibration import scale_probabilities
    from cifarflow.models import build_model

    settings = {"arch": "lenet2", "weight_decay": 0.0, "dropout": False, "name": "untrained"}
    model = build_model(settings, 10, mean=[120.0, 110.0, 100.0], std=[60.0, 60.0, 60.0], image_shape=(32, 32, 3))
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
    from cifarflow.models import build_model

    model = build_model({"arch": "lenet2", "weight_decay": 0.0, "dropout": False}, 10, [120.0] * 3, [60.0] * 3, (32, 32, 3))
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
        dataset="cifar100", label_mode="coarse",
        source={"archive": "/data/cifar-100-python.tar.gz", "official": False, "md5": None,
                "sha256": "6fb7806f985b21c938aa6f693d2912a891a6547b4cf975edc08d22cacbf4d6cd"},
        validation="the last 5,000 images of the training file",
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
                "layers": [{"name": "image", "type": "InputLayer", "output_shape": shape, "parameters": 0}]},
        test_metrics={"accuracy": 0.4, "log_loss": 2.4, "n_images": 10000,
                      "over_seeds": {"text": "accuracy 0.3950 ± 0.0071, log-loss 2.4100 ± 0.0141 (mean ± std over 2 seeds)"}},
        confusion=confusion, class_report=report, confused_pairs=5,
    )


def test_model_card_of_a_cifar100_run_on_the_lossy_archive():
    """The card's other branches: 100 classes (only the 10 hardest listed), the known lossy archive, a budget."""
    from cifarflow.modelcard import model_card, to_html

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


def test_model_card_gives_the_image_size_of_the_data():
    from cifarflow.modelcard import model_card

    card = model_card(**cifar100_card_inputs(image_size=24))
    assert card.count("**24×24 pixels**") == 2  # in the use and in the known limits
    assert "shape `(N, 24, 24, 3)`" in card and "input `uint8` (None, 24, 24, 3)" in card and "resized to 24×24" in card
    assert "32×32" not in card and "32, 32" not in card
