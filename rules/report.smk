# The report: figures, tables and the analysis notebook, each drawn from cached results (no rule here trains or
# predicts). Each rule is one report_rule(...) row: its name, inputs, outputs (figures are figure(...) outputs with a
# caption in workflow/report/) and params; settings that only change the report live under config["report"], so
# editing them reruns report rules only. A row with plot="<function>" needs no script of its own: the generic
# workflow/scripts/plot.py calls the function registered under that name (@registered, in the module of its report
# category under workflow/cifarflow/report/figures/) with the inputs, read by file type (read={...} names another
# reader), and the params, and writes what it returns to the outputs. Adding a figure: its function in its
# category's module, a row here and its caption (docs/extending.md). The rows that run a script of their own compute
# more than a figure from results: layer_table (loads each model), rule_graph (asks Snakemake for the rules) and the
# notebook's.

import glob
import json
import os

from cifarflow.costs import study_cost_words

REPORT = config["report"]
FIGURES = "results/figures"

# The workflow's own files: the rule graph is redrawn when they change.
WORKFLOW_SOURCES = [
    os.path.relpath(path)
    for path in [os.path.join(workflow.basedir, "Snakefile")]
    + sorted(glob.glob(os.path.join(workflow.basedir, "rules", "*.smk")))
]


# --- data ---------------------------------------------------------------------------------------

report_rule(
    "plot_class_counts",
    input={
        "train": "results/data/train.npz",
        "val": "results/data/val.npz",
        "test": "results/data/test.npz",
        "classes": "results/data/classes.json",
    },
    output={"figure": figure(f"{FIGURES}/data/class_counts.png", "class_counts", "Images per class", DATA)},
    plot="class_counts",
)

report_rule(
    "plot_sample_images",
    input={"train": "results/data/train.npz", "classes": "results/data/classes.json"},
    output={"figure": figure(f"{FIGURES}/data/sample_images.png", "sample_images", "Sample images per class", DATA)},
    params={"per_class": REPORT["samples_per_class"], "seed": 0},
    plot="sample_images",
)

# --- training -----------------------------------------------------------------------------------

report_rule(
    "plot_learning_curves",
    input={"histories": seeds_of_variant(f"{TRAINING_RESULTS}/history.csv")},
    output={
        "figure": figure(
            f"{FIGURES}/training/variants/{{variant}}.png",
            "learning_curves",
            "Learning curves",
            TRAINING,
            "Learning curves per variant",
        )
    },
    params={"variant": lambda wildcards: wildcards.variant, "reference": config["seed_test_accuracy"]},
    plot="variant_learning_curves",
    read={"histories": "histories_by_variant"},
)

report_rule(
    "plot_all_learning_curves",
    input={
        "histories": every_training(f"{TRAINING_RESULTS}/history.csv"),
        "selection": "results/selection/selection.json",
    },
    output={
        "figure": figure(
            f"{FIGURES}/training/all_variants.png",
            "all_learning_curves",
            "Validation curves of all variants",
            TRAINING,
            "All variants",
        )
    },
    params={"reference": config["seed_test_accuracy"]},
    plot="all_learning_curves",
    read={"histories": "histories_by_variant"},
)

# --- architectures ------------------------------------------------------------------------------

report_rule(
    "layer_table",
    input={  # the architecture of the variant's first seed (every seed has the same)
        "model": first_seed_of_variant(f"{TRAINING_RESULTS}/model.keras"),
        "summary": first_seed_of_variant(f"{TRAINING_RESULTS}/training.json"),
    },
    output={"table": figure(f"{FIGURES}/architectures/{{variant}}.html", "layer_table", "Layer table", ARCHITECTURES)},
    params={"keras_backend": config["keras_backend"]},
)

# --- selection ----------------------------------------------------------------------------------

report_rule(
    "plot_variant_comparison",
    input={"table": "results/selection/variants.csv", "selection": "results/selection/selection.json"},
    output={
        "figure": figure(f"{FIGURES}/selection/variants.png", "variant_comparison", "Variant comparison", SELECTION),
        "table": figure(f"{FIGURES}/selection/variants.html", "variant_table", "Variant table", SELECTION),
    },
    params={"reference": config["seed_test_accuracy"]},
    plot="variant_comparison",
)

report_rule(
    "plot_regularization_sweep",
    input={
        "summaries": every_training(f"{TRAINING_RESULTS}/training.json"),
        "histories": every_training(f"{TRAINING_RESULTS}/history.csv"),
        "variants": "results/selection/variants.csv",
        "selection": "results/selection/selection.json",
    },
    output={
        "figure": figure(
            f"{FIGURES}/selection/regularization_sweep.png", "regularization_sweep", "Regularization sweep", SELECTION
        ),
        "table": f"{FIGURES}/selection/regularization_sweep.csv",
    },
    plot="regularization_sweep",
    read={"histories": "histories_by_variant"},
)
report_rule(
    "plot_verdicts",
    input={
        "pairs": "results/selection/pairwise.csv",
        "table": "results/selection/variants.csv",
        "selection": "results/selection/selection.json",
    },
    output={"figure": figure(f"{FIGURES}/selection/verdicts.png", "verdicts", "Paired comparisons", SELECTION)},
    plot="verdicts",
)
report_rule(
    "plot_questions",
    input={"questions": rules.answer_questions.output.questions},
    output={"figure": figure(f"{FIGURES}/selection/questions.png", "questions", "The seed's conclusions", SELECTION)},
    plot="questions",
)

report_rule(
    "plot_study_comparison",
    input={"comparison": "results/comparison/comparison.csv"},  # rule compare_with (rules/track.smk)
    output={
        "figure": figure(f"{FIGURES}/comparison/comparison.png", "study_comparison", "Against an earlier study", SELECTION),
        "table": figure(f"{FIGURES}/comparison/comparison.html", "study_comparison_table", "Against an earlier study: table",
                        SELECTION),
    },
    params={"earlier": config["compare_with"], "level": config["significance_level"]},
    plot="study_comparison",
    requested=bool(config["compare_with"]),
)

# --- test ---------------------------------------------------------------------------------------

report_rule(
    "plot_confusion_matrix",
    input={"confusion": "results/test/confusion_matrix.csv"},
    output={"figure": figure(f"{FIGURES}/test/confusion_matrix.png", "confusion_matrix", "Confusion matrix", TEST)},
    plot="confusion_matrix",
    read={"confusion": "indexed_csv"},
)

report_rule(
    "plot_class_metrics",
    input={"report": "results/test/classification_report.csv"},
    output={
        "figure": figure(
            f"{FIGURES}/test/class_metrics.png", "class_metrics", "Per-class precision, recall and F1", TEST
        )
    },
    plot="class_metrics",
    read={"report": "indexed_csv"},
)

report_rule(
    "plot_test_samples",
    input={"predictions": "results/test/predictions.csv", "test": "results/data/test.npz"},
    output={"figure": figure(f"{FIGURES}/test/samples.png", "test_samples", "Sample predictions", TEST)},
    params={"per_kind": REPORT["test_samples"], "seed": 0},
    plot="test_samples",
)

report_rule(
    "plot_confused_pairs",
    input={
        "confusion": "results/test/confusion_matrix.csv",
        "predictions": "results/test/predictions.csv",
        "test": "results/data/test.npz",
    },
    output={
        "figure": figure(f"{FIGURES}/test/confused_pairs.png", "confused_pairs", "Most-confused class pairs", TEST),
        "table": f"{FIGURES}/test/confused_pairs.csv",
    },
    params={"top": REPORT["confused_pairs"], "examples": 4},
    plot="confused_pairs",
    read={"confusion": "indexed_csv"},
)

# --- beyond accuracy: calibration and robustness ------------------------------------------------

report_rule(
    "plot_calibration",
    input={
        "calibrations": every_training(f"{TRAINING_RESULTS}/calibration.json"),
        "selection": "results/selection/selection.json",
    },
    output={
        "figure": figure(
            f"{FIGURES}/calibration/reliability.png",
            "reliability",
            "Reliability diagrams of all variants",
            BEYOND_ACCURACY,
            "Calibration",
        ),
        "table": figure(
            f"{FIGURES}/calibration/variants.html", "calibration_table", "Calibration table", BEYOND_ACCURACY, "Calibration"
        ),
        "csv": f"{FIGURES}/calibration/variants.csv",
    },
    params={"columns": 4},  # reliability diagrams per row
    plot="calibration",
)

report_rule(
    "plot_test_calibration",
    input={"metrics": "results/test/metrics.json"},
    output={
        "figure": figure(
            f"{FIGURES}/calibration/test_reliability.png",
            "test_reliability",
            "Test reliability before and after temperature scaling",
            BEYOND_ACCURACY,
            "Calibration",
        )
    },
    params={"columns": 2},
    plot="test_reliability",
)

report_rule(
    "plot_robustness",
    input={"table": "results/robustness/accuracy.csv", "summary": "results/robustness/summary.json"},
    output={
        "heatmap": figure(
            f"{FIGURES}/robustness/heatmap.png",
            "corruption_heatmap",
            "Accuracy per corruption and severity",
            BEYOND_ACCURACY,
            "Robustness",
        ),
        "curves": figure(
            f"{FIGURES}/robustness/severity_curves.png",
            "severity_curves",
            "Accuracy and ECE against severity",
            BEYOND_ACCURACY,
            "Robustness",
        ),
    },
    plot="robustness",
)

# --- pipeline -----------------------------------------------------------------------------------

report_rule(
    "rule_graph",
    input={"sources": WORKFLOW_SOURCES},
    output={
        "dot": f"{FIGURES}/pipeline/rulegraph.dot",
        "figure": figure(f"{FIGURES}/pipeline/rulegraph.png", "rule_graph", "Rule graph", PIPELINE),
    },
    params={
        "snakefile": lambda wildcards, input: input.sources[0],  # relative: a study moved elsewhere redraws nothing
        "config": json.loads(json.dumps(config, sort_keys=True)),  # key order fixed: reordering a config file changes nothing
    },
)

# --- the analysis notebook ----------------------------------------------------------------------

report_rule(
    "analysis_notebook",
    input={
        "notebook": os.path.relpath(os.path.join(workflow.basedir, "workflow", "notebooks", "analysis.ipynb")),
        "variants_table": "results/selection/variants.csv",
        "comparisons_table": "results/selection/comparisons.csv",
        "pairs_table": "results/selection/pairwise.csv",
        "questions_table": rules.answer_questions.output.questions,
        "training_records": every_training(f"{TRAINING_RESULTS}/training.json"),
        "training_histories": every_training(f"{TRAINING_RESULTS}/history.csv"),
        "selection": "results/selection/selection.json",
        "sweep_table": rules.plot_regularization_sweep.output.table,
        "test_metrics": "results/test/metrics.json",
        "classification_report": "results/test/classification_report.csv",
        "confusion_matrix": "results/test/confusion_matrix.csv",
        "calibration_table": rules.plot_calibration.output.csv,
        "robustness_table": "results/robustness/accuracy.csv",
        "robustness_summary": "results/robustness/summary.json",
    },
    output={"notebook": "results/notebook/analysis.ipynb"},
    params={
        "kernel": "python3",
        "parameters": {
            "dataset": config["dataset"],
            "seed_test_accuracy": config["seed_test_accuracy"],
            # what the seed's own study, as config.yaml sets it, would cost: the figure the cost line gives
            "seed_study_cost": study_cost_words(SHIPPED_CONFIG),
        },
    },
    script_name="run_notebook",
)

report_rule(
    "notebook_html",
    input={
        "notebook": rules.analysis_notebook.output.notebook,
        "template": os.path.relpath(os.path.join(workflow.basedir, "workflow", "notebooks", "offline.html.j2")),
    },
    output={"html": figure(f"{FIGURES}/summary/analysis.html", "analysis_notebook", "Analysis notebook", SUMMARY)},
    params={"show_code": REPORT["notebook_code"], "title": "cifarflow: analysis of the study"},
)

# --- model card ---------------------------------------------------------------------------------

rule model_card:
    input:
        selection=rules.select_best.output.selection,
        variants=rules.select_best.output.table,
        questions=rules.answer_questions.output.questions,
        trainings=every_training(f"{TRAINING_RESULTS}/training.json"),
        export=rules.export_model.output.metadata,
        test_metrics=rules.evaluate_test.output.metrics,
        confusion=rules.evaluate_test.output.confusion,
        class_report=rules.evaluate_test.output.report,
        robustness=rules.evaluate_robustness.output.summary,
        robustness_table=rules.evaluate_robustness.output.table,
        train="results/data/train.npz",
        val="results/data/val.npz",
        test="results/data/test.npz",
        stats="results/data/normalization.json",
        classes="results/data/classes.json",
        code=script_code("model_card"),
    output:
        markdown=figure("results/export/model_card.md", "model_card", "Model card (Markdown)", MODEL),
        html=figure("results/export/model_card.html", "model_card", "Model card", MODEL),
    log:
        "logs/model_card.log",
    params:
        dataset=DATASET.facts(config["cifar100_labels"], config["validation_batches"], config["validation_size"]),
        source=archive_record(),
        confused_pairs=config["report"]["confused_pairs"],
        weakest_corruptions=3,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/model_card.py"


# --- pipeline costs (last: it reads the benchmark files of the rules above) ------------------------

# Benchmark files the figure reads: the study's costly jobs (per variant where the rule has a variant) and the
# report's own costly jobs.
BENCHMARKS = [
    str(rules.unpack.benchmark),
    str(rules.normalize.benchmark),
    *every_training(str(rules.train.benchmark)),
    *every_training(str(rules.validate.benchmark)),
    *every_training(str(rules.calibrate.benchmark)),
    str(rules.select_best.benchmark),
    str(rules.evaluate_test.benchmark),
    *expand(str(rules.corrupt_test.benchmark), corruption=config["corruptions"]),
    str(rules.evaluate_robustness.benchmark),
    *expand(str(rules.layer_table.benchmark), variant=VARIANTS),
    str(rules.rule_graph.benchmark),
    str(rules.analysis_notebook.benchmark),
]

report_rule(
    "plot_benchmarks",
    input={"table": BENCHMARKS},
    output={
        "figure": figure(f"{FIGURES}/pipeline/benchmarks.png", "benchmarks", "Run time and memory per job", PIPELINE),
        "table": f"{FIGURES}/pipeline/benchmarks.csv",
    },
    plot="job_costs",
    read={"table": "benchmarks"},
)
