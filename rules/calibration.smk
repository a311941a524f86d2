# Calibration of every training, from the validation predictions that `validate` stored (nothing is predicted again).
rule calibrate:
    input:
        predictions=rules.validate.output.predictions,
        code=script_code("calibrate"),
    output:
        calibration=f"{TRAINING_RESULTS}/calibration.json",
    log:
        "logs/calibrate/{variant}/seed-{seed}.log",
    benchmark:
        "benchmarks/calibrate/{variant}/seed-{seed}.tsv"
    params:
        bins=config["calibration_bins"],
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/calibrate.py"
