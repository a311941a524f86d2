rule select_best:
    input:
        metrics=expand("results/variants/{variant}/validation.json", variant=VARIANTS),
        models=expand("results/variants/{variant}/model.keras", variant=VARIANTS),
        calibrations=expand("results/variants/{variant}/calibration.json", variant=VARIANTS),
        code=script_code("select_best"),
    output:
        table="results/selection/variants.csv",
        selection="results/selection/selection.json",
        model="results/selection/best_model.keras",
    log:
        "logs/select_best.log",
    params:
        metric=config["selection_metric"],
        tta={name: tta(name) for name in VARIANTS},
        temperature_scaling=config["temperature_scaling"],
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/select_best.py"


rule evaluate_test:
    input:
        model=rules.select_best.output.model,
        selection=rules.select_best.output.selection,
        test="results/data/test.npz",
        classes="results/data/classes.json",
        code=script_code("evaluate_test"),
    output:
        metrics="results/test/metrics.json",
        confusion="results/test/confusion_matrix.csv",
        report="results/test/classification_report.csv",
        predictions="results/test/predictions.csv",
    log:
        "logs/evaluate_test.log",
    benchmark:
        "benchmarks/evaluate_test.tsv"
    params:
        seed_test_accuracy=config["seed_test_accuracy"],
        keras_backend=config["keras_backend"],
        bins=config["calibration_bins"],
    threads: 2
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/evaluate_test.py"
