import stage  # noqa: F401
from cifarflow.runlog import logged

with logged(snakemake.log[0]):
    from cifarflow.report.figures.training import learning_curves
    from cifarflow.report.tables import histories_by_variant

    variant = snakemake.wildcards.variant
    learning_curves(histories_by_variant(snakemake.input.histories)[variant], variant, snakemake.output.figure,
                    reference=snakemake.params.reference)
