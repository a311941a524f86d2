from pathlib import Path

import pandas as pd

import stage  # noqa: F401
from cifarflow.backend import use_backend
from cifarflow.runlog import logged
from cifarflow.fileio import load_json, load_split, save_json

with logged(snakemake.log[0]):
    use_backend(snakemake.params.keras_backend)
    import keras

    from cifarflow.evaluate.calibration import calibration_metrics, reliability_record
    from cifarflow.evaluate.evaluation import calibrated_probabilities, seed_spread, test_report

    out, bins = snakemake.output, snakemake.params.bins
    selection = load_json(snakemake.input.selection)
    images, labels = load_split(snakemake.input.test)
    classes = load_json(snakemake.input.classes)
    # Every seed of the selected variant; the exported seed's predictions make the detailed report.
    seeds = []
    for seed in selection["seeds"]:
        model = keras.models.load_model(Path(snakemake.input.seed_models) / f"seed-{seed}.keras", compile=False)
        raw, probs = calibrated_probabilities(model, images, selection["tta"], selection["temperatures"][str(seed)])
        result = test_report(labels, probs, classes)
        seeds.append({"seed": seed, **result["metrics"]})
        is_exported = seed == selection["exported_seed"]
        if is_exported:
            exported = raw, probs, result
        print(f"seed {seed}{' (exported)' if is_exported else ''}: accuracy {result['metrics']['accuracy']:.4f}, "
              f"log-loss {result['metrics']['log_loss']:.4f}")
    raw, probs, result = exported
    calibration = {
        "temperature": selection["temperature"],
        "bins": bins,
        "uncalibrated": calibration_metrics(labels, raw, bins),
        "calibrated": calibration_metrics(labels, probs, bins),
        "reliability": {"uncalibrated": reliability_record(labels, raw, bins),
                        "calibrated": reliability_record(labels, probs, bins)},
    }
    spread = seed_spread(seeds)
    metrics = result["metrics"] | {"variant": selection["variant"], "seed": selection["exported_seed"],
                                   "seed_test_accuracy": snakemake.params.seed_test_accuracy,
                                   "calibration": calibration, "over_seeds": spread}
    save_json(out.metrics, metrics)
    pd.DataFrame(seeds).to_csv(out.seeds, index=False)
    result["confusion_matrix"].to_csv(out.confusion)
    result["classification_report"].to_csv(out.report)
    predictions = result["predictions"]
    predictions.insert(predictions.columns.get_loc("confidence") + 1, "uncalibrated_confidence", raw.max(axis=1))
    predictions.to_csv(out.predictions, index=False, float_format="%.6g")
    before, after = calibration["uncalibrated"], calibration["calibrated"]
    print(f"{selection['variant']} on the test split: {spread['text']}; exported seed "
          f"{selection['exported_seed']}: accuracy {metrics['accuracy']:.4f}, log-loss {metrics['log_loss']:.4f}; "
          f"temperature {selection['temperature']:.4f}: ECE {before['ece']:.4f} -> {after['ece']:.4f} ({bins} bins), "
          f"mean confidence {before['mean_confidence']:.4f} -> {after['mean_confidence']:.4f}")
