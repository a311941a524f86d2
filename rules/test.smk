# The one look at the test split, after selection: the selected model (and every seed of its variant) scored on it,
# then its robustness: corrupted copies of the test split, made once per corruption (all five severities) and reused
# by every evaluation, the selected model scored on them.
rule evaluate_test:
    input:
        model=rules.select_best.output.model,
        selection=rules.select_best.output.selection,
        seed_models=rules.select_best.output.seed_models,
        test="results/data/test.npz",
        classes="results/data/classes.json",
        code=script_code("evaluate_test"),
    output:
        metrics="results/test/metrics.json",
        confusion="results/test/confusion_matrix.csv",
        report="results/test/classification_report.csv",
        predictions="results/test/predictions.csv",
        seeds="results/test/seeds.csv",  # every seed of the selected variant
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


CORRUPTED = "results/robustness/corrupted/{corruption}.npz"


wildcard_constraints:
    corruption="|".join(re.escape(name) for name in config["corruptions"]),


rule corrupt_test:
    input:
        test="results/data/test.npz",
        code=script_code("corrupt_test"),
    output:
        images=CORRUPTED,
    log:
        "logs/corrupt_test/{corruption}.log",
    benchmark:
        "benchmarks/corrupt_test/{corruption}.tsv"
    params:
        images=config["robustness_images"],
        seed=config["robustness_seed"],
    threads: 1
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/corrupt_test.py"


rule evaluate_robustness:
    input:
        model=rules.select_best.output.model,
        selection=rules.select_best.output.selection,
        corrupted=expand(CORRUPTED, corruption=config["corruptions"]),
        test="results/data/test.npz",
        code=script_code("evaluate_robustness"),
    output:
        table="results/robustness/accuracy.csv",
        summary="results/robustness/summary.json",
    log:
        "logs/evaluate_robustness.log",
    benchmark:
        "benchmarks/evaluate_robustness.tsv"
    params:
        bins=config["calibration_bins"],
        keras_backend=config["keras_backend"],
    threads: 2
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/evaluate_robustness.py"
