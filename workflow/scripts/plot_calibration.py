from pathlib import Path

import stage  # noqa: F401
from cifarflow.runlog import logged
from cifarflow.fileio import load_json

with logged(snakemake.log[0]):
    from cifarflow.figures import reliability_diagrams
    from cifarflow.tables import calibration_html, calibration_table

    calibrations = [load_json(path) for path in snakemake.input.calibrations]
    # a diagram per variant: its first seed (every seed is in the table)
    first_seeds = {}
    for c in calibrations:
        first_seeds.setdefault(c["variant"], c)
    selected = load_json(snakemake.input.selection)["variant"]
    panels = [{"title": f"{c['variant']} seed {c['seed']}: ECE {c['uncalibrated']['ece']:.3f} -> {c['calibrated']['ece']:.3f} "
                        f"(T {c['temperature']:.2f})",
               "record": c["reliability"]["uncalibrated"], "scaled": c["reliability"]["calibrated"],
               "chosen": c["variant"] == selected} for c in first_seeds.values()]
    bins = calibrations[0]["bins"]
    reliability_diagrams(panels, snakemake.output.figure,
                         f"Reliability of every variant on the validation split ({bins} equal-width confidence bins)",
                         columns=snakemake.params.columns)
    table = calibration_table(calibrations)
    table.to_csv(snakemake.output.csv, index=False)
    Path(snakemake.output.table).write_text(calibration_html(table, selected))
