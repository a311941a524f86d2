import stage  # noqa: F401
from cifarflow.runlog import logged
from cifarflow.fileio import load_npz, save_json

with logged(snakemake.log[0]):
    from cifarflow.evaluate.calibration import TEMPERATURE_RANGE, calibrate

    stored = load_npz(snakemake.input.predictions)
    result = calibrate(stored["labels"], stored["probabilities"], snakemake.params.bins)
    variant, seed = snakemake.wildcards.variant, int(snakemake.wildcards.seed)
    save_json(snakemake.output.calibration, {"variant": variant, "seed": seed, **result})
    before, after = result["uncalibrated"], result["calibrated"]
    print(f"{variant} seed {seed}: temperature {result['temperature']:.4f}; validation ECE "
          f"{before['ece']:.4f} -> {after['ece']:.4f}, NLL {before['nll']:.4f} -> {after['nll']:.4f} "
          f"({result['bins']} equal-width bins, {before['images']:,} images)")
    if result["temperature_at_bound"]:
        print(f"WARNING: the temperature is at an end of its search range {TEMPERATURE_RANGE}: the validation "
              "predictions give it no finite optimum (e.g. all of them right); the scaling is of little meaning")
