import tempfile
from pathlib import Path

import stage  # noqa: F401
from cifarflow.runlog import logged

with logged(snakemake.log[0]):
    from cifarflow.track.compare import compare_studies, format_table, load_folder, load_study

    p, out = snakemake.params, snakemake.output
    with tempfile.TemporaryDirectory() as scratch:
        earlier = load_study(p.other, p.tracking_uri, Path(scratch))
        this = load_folder(Path.cwd(), "this study")
        table = compare_studies(earlier, this, level=p.level, resamples=p.resamples, seed=p.bootstrap_seed,
                                metric=p.metric)
    table.to_csv(out.table, index=False)
    print(format_table(table, earlier.label, this.label))
