import pandas as pd

import stage  # noqa: F401
from cifarflow.runlog import logged
from cifarflow.fileio import load_json

with logged(snakemake.log[0]):
    from cifarflow.figures import corruption_heatmap, severity_curves

    table = pd.read_csv(snakemake.input.table)
    summary = load_json(snakemake.input.summary)
    corruption_heatmap(table, summary["clean_accuracy"], snakemake.output.heatmap)
    severity_curves(table, {"accuracy": summary["clean_accuracy"], "ece": summary["clean_ece"]}, snakemake.output.curves)
