# The report: figures, tables and the analysis notebook, each drawn from cached results (no rule here trains or
# predicts). Settings that only change the report live under config["report"], so editing them reruns report rules
# only.
#
# Figures: each figure function registered in workflow/cifarflow/report/figures/ (@registered("Title", ...), in the
# module of its report category) gets its rule, plot_<name>, made here by figure_rule (rules/report_outputs.smk): its
# arguments name the results (RESULTS) and settings (SETTINGS) it draws from, and the generic
# workflow/scripts/plot.py calls it and writes what it returns. Adding a figure: its function and its caption
# workflow/report/<name>.rst (docs/extending.md). The other rules run a script of their own, as they compute more than
# a figure from results: layer_table (loads each model), rule_graph (asks Snakemake for the rules), the notebook's and
# the model card.

import glob
import json
import os

from cifarflow.costs import study_cost_words
from cifarflow.report.catalog import FIGURE_MODULES, figure_functions

REPORT = config["report"]

# The results a figure function takes, by argument name (one file per training where the path has {seed}).
RESULTS = {
    "classes": Result(rules.unpack.output.classes),
    "train": Result(rules.normalize.output.train),
    "val": Result(rules.normalize.output.val),
    "test": Result(rules.normalize.output.test),
    "histories": Result(rules.train.output.history, read="histories_by_variant"),
    "summaries": Result(rules.train.output.summary),
    "calibrations": Result(rules.calibrate.output.calibration),
    "selection": Result(rules.select_best.output.selection),
    "variants": Result(rules.select_best.output.table),
    "pairs": Result(rules.select_best.output.pairs),
    "questions": Result(rules.answer_questions.output.questions),
    "comparison": Result("results/comparison/comparison.csv", made=bool(config["compare_with"])),  # rule compare_with
    "test_metrics": Result(rules.evaluate_test.output.metrics),
    "predictions": Result(rules.evaluate_test.output.predictions),
    "confusion": Result(rules.evaluate_test.output.confusion, read="indexed_csv"),
    "classification_report": Result(rules.evaluate_test.output.report, read="indexed_csv"),
    "robustness": Result(rules.evaluate_robustness.output.table),
    "robustness_summary": Result(rules.evaluate_robustness.output.summary),
    "benchmarks": Result(lambda wildcards: BENCHMARKS, read="benchmarks"),  # BENCHMARKS: at the end, once every rule exists
}

# The settings a figure function takes, by argument name.
SETTINGS = {
    "reference": config["seed_test_accuracy"],
    "per_class": REPORT["samples_per_class"],
    "per_kind": REPORT["test_samples"],
    "top": REPORT["confused_pairs"],
    "earlier": config["compare_with"],
    "level": config["significance_level"],
}

for function in figure_functions():
    figure_rule(function, RESULTS, SETTINGS)

# The workflow's own files, the figure modules among them (each figure function is a rule): the rule graph is
# redrawn when they change.
WORKFLOW_SOURCES = [
    os.path.relpath(path)
    for path in [os.path.join(workflow.basedir, "Snakefile")]
    + sorted(glob.glob(os.path.join(workflow.basedir, "rules", "*.smk")))
    + sorted(str(path) for path in FIGURE_MODULES.glob("*.py"))
]

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
        "sweep_table": rules.plot_regularization_sweep.output.csv,
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
