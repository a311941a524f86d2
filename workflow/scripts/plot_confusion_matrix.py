import pandas as pd

import stage  # noqa: F401
from cifarflow.runlog import logged

with logged(snakemake.log[0]):
    from cifarflow.figures import confusion_matrix

    confusion_matrix(pd.read_csv(snakemake.input.confusion, index_col=0), snakemake.output.figure)
