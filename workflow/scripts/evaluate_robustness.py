import time
from pathlib import Path

import pandas as pd

import stage  # noqa: F401
from cifarflow.backend import use_backend
from cifarflow.runlog import logged
from cifarflow.fileio import load_json, load_npz, load_split, save_json

with logged(snakemake.log[0]):
    use_backend(snakemake.params.keras_backend)
    import keras

    from cifarflow.evaluate.evaluation import calibrated_probabilities
    from cifarflow.evaluate.robustness import robustness_summary, score_corruption

    bins = snakemake.params.bins
    selection = load_json(snakemake.input.selection)
    model = keras.models.load_model(snakemake.input.model, compile=False)

    def score(name, severity, images, labels):
        raw, probs = calibrated_probabilities(model, images, selection["tta"], selection["temperature"])
        return score_corruption(name, severity, labels, probs, raw, bins)

    rows, predicted, started = [], 0, time.perf_counter()
    for path in snakemake.input.corrupted:
        stored = load_npz(path)
        labels, indices = stored["labels"], stored["indices"]
        for severity, images in zip(stored["severities"], stored["images"]):
            rows.append(score(Path(path).stem, severity, images, labels))
            predicted += len(images)
            print(f"{rows[-1]['corruption']} severity {severity}: accuracy {rows[-1]['accuracy']:.4f}, ECE {rows[-1]['ece']:.4f}")
    seconds = time.perf_counter() - started
    test_images, test_labels = load_split(snakemake.input.test)
    clean = score("clean", 0, test_images[indices], test_labels[indices])  # the same images, uncorrupted
    table = pd.DataFrame(rows)
    table.to_csv(snakemake.output.table, index=False)
    summary = robustness_summary(table, clean) | {
        "variant": selection["variant"], "temperature": selection["temperature"], "bins": bins,
        "seconds": seconds, "seconds_per_10000_images": seconds / predicted * 1e4}
    save_json(snakemake.output.summary, summary)
    print(f"{selection['variant']}: clean accuracy {clean['accuracy']:.4f} on {len(indices):,} test images, mean corruption "
          f"accuracy {summary['mean_corruption_accuracy']:.4f} ({summary['relative_accuracy']:.1%} of clean); weakest: "
          f"{', '.join(summary['weakest'])}; {predicted:,} corrupted images in {seconds:.1f} s "
          f"({summary['seconds_per_10000_images']:.1f} s per 10,000)")
