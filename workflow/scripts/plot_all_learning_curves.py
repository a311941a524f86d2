import pandas as pd

import stage  # noqa: F401
from cifarflow.runlog import logged
from cifarflow.fileio import load_json

with logged(snakemake.log[0]):
    from cifarflow.figures import all_learning_curves

    histories = {name: pd.read_csv(path) for name, path in zip(snakemake.params.variants, snakemake.input.histories)}
    all_learning_curves(histories, load_json(snakemake.input.selection)["variant"], snakemake.output.figure,
                        reference=snakemake.params.reference)
