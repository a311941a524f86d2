import stage  # noqa: F401
from cifarflow.runlog import logged

with logged(snakemake.log[0]):
    from cifarflow.figures import benchmarks
    from cifarflow.tables import read_benchmarks

    table = read_benchmarks(snakemake.input.benchmarks)
    table.to_csv(snakemake.output.table, index=False, float_format="%.6g")
    benchmarks(table, snakemake.output.figure)
    print(table.to_string(index=False))
