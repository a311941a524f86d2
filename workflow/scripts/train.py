import pandas as pd

import stage  # noqa: F401
from cifarflow.backend import backend_record, configure_training, prepare_training
from cifarflow.runlog import logged
from cifarflow.fileio import load_json, load_split, save_json

with logged(snakemake.log[0]):
    # GPU placement comes from the config, not params: moving a training to another GPU does not retrain it.
    threads = prepare_training(snakemake.params.keras_backend, snakemake.threads, snakemake.config["gpu"])
    from cifarflow.train.live import LiveView
    from cifarflow.train.recipe import recipe_of, recipe_record
    from cifarflow.train.training import train_variant

    out = snakemake.output
    recipe = recipe_of(snakemake.params.settings)
    device = configure_training(recipe, threads)
    model, history, summary, checkpoint = train_variant(
        recipe,
        load_split(snakemake.input.train),
        load_split(snakemake.input.val),
        num_classes=len(load_json(snakemake.input.classes)),
        stats=load_json(snakemake.input.stats),
        checkpoint_dir=snakemake.params.checkpoint_dir,
        threads=threads,
        live=LiveView(snakemake.params.events_dir, snakemake.params.live_figure, recipe_record(recipe)),
        device=device,
    )
    model.save(out.model)
    pd.DataFrame(history).to_csv(out.history, index=False)
    save_json(out.summary, summary | {"backend": backend_record(), "settings": snakemake.params.settings})
    checkpoint.clear()
    print(f"trained in {summary['training_seconds']:.0f} s ({summary['images_per_second']:.0f} images/s)")
