import shutil

import stage  # noqa: F401
from cifarflow.evaluation import select_best
from cifarflow.runlog import logged
from cifarflow.fileio import load_json, save_json

with logged(snakemake.log[0]):
    metrics = [load_json(path) for path in snakemake.input.metrics]
    table, selection = select_best(metrics, snakemake.params.metric)
    selection["tta"] = snakemake.params.tta[selection["variant"]]
    calibrations = {result["variant"]: result for result in map(load_json, snakemake.input.calibrations)}
    # the temperature fitted on the validation split; 1.0 (no scaling) when temperature scaling is off
    fitted = calibrations[selection["variant"]]["temperature"]
    selection["temperature"] = fitted if snakemake.params.temperature_scaling else 1.0
    table.to_csv(snakemake.output.table, index=False)
    models = dict(zip([m["variant"] for m in metrics], snakemake.input.models))
    shutil.copyfile(models[selection["variant"]], snakemake.output.model)
    save_json(snakemake.output.selection, selection)
    print(table.to_string(index=False))
    print(f"selected {selection['variant']} by {selection['metric']}; temperature {selection['temperature']:.4f}"
          + ("" if snakemake.params.temperature_scaling else f" (scaling off; fitted: {fitted:.4f})"))
