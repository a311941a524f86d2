import pandas as pd

import stage  # noqa: F401
from cifarflow.runlog import logged

with logged(snakemake.log[0]):
    from cifarflow.figures import learning_curves

    learning_curves(pd.read_csv(snakemake.input.history), snakemake.wildcards.variant, snakemake.output.figure,
                    reference=snakemake.params.reference)
