# Calibration of every variant, from the validation predictions that `validate` stored (nothing is predicted again).
rule calibrate:
    input:
        predictions="results/variants/{variant}/val_predictions.npz",
        code=script_code("calibrate"),
    output:
        calibration="results/variants/{variant}/calibration.json",
    log:
        "logs/calibrate/{variant}.log",
    benchmark:
        "benchmarks/calibrate/{variant}.tsv"
    params:
        bins=config["calibration_bins"],
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/calibrate.py"
