import shutil

import stage  # noqa: F401
from cifarflow.evaluation import select_best
from cifarflow.runlog import logged
from cifarflow.splits import load_json, save_json

with logged(snakemake.log[0]):
    metrics = [load_json(path) for path in snakemake.input.metrics]
    table, selection = select_best(metrics, snakemake.params.metric)
    selection["tta"] = snakemake.params.tta[selection["variant"]]
    table.to_csv(snakemake.output.table, index=False)
    models = dict(zip([m["variant"] for m in metrics], snakemake.input.models))
    shutil.copyfile(models[selection["variant"]], snakemake.output.model)
    save_json(snakemake.output.selection, selection)
    print(table.to_string(index=False))
    print(f"selected {selection['variant']} by {selection['metric']}")
