rule train:
    input:
        train="results/data/train.npz",
        val="results/data/val.npz",
        stats="results/data/normalization.json",
        classes="results/data/classes.json",
        code=script_code("train"),
    output:
        model=f"{TRAINING_RESULTS}/model.keras",
        history=f"{TRAINING_RESULTS}/history.csv",
        summary=f"{TRAINING_RESULTS}/training.json",
    log:
        "logs/train/{variant}/seed-{seed}.log",
    benchmark:
        "benchmarks/train/{variant}/seed-{seed}.tsv"
    params:
        settings=settings_of_training,
        checkpoint_dir="checkpoints/{variant}/seed-{seed}",
        keras_backend=config["keras_backend"],
        # watched while it trains, not outputs: TensorBoard events and the learning curves, after every epoch
        events_dir="logs/tensorboard/{variant}/seed-{seed}",
        live_figure="logs/train/{variant}/seed-{seed}.png",
    threads: config["train_threads"]
    resources:
        mem_mb=config["train_mem_mb"],
        runtime=config["train_runtime_min"],
        gpu=config["train_gpus"],
    conda:
        TRAIN_ENV
    script:
        "../workflow/scripts/train.py"
