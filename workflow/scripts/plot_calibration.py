from pathlib import Path

import stage  # noqa: F401
from cifarflow.runlog import logged
from cifarflow.fileio import load_json

with logged(snakemake.log[0]):
    from cifarflow.report.figures.beyond_accuracy import reliability_diagrams, reliability_panel
    from cifarflow.report.tables import calibration_html, calibration_table

    calibrations = [load_json(path) for path in snakemake.input.calibrations]
    # a diagram per variant, its seeds' images pooled; each seed is a row of the table
    by_variant = {}
    for c in calibrations:
        by_variant.setdefault(c["variant"], []).append(c)
    selected = load_json(snakemake.input.selection)["variant"]
    panels = [reliability_panel(variant, seeds, variant == selected) for variant, seeds in by_variant.items()]
    bins = calibrations[0]["bins"]
    reliability_diagrams(panels, snakemake.output.figure,
                         f"Reliability of every variant on the validation split ({bins} equal-width confidence bins)",
                         columns=snakemake.params.columns)
    table = calibration_table(calibrations)
    table.to_csv(snakemake.output.csv, index=False)
    Path(snakemake.output.table).write_text(calibration_html(table, selected))
