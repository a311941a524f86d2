import pandas as pd

import stage  # noqa: F401
from cifarflow.runlog import logged
from cifarflow.fileio import load_json

with logged(snakemake.log[0]):
    from cifarflow.figures import verdict_matrix

    selection = load_json(snakemake.input.selection)
    order = list(pd.read_csv(snakemake.input.table).sort_values("rank")["variant"])
    verdict_matrix(pd.read_csv(snakemake.input.pairs), order, selection["variant"], selection["level"],
                   snakemake.output.figure)
