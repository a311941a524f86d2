import stage  # noqa: F401
from cifarflow.runlog import logged
from cifarflow.fileio import load_json

with logged(snakemake.log[0]):
    from cifarflow.report.figures.training import all_learning_curves
    from cifarflow.report.tables import histories_by_variant

    all_learning_curves(histories_by_variant(snakemake.input.histories), load_json(snakemake.input.selection)["variant"],
                        snakemake.output.figure, reference=snakemake.params.reference)
