rule export_model:
    input:
        model=rules.select_best.output.model,
        selection=rules.select_best.output.selection,
        classes="results/data/classes.json",
        stats="results/data/normalization.json",
        test="results/data/test.npz",
        code=script_code("export_model"),
    output:
        keras="results/export/model.keras",
        saved_model=directory("results/export/saved_model"),
        litert="results/export/model.tflite",
        classes="results/export/classes.json",
        metadata="results/export/metadata.json",
        readme="results/export/README.md",
    log:
        "logs/export_model.log",
    benchmark:
        "benchmarks/export_model.tsv"
    threads: 2
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/export_model.py"


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
        dataset=DATASET.name,
        label_mode=config["cifar100_labels"],
        validation_batches=config["validation_batches"],
        validation_size=config["validation_size"],
        source={
            "archive": archive_source(),
            "official": not config.get("archive"),
            "md5": archive_checksum()[0],
            "sha256": archive_checksum()[1],
        },
        confused_pairs=config["report"]["confused_pairs"],
        weakest_corruptions=3,
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/model_card.py"
