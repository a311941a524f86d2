# Every training scored on the validation split (its predictions stored), then calibrated from those predictions
# (nothing is predicted again).
rule validate:
    input:
        model=rules.train.output.model,
        history=rules.train.output.history,
        summary=rules.train.output.summary,
        val="results/data/val.npz",
        code=script_code("validate"),
    output:
        metrics=f"{TRAINING_RESULTS}/validation.json",
        predictions=f"{TRAINING_RESULTS}/val_predictions.npz",  # labels, probabilities, the images' digest: read by calibrate and the paired tests
    log:
        "logs/validate/{variant}/seed-{seed}.log",
    benchmark:
        "benchmarks/validate/{variant}/seed-{seed}.tsv"
    params:
        tta=lambda wildcards: tta(wildcards.variant),
        keras_backend=config["keras_backend"],
    threads: 2
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/validate.py"


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
