# Selection over seeds: every training's validation predictions compared on the same images (intervals, paired
# bootstrap, McNemar), the best mean wins unless the tie rule picks another of the variants tied with it; then every
# seed of the selected variant on the test split, read only now.
rule select_best:
    input:
        metrics=every_training(f"{TRAINING_RESULTS}/validation.json"),
        predictions=every_training(f"{TRAINING_RESULTS}/val_predictions.npz"),
        calibrations=every_training(f"{TRAINING_RESULTS}/calibration.json"),
        models=every_training(f"{TRAINING_RESULTS}/model.keras"),
        code=script_code("select_best"),
    output:
        table="results/selection/variants.csv",
        trainings="results/selection/trainings.csv",
        comparisons="results/selection/comparisons.csv",
        pairs="results/selection/pairwise.csv",
        selection="results/selection/selection.json",
        model="results/selection/best_model.keras",
        seed_models=directory("results/selection/seed_models"),
    log:
        "logs/select_best.log",
    benchmark:
        "benchmarks/select_best.tsv"
    params:
        metric=config["selection_metric"],
        level=config["significance_level"],
        resamples=config["bootstrap_resamples"],
        bootstrap_seed=config["bootstrap_seed"],
        tie_rule=config["tie_rule"],
        tta={name: tta(name) for name in VARIANTS},
        temperature_scaling=config["temperature_scaling"],
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/select_best.py"


# The seed's conclusions (config `questions`), each answered by the paired comparison of its two variants.
rule answer_questions:
    input:
        pairs=rules.select_best.output.pairs,
        code=script_code("answer_questions"),
    output:
        questions="results/selection/questions.csv",
    log:
        "logs/answer_questions.log",
    params:
        questions=config["questions"],
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/answer_questions.py"
