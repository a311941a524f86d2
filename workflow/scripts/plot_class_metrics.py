import pandas as pd

import stage  # noqa: F401
from cifarflow.runlog import logged

with logged(snakemake.log[0]):
    from cifarflow.figures import class_metrics

    class_metrics(pd.read_csv(snakemake.input.report, index_col=0), snakemake.output.figure)
