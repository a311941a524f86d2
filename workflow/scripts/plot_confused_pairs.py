import pandas as pd

import stage  # noqa: F401
from cifarflow.runlog import logged
from cifarflow.splits import load_split

with logged(snakemake.log[0]):
    from cifarflow.evaluation import most_confused_pairs
    from cifarflow.figures import confused_pairs

    matrix = pd.read_csv(snakemake.input.confusion, index_col=0)
    pairs = most_confused_pairs(matrix, snakemake.params.top)
    pairs = pairs[pairs["count"] > 0]
    images, _ = load_split(snakemake.input.test)
    predictions = pd.read_csv(snakemake.input.predictions, usecols=["index", "true", "predicted", "confidence"])
    mistakes = predictions.sort_values("confidence", ascending=False).groupby(["true", "predicted"])["index"]
    examples = {pair: [images[i] for i in indices] for pair, indices in mistakes}
    confused_pairs(pairs, matrix, examples, snakemake.output.figure, per_pair=snakemake.params.examples)
    pairs.to_csv(snakemake.output.table, index=False)
    print(pairs.to_string(index=False))
