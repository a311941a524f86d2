import pandas as pd

import stage  # noqa: F401
from cifarflow.runlog import logged
from cifarflow.splits import load_split

with logged(snakemake.log[0]):
    from cifarflow.figures import test_samples

    images, _ = load_split(snakemake.input.test)
    predictions = pd.read_csv(snakemake.input.predictions, usecols=["index", "true", "predicted", "correct", "confidence"])
    test_samples(images, predictions, snakemake.params.per_kind, snakemake.output.figure, seed=snakemake.params.seed)
