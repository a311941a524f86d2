import pandas as pd

import stage  # noqa: F401
from cifarflow.runlog import logged
from cifarflow.fileio import load_json

with logged(snakemake.log[0]):
    from cifarflow.figures import regularization_sweep
    from cifarflow.tables import sweep_table

    names = snakemake.params.variants
    settings = {name: load_json(path)["settings"] for name, path in zip(names, snakemake.input.summaries)}
    histories = {name: pd.read_csv(path) for name, path in zip(names, snakemake.input.histories)}
    metrics = {name: load_json(path) for name, path in zip(names, snakemake.input.metrics)}
    sweep = sweep_table(settings, histories, metrics)
    sweep.to_csv(snakemake.output.table, index=False, float_format="%.6g")
    regularization_sweep(sweep, histories, load_json(snakemake.input.selection)["variant"], snakemake.output.figure)
    print(sweep.to_string(index=False))
