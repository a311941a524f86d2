from pathlib import Path

import pandas as pd

import stage  # noqa: F401
from cifarflow.runlog import logged

with logged(snakemake.log[0]):
    from cifarflow.track.tracking import (artifact_location, client_for, experiment_id, log_training, one_writer, store_uri,
                                          study_tags, training_run)

    inp, p = snakemake.input, snakemake.params
    uri = store_uri(p.tracking_uri, Path.cwd())
    with one_writer(uri):  # one job at a time on a SQLite store
        client = client_for(uri)  # an unreachable server fails here, in one line, before anything is read or logged
        tags = study_tags(p.dataset, p.experiment, snakemake.config, p.train_code, Path(inp.train), Path(inp.val))
        experiment = experiment_id(client, p.experiment, artifact_location(uri, Path.cwd()))
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
