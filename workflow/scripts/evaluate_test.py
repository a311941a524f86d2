import stage  # noqa: F401
from cifarflow.backend import use_backend
from cifarflow.runlog import logged
from cifarflow.splits import load_json, load_split, save_json

with logged(snakemake.log[0]):
    use_backend(snakemake.params.keras_backend)
    import keras

    from cifarflow.evaluation import predict_probabilities, test_report

    out = snakemake.output
    selection = load_json(snakemake.input.selection)
    images, labels = load_split(snakemake.input.test)
    model = keras.models.load_model(snakemake.input.model, compile=False)
    result = test_report(labels, predict_probabilities(model, images, selection["tta"]), load_json(snakemake.input.classes))
    metrics = result["metrics"] | {"variant": selection["variant"], "seed_test_accuracy": snakemake.params.seed_test_accuracy}
    save_json(out.metrics, metrics)
    result["confusion_matrix"].to_csv(out.confusion)
    result["classification_report"].to_csv(out.report)
    result["predictions"].to_csv(out.predictions, index=False, float_format="%.6g")
    print(f"{selection['variant']} on the test split: accuracy {metrics['accuracy']:.4f}, log-loss {metrics['log_loss']:.4f}")
