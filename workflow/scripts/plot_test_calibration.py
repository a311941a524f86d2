import stage  # noqa: F401
from cifarflow.runlog import logged
from cifarflow.fileio import load_json

with logged(snakemake.log[0]):
    from cifarflow.figures import reliability_diagrams

    metrics = load_json(snakemake.input.metrics)
    calibration = metrics["calibration"]
    before, after = calibration["uncalibrated"], calibration["calibrated"]
    panels = [
        {"title": f"as trained: ECE {before['ece']:.3f}, mean confidence {before['mean_confidence']:.3f}",
         "record": calibration["reliability"]["uncalibrated"]},
        {"title": f"temperature {calibration['temperature']:.3f}: ECE {after['ece']:.3f}, "
                  f"mean confidence {after['mean_confidence']:.3f}",
         "record": calibration["reliability"]["calibrated"], "chosen": True},
    ]
    reliability_diagrams(panels, snakemake.output.figure,
                         f"{metrics['variant']} on the test split (accuracy {metrics['accuracy']:.3f}, "
                         f"{metrics['n_images']:,} images, {calibration['bins']} bins): before and after temperature scaling",
                         columns=snakemake.params.columns)
