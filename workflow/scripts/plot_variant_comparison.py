from pathlib import Path

import pandas as pd

import stage  # noqa: F401
from cifarflow.runlog import logged
from cifarflow.fileio import load_json

with logged(snakemake.log[0]):
    from cifarflow.report.figures.selection import variant_comparison
    from cifarflow.report.tables import variants_html

    table = pd.read_csv(snakemake.input.table)
    selected = load_json(snakemake.input.selection)["variant"]
    variant_comparison(table, selected, snakemake.output.figure, reference=snakemake.params.reference)
    Path(snakemake.output.table).write_text(variants_html(table, selected))
