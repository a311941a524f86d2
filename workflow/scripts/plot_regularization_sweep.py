import pandas as pd

import stage  # noqa: F401
from cifarflow.runlog import logged
from cifarflow.fileio import load_json

with logged(snakemake.log[0]):
    from cifarflow.report.figures.selection import regularization_sweep
    from cifarflow.report.tables import histories_by_variant, sweep_table, variant_of

    settings = {}
    for path in snakemake.input.summaries:  # the variant's recipe, whichever seed trained it
        values = load_json(path)["recipe"]
        values["train"].pop("seed", None)
        settings[variant_of(path)] = values
    histories = histories_by_variant(snakemake.input.histories)
    metrics = pd.read_csv(snakemake.input.variants).set_index("variant").to_dict("index")
    sweep = sweep_table(settings, histories, metrics)
    sweep.to_csv(snakemake.output.table, index=False, float_format="%.6g")
    regularization_sweep(sweep, histories, load_json(snakemake.input.selection)["variant"], snakemake.output.figure)
    print(sweep.to_string(index=False))
