import pandas as pd

import stage  # noqa: F401
from cifarflow.backend import use_backend
from cifarflow.runlog import logged
from cifarflow.fileio import image_digest, load_json, load_split, save_json, save_npz

with logged(snakemake.log[0]):
    use_backend(snakemake.params.keras_backend)
    import keras

    from cifarflow.evaluate.evaluation import predict_probabilities, validation_metrics

    images, labels = load_split(snakemake.input.val)
    model = keras.models.load_model(snakemake.input.model, compile=False)
    probs = predict_probabilities(model, images, snakemake.params.tta)
    # Stored once: calibration and temperature scaling read these instead of predicting again.
    save_npz(snakemake.output.predictions, labels=labels, probabilities=probs, images_sha256=image_digest(images))
    metrics = validation_metrics(snakemake.wildcards.variant, labels, probs,
                                 pd.read_csv(snakemake.input.history), load_json(snakemake.input.summary))
    metrics["seed"] = int(snakemake.wildcards.seed)
    save_json(snakemake.output.metrics, metrics)
    print(f"validation accuracy {metrics['val_accuracy']:.4f}, log-loss {metrics['val_log_loss']:.4f}")
