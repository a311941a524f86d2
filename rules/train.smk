rule train:
    input:
        train="results/data/train.npz",
        val="results/data/val.npz",
        stats="results/data/normalization.json",
        classes="results/data/classes.json",
        code=script_code("train"),
    output:
        model="results/variants/{variant}/model.keras",
        history="results/variants/{variant}/history.csv",
        summary="results/variants/{variant}/training.json",
    log:
        "logs/train/{variant}.log",
    benchmark:
        "benchmarks/train/{variant}.tsv"
    params:
        settings=lambda wildcards: VARIANTS[wildcards.variant],
        checkpoint_dir=lambda wildcards: f"checkpoints/{wildcards.variant}",
        keras_backend=config["keras_backend"],
        # watched while it trains, not outputs: TensorBoard events and the learning curves, after every epoch
        events_dir=lambda wildcards: f"logs/tensorboard/{wildcards.variant}",
        live_figure=lambda wildcards: f"logs/train/{wildcards.variant}.png",
    threads: config["train_threads"]
    resources:
        mem_mb=config["train_mem_mb"],
        runtime=config["train_runtime_min"],
        gpu=config["train_gpus"],
    conda:
        TRAIN_ENV
    script:
        "../workflow/scripts/train.py"


rule validate:
    input:
        model=rules.train.output.model,
        history=rules.train.output.history,
        summary=rules.train.output.summary,
        val="results/data/val.npz",
        code=script_code("validate"),
    output:
        metrics="results/variants/{variant}/validation.json",
        predictions="results/variants/{variant}/val_predictions.npz",  # labels + probabilities, read by calibrate
    log:
        "logs/validate/{variant}.log",
    benchmark:
        "benchmarks/validate/{variant}.tsv"
    params:
        tta=lambda wildcards: tta(wildcards.variant),
        keras_backend=config["keras_backend"],
    threads: 2
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/validate.py"
