# Robustness of the selected model: corrupted copies of the test split, made once per corruption (all five
# severities) and reused by every evaluation, then the selected model scored on them.
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
