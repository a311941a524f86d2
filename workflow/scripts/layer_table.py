from pathlib import Path

import stage  # noqa: F401
from cifarflow.backend import use_backend
from cifarflow.runlog import logged
from cifarflow.fileio import load_json

with logged(snakemake.log[0]):
    use_backend(snakemake.params.keras_backend)
    import keras

    from cifarflow.report.tables import layer_table, layer_table_html, parameter_counts

    model = keras.models.load_model(snakemake.input.model, compile=False)
    table = layer_table(model)
    counts = parameter_counts(model)
    recipe = load_json(snakemake.input.summary)["recipe"]
    Path(snakemake.output.table).write_text(layer_table_html(snakemake.wildcards.variant, table, counts, recipe))
    print(table.to_string(index=False))
    print(f"{counts['total']:,} parameters")
