import shutil
from pathlib import Path

import stage  # noqa: F401
from cifarflow.runlog import logged
from cifarflow.fileio import load_json, load_npz, save_json

with logged(snakemake.log[0]):
    from cifarflow.select.selection import select

    params, out = snakemake.params, snakemake.output
    metrics = [load_json(path) for path in snakemake.input.metrics]
    predictions = [load_npz(path) for path in snakemake.input.predictions]  # labels and probabilities
    result = select(metrics, predictions, params.metric, params.level, params.resamples, params.bootstrap_seed,
                    params.tie_rule)
    selection = result["selection"]
    variant, exported = selection["variant"], selection["exported_seed"]
    selection["tta"] = params.tta[variant]
    # each seed's temperature, fitted on the validation split; 1.0 (no scaling) when temperature scaling is off
    fitted = {record["seed"]: record["temperature"] for record in map(load_json, snakemake.input.calibrations)
              if record["variant"] == variant}
    selection["temperatures"] = {str(seed): value if params.temperature_scaling else 1.0 for seed, value in fitted.items()}
    selection["temperature"] = selection["temperatures"][str(exported)]
    for key in ("variants", "trainings", "comparisons", "pairs"):
        result[key].to_csv(getattr(out, {"variants": "table"}.get(key, key)), index=False)
    models = {(record["variant"], record["seed"]): path for record, path in zip(metrics, snakemake.input.models)}
    Path(out.seed_models).mkdir(parents=True, exist_ok=True)
    for seed in selection["seeds"]:
        shutil.copyfile(models[variant, seed], Path(out.seed_models) / f"seed-{seed}.keras")
    shutil.copyfile(models[variant, exported], out.model)
    save_json(out.selection, selection)
    print(result["variants"].to_string(index=False))
    print(f"selected {variant}: {selection['rule']}; exported seed {exported} ({selection['export_rule']}); "
          f"temperature {selection['temperature']:.4f}"
          + ("" if params.temperature_scaling else f" (scaling off; fitted: {fitted[exported]:.4f})"))
