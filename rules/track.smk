# MLflow tracking (config `tracking`): the finished result files of every training and of the study logged to MLflow.
# No rule reads what these write, so training never waits on tracking, and a tracking failure (a server that is down)
# fails these jobs alone. They run one after the other (track_study reads track_trainings' table) and where Snakemake
# runs (local rules): one process writes the store at a time. MLflow's SQLite store admits one writer at a time and
# migrates its schema when first opened, which two processes starting together can break; one job per study also
# pays MLflow's start-up once, not once per training. Each run carries the digest of what it logs, so a job that finds
# a run with that digest logs nothing (docs/tracking.md).

TRACKING = config["tracking"]
from cifarflow.track.tracking import experiment_name

TRACKING_EXPERIMENT = experiment_name(config["tracking_experiment"], DATASET.name)
# train_code: the files of the code fingerprint tag (what the trainings ran), hashed when the runs are logged; a param,
# not an input: the tracking scripts do not run them (an edit to them retrains, and so re-tracks, anyway)
TRACKING_PARAMS = {"tracking_uri": config["tracking_uri"], "experiment": TRACKING_EXPERIMENT, "dataset": DATASET.name,
                   "train_code": script_code("train")}
TRACKING_TARGETS = ["results/tracking/study.json"] if TRACKING else []


rule track_trainings:
    input:
        summaries=every_training(f"{TRAINING_RESULTS}/training.json"),
        histories=every_training(f"{TRAINING_RESULTS}/history.csv"),
        metrics=every_training(f"{TRAINING_RESULTS}/validation.json"),
        calibrations=every_training(f"{TRAINING_RESULTS}/calibration.json"),
        predictions=every_training(f"{TRAINING_RESULTS}/val_predictions.npz"),
        train="results/data/train.npz",
        val="results/data/val.npz",
        code=script_code("track_trainings"),
    output:
        runs="results/tracking/trainings.csv",
    log:
        "logs/track_trainings.log",
    benchmark:
        "benchmarks/track_trainings.tsv"
    params:
        **TRACKING_PARAMS,
    localrule: True
    conda:
        "../envs/track.yaml"
    script:
        "../workflow/scripts/track_trainings.py"


rule track_study:
    input:
        runs=rules.track_trainings.output.runs,
        selection=rules.select_best.output.selection,
        variants=rules.select_best.output.table,
        trainings=rules.select_best.output.trainings,
        pairs=rules.select_best.output.pairs,
        test_metrics=rules.evaluate_test.output.metrics,
        test_predictions=rules.evaluate_test.output.predictions,
        confusion=rules.evaluate_test.output.confusion,
        class_report=rules.evaluate_test.output.report,
        robustness=rules.evaluate_robustness.output.summary,
        robustness_table=rules.evaluate_robustness.output.table,
        report=rules.notebook_html.output.html,
        model_card=rules.model_card.output.markdown,
        model_card_html=rules.model_card.output.html,
        model=rules.export_model.output.keras,
        train="results/data/train.npz",
        val="results/data/val.npz",
        test="results/data/test.npz",
        code=script_code("track_study"),
    output:
        study="results/tracking/study.json",
    log:
        "logs/track_study.log",
    benchmark:
        "benchmarks/track_study.tsv"
    params:
        **TRACKING_PARAMS,
    localrule: True
    conda:
        "../envs/track.yaml"
    script:
        "../workflow/scripts/track_study.py"


# `compare_with`: this study against a named earlier one (its folder, or runs:/<id> of its MLflow study run) on the
# same validation and test images; rules/report.smk draws it into the report. Reads stored predictions only, like the
# in-study comparisons.


rule compare_with:
    input:
        trainings=rules.select_best.output.trainings,
        selection=rules.select_best.output.selection,
        metrics=every_training(f"{TRAINING_RESULTS}/validation.json"),
        predictions=every_training(f"{TRAINING_RESULTS}/val_predictions.npz"),
        summaries=every_training(f"{TRAINING_RESULTS}/training.json"),
        test_predictions=rules.evaluate_test.output.predictions,
        test="results/data/test.npz",
        code=script_code("compare_with"),
    output:
        table="results/comparison/comparison.csv",
    log:
        "logs/compare_with.log",
    benchmark:
        "benchmarks/compare_with.tsv"
    params:
        other=config["compare_with"],
        tracking_uri=config["tracking_uri"],
        metric=config["selection_metric"],
        level=config["significance_level"],
        resamples=config["bootstrap_resamples"],
        bootstrap_seed=config["bootstrap_seed"],
    localrule: True
    conda:
        "../envs/track.yaml"
    script:
        "../workflow/scripts/compare_with.py"
