# The report: figures, tables and the analysis notebook, each drawn from cached results (no rule here trains or
# predicts). Every figure is a report() output with a caption in workflow/report/; settings that only change the
# report live under config["report"], so editing them reruns report rules only.

import glob
import json

REPORT = config["report"]
FIGURES = "results/figures"


# The workflow's own files: the rule graph is redrawn when they change.
WORKFLOW_SOURCES = [
    os.path.relpath(path)
    for path in [os.path.join(workflow.basedir, "Snakefile")]
    + sorted(glob.glob(os.path.join(workflow.basedir, "rules", "*.smk")))
]


# --- data ---------------------------------------------------------------------------------------


rule plot_class_counts:
    input:
        train="results/data/train.npz",
        val="results/data/val.npz",
        test="results/data/test.npz",
        classes="results/data/classes.json",
        code=script_code("plot_class_counts"),
    output:
        figure=report(
            f"{FIGURES}/data/class_counts.png",
            caption="../workflow/report/class_counts.rst",
            category=DATA,
            labels={"figure": "Images per class"},
        ),
    log:
        "logs/plot_class_counts.log",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/plot_class_counts.py"


rule plot_sample_images:
    input:
        train="results/data/train.npz",
        classes="results/data/classes.json",
        code=script_code("plot_sample_images"),
    output:
        figure=report(
            f"{FIGURES}/data/sample_images.png",
            caption="../workflow/report/sample_images.rst",
            category=DATA,
            labels={"figure": "Sample images per class"},
        ),
    log:
        "logs/plot_sample_images.log",
    params:
        per_class=REPORT["samples_per_class"],
        seed=0,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/plot_sample_images.py"


# --- training -----------------------------------------------------------------------------------


rule plot_learning_curves:
    input:
        history="results/variants/{variant}/history.csv",
        code=script_code("plot_learning_curves"),
    output:
        figure=report(
            f"{FIGURES}/training/variants/{{variant}}.png",
            caption="../workflow/report/learning_curves.rst",
            category=TRAINING,
            subcategory="Learning curves per variant",
            labels={"variant": "{variant}", "figure": "Learning curves"},
        ),
    log:
        "logs/plot_learning_curves/{variant}.log",
    params:
        reference=config["seed_test_accuracy"],
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/plot_learning_curves.py"


rule plot_all_learning_curves:
    input:
        histories=expand("results/variants/{variant}/history.csv", variant=VARIANTS),
        selection="results/selection/selection.json",
        code=script_code("plot_all_learning_curves"),
    output:
        figure=report(
            f"{FIGURES}/training/all_variants.png",
            caption="../workflow/report/all_learning_curves.rst",
            category=TRAINING,
            subcategory="All variants",
            labels={"figure": "Validation curves of all variants"},
        ),
    log:
        "logs/plot_all_learning_curves.log",
    params:
        variants=list(VARIANTS),
        reference=config["seed_test_accuracy"],
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/plot_all_learning_curves.py"


# --- architectures ------------------------------------------------------------------------------


rule layer_table:
    input:
        model="results/variants/{variant}/model.keras",
        summary="results/variants/{variant}/training.json",
        code=script_code("layer_table"),
    output:
        table=report(
            f"{FIGURES}/architectures/{{variant}}.html",
            caption="../workflow/report/layer_table.rst",
            category=ARCHITECTURES,
            labels={"variant": "{variant}", "figure": "Layer table"},
        ),
    log:
        "logs/layer_table/{variant}.log",
    benchmark:
        "benchmarks/layer_table/{variant}.tsv"
    params:
        keras_backend=config["keras_backend"],
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/layer_table.py"


# --- selection ----------------------------------------------------------------------------------


rule plot_variant_comparison:
    input:
        table="results/selection/variants.csv",
        selection="results/selection/selection.json",
        code=script_code("plot_variant_comparison"),
    output:
        figure=report(
            f"{FIGURES}/selection/variants.png",
            caption="../workflow/report/variant_comparison.rst",
            category=SELECTION,
            labels={"figure": "Variant comparison"},
        ),
        table=report(
            f"{FIGURES}/selection/variants.html",
            caption="../workflow/report/variant_table.rst",
            category=SELECTION,
            labels={"figure": "Variant table"},
        ),
    log:
        "logs/plot_variant_comparison.log",
    params:
        reference=config["seed_test_accuracy"],
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/plot_variant_comparison.py"


rule plot_regularization_sweep:
    input:
        summaries=expand("results/variants/{variant}/training.json", variant=VARIANTS),
        histories=expand("results/variants/{variant}/history.csv", variant=VARIANTS),
        metrics=expand("results/variants/{variant}/validation.json", variant=VARIANTS),
        selection="results/selection/selection.json",
        code=script_code("plot_regularization_sweep"),
    output:
        figure=report(
            f"{FIGURES}/selection/regularization_sweep.png",
            caption="../workflow/report/regularization_sweep.rst",
            category=SELECTION,
            labels={"figure": "Regularization sweep"},
        ),
        table=f"{FIGURES}/selection/regularization_sweep.csv",
    log:
        "logs/plot_regularization_sweep.log",
    params:
        variants=list(VARIANTS),
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/plot_regularization_sweep.py"


# --- test ---------------------------------------------------------------------------------------


rule plot_confusion_matrix:
    input:
        confusion="results/test/confusion_matrix.csv",
        code=script_code("plot_confusion_matrix"),
    output:
        figure=report(
            f"{FIGURES}/test/confusion_matrix.png",
            caption="../workflow/report/confusion_matrix.rst",
            category=TEST,
            labels={"figure": "Confusion matrix"},
        ),
    log:
        "logs/plot_confusion_matrix.log",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/plot_confusion_matrix.py"


rule plot_class_metrics:
    input:
        report="results/test/classification_report.csv",
        code=script_code("plot_class_metrics"),
    output:
        figure=report(
            f"{FIGURES}/test/class_metrics.png",
            caption="../workflow/report/class_metrics.rst",
            category=TEST,
            labels={"figure": "Per-class precision, recall and F1"},
        ),
    log:
        "logs/plot_class_metrics.log",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/plot_class_metrics.py"


rule plot_test_samples:
    input:
        predictions="results/test/predictions.csv",
        test="results/data/test.npz",
        code=script_code("plot_test_samples"),
    output:
        figure=report(
            f"{FIGURES}/test/samples.png",
            caption="../workflow/report/test_samples.rst",
            category=TEST,
            labels={"figure": "Sample predictions"},
        ),
    log:
        "logs/plot_test_samples.log",
    params:
        per_kind=REPORT["test_samples"],
        seed=0,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/plot_test_samples.py"


rule plot_confused_pairs:
    input:
        confusion="results/test/confusion_matrix.csv",
        predictions="results/test/predictions.csv",
        test="results/data/test.npz",
        code=script_code("plot_confused_pairs"),
    output:
        figure=report(
            f"{FIGURES}/test/confused_pairs.png",
            caption="../workflow/report/confused_pairs.rst",
            category=TEST,
            labels={"figure": "Most-confused class pairs"},
        ),
        table=f"{FIGURES}/test/confused_pairs.csv",
    log:
        "logs/plot_confused_pairs.log",
    params:
        top=REPORT["confused_pairs"],
        examples=4,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/plot_confused_pairs.py"


# --- beyond accuracy: calibration and robustness ------------------------------------------------


rule plot_calibration:
    input:
        calibrations=expand("results/variants/{variant}/calibration.json", variant=VARIANTS),
        selection="results/selection/selection.json",
        code=script_code("plot_calibration"),
    output:
        figure=report(
            f"{FIGURES}/calibration/reliability.png",
            caption="../workflow/report/reliability.rst",
            category=BEYOND_ACCURACY,
            subcategory="Calibration",
            labels={"figure": "Reliability diagrams of all variants"},
        ),
        table=report(
            f"{FIGURES}/calibration/variants.html",
            caption="../workflow/report/calibration_table.rst",
            category=BEYOND_ACCURACY,
            subcategory="Calibration",
            labels={"figure": "Calibration table"},
        ),
        csv=f"{FIGURES}/calibration/variants.csv",
    log:
        "logs/plot_calibration.log",
    params:
        columns=4,  # reliability diagrams per row
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/plot_calibration.py"


rule plot_test_calibration:
    input:
        metrics="results/test/metrics.json",
        code=script_code("plot_test_calibration"),
    output:
        figure=report(
            f"{FIGURES}/calibration/test_reliability.png",
            caption="../workflow/report/test_reliability.rst",
            category=BEYOND_ACCURACY,
            subcategory="Calibration",
            labels={"figure": "Test reliability before and after temperature scaling"},
        ),
    log:
        "logs/plot_test_calibration.log",
    params:
        columns=2,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/plot_test_calibration.py"


rule plot_robustness:
    input:
        table="results/robustness/accuracy.csv",
        summary="results/robustness/summary.json",
        code=script_code("plot_robustness"),
    output:
        heatmap=report(
            f"{FIGURES}/robustness/heatmap.png",
            caption="../workflow/report/corruption_heatmap.rst",
            category=BEYOND_ACCURACY,
            subcategory="Robustness",
            labels={"figure": "Accuracy per corruption and severity"},
        ),
        curves=report(
            f"{FIGURES}/robustness/severity_curves.png",
            caption="../workflow/report/severity_curves.rst",
            category=BEYOND_ACCURACY,
            subcategory="Robustness",
            labels={"figure": "Accuracy and ECE against severity"},
        ),
    log:
        "logs/plot_robustness.log",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/plot_robustness.py"


# --- pipeline -----------------------------------------------------------------------------------


rule rule_graph:
    input:
        sources=WORKFLOW_SOURCES,
        code=script_code("rule_graph"),
    output:
        dot=f"{FIGURES}/pipeline/rulegraph.dot",
        figure=report(
            f"{FIGURES}/pipeline/rulegraph.png",
            caption="../workflow/report/rule_graph.rst",
            category=PIPELINE,
            labels={"figure": "Rule graph"},
        ),
    log:
        "logs/rule_graph.log",
    benchmark:
        "benchmarks/rule_graph.tsv"
    params:
        snakefile=lambda wildcards, input: input.sources[0],  # relative: a study moved elsewhere redraws nothing
        config=json.loads(json.dumps(config, sort_keys=True)),  # key order fixed: reordering a config file changes nothing
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/rule_graph.py"


# --- the analysis notebook ----------------------------------------------------------------------


rule analysis_notebook:
    input:
        notebook=os.path.relpath(os.path.join(workflow.basedir, "workflow", "notebooks", "analysis.ipynb")),
        variants_table="results/selection/variants.csv",
        selection="results/selection/selection.json",
        sweep_table=rules.plot_regularization_sweep.output.table,
        test_metrics="results/test/metrics.json",
        classification_report="results/test/classification_report.csv",
        confusion_matrix="results/test/confusion_matrix.csv",
        calibration_table=rules.plot_calibration.output.csv,
        robustness_table="results/robustness/accuracy.csv",
        robustness_summary="results/robustness/summary.json",
        code=script_code("run_notebook"),
    output:
        notebook="results/notebook/analysis.ipynb",
    log:
        "logs/analysis_notebook.log",
    benchmark:
        "benchmarks/analysis_notebook.tsv"
    params:
        kernel="python3",
        parameters={
            "dataset": config["dataset"],
            "seed_test_accuracy": config["seed_test_accuracy"],
        },
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/run_notebook.py"


rule notebook_html:
    input:
        notebook=rules.analysis_notebook.output.notebook,
        template=os.path.relpath(os.path.join(workflow.basedir, "workflow", "notebooks", "offline.html.j2")),
        code=script_code("notebook_html"),
    output:
        html=report(
            f"{FIGURES}/summary/analysis.html",
            caption="../workflow/report/analysis_notebook.rst",
            category=SUMMARY,
            labels={"figure": "Analysis notebook"},
        ),
    log:
        "logs/notebook_html.log",
    params:
        show_code=REPORT["notebook_code"],
        title="cifarflow: analysis of the study",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/notebook_html.py"


# --- pipeline costs (last: it reads the benchmark files of the rules above) ------------------------

# Benchmark files the figure reads: the study's costly jobs (per variant where the rule has a variant) and the
# report's own costly jobs.
BENCHMARKS = [
    str(rules.unpack.benchmark),
    str(rules.normalize.benchmark),
    *expand(str(rules.train.benchmark), variant=VARIANTS),
    *expand(str(rules.validate.benchmark), variant=VARIANTS),
    *expand(str(rules.calibrate.benchmark), variant=VARIANTS),
    str(rules.evaluate_test.benchmark),
    *expand(str(rules.corrupt_test.benchmark), corruption=config["corruptions"]),
    str(rules.evaluate_robustness.benchmark),
    *expand(str(rules.layer_table.benchmark), variant=VARIANTS),
    str(rules.rule_graph.benchmark),
    str(rules.analysis_notebook.benchmark),
]


rule plot_benchmarks:
    input:
        benchmarks=BENCHMARKS,
        code=script_code("plot_benchmarks"),
    output:
        figure=report(
            f"{FIGURES}/pipeline/benchmarks.png",
            caption="../workflow/report/benchmarks.rst",
            category=PIPELINE,
            labels={"figure": "Run time and memory per job"},
        ),
        table=f"{FIGURES}/pipeline/benchmarks.csv",
    log:
        "logs/plot_benchmarks.log",
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/plot_benchmarks.py"


# Every report output; `rule all` requests them.
REPORT_TARGETS = [
    rules.plot_class_counts.output.figure,
    rules.plot_sample_images.output.figure,
    expand(rules.plot_learning_curves.output.figure, variant=VARIANTS),
    rules.plot_all_learning_curves.output.figure,
    expand(rules.layer_table.output.table, variant=VARIANTS),
    rules.plot_variant_comparison.output,
    rules.plot_regularization_sweep.output,
    rules.plot_confusion_matrix.output.figure,
    rules.plot_class_metrics.output.figure,
    rules.plot_test_samples.output.figure,
    rules.plot_confused_pairs.output,
    rules.plot_calibration.output,
    rules.plot_test_calibration.output.figure,
    rules.plot_robustness.output,
    rules.rule_graph.output,
    rules.analysis_notebook.output.notebook,
    rules.notebook_html.output.html,
    rules.plot_benchmarks.output,
]
