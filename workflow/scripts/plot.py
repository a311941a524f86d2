# The script of every figure rule (plot_<function>, made from the figure catalog in rules/report.smk): the
# function's inputs read by file type, its returned figures and tables written to the outputs (cifarflow.report.figureio).
import stage  # noqa: F401
from cifarflow.runlog import logged

with logged(snakemake.log[0]):
    from cifarflow.report.figureio import draw

    params = dict(snakemake.params.items())
    plot, read = params.pop("plot"), params.pop("read")
    inputs = {name: value for name, value in snakemake.input.items() if name != "code"}
    draw(plot, inputs, dict(snakemake.output.items()), params, read)
