from pathlib import Path

import pandas as pd

import stage  # noqa: F401
from cifarflow.runlog import logged

with logged(snakemake.log[0]):
    from cifarflow.track.tracking import log_training, open_store, study_tags, training_run

    inp, p = snakemake.input, snakemake.params
    with open_store(p.tracking_uri, p.experiment, Path.cwd()) as (uri, client, experiment):
        tags = study_tags(p.dataset, p.experiment, snakemake.config, p.train_code, Path(inp.train), Path(inp.val))
        rows = []
        for summary in inp.summaries:
            run = training_run(Path(summary).parent, tags)
            run_id, new = log_training(client, experiment, run)
            rows.append({"variant": run.variant, "seed": run.seed, "run_id": run_id, "fingerprint": run.fingerprint,
                         "logged": "new" if new else "already tracked"})
            print(f"{run.name}: run {run_id} ({'logged' if new else 'already tracked, nothing logged'})")
        table = pd.DataFrame(rows)
        table.to_csv(snakemake.output.runs, index=False)
        print(f"{(table['logged'] == 'new').sum()} new run(s), {(table['logged'] != 'new').sum()} already tracked, in "
              f"experiment {p.experiment!r} of {uri}")
