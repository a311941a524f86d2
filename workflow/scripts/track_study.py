from pathlib import Path

import pandas as pd

import stage  # noqa: F401
from cifarflow.runlog import logged
from cifarflow.fileio import save_json

with logged(snakemake.log[0]):
    from cifarflow.fileio import image_digest, load_split
    from cifarflow.track.tracking import TAG, log_study, open_store, registered_model_name, study_run, study_tags

    inp, p = snakemake.input, snakemake.params
    with open_store(p.tracking_uri, p.experiment, Path.cwd()) as (uri, client, experiment):
        tags = study_tags(p.dataset, p.experiment, snakemake.config, p.train_code, Path(inp.train), Path(inp.val))
        test_images = load_split(inp.test)[0]
        tags[TAG + "test_images_sha256"] = image_digest(test_images)
        trainings = pd.read_csv(inp.runs)
        training_ids = [(row.variant, int(row.seed), row.run_id) for row in trainings.itertuples()]
        files = {key: Path(inp[key]) for key in ("selection", "variants", "trainings", "pairs", "test_metrics",
                                                 "test_predictions", "confusion", "class_report", "robustness",
                                                 "robustness_table", "report", "model_card", "model_card_html")}
        run = study_run(files, snakemake.config, tags, training_ids, Path(inp.model))
        run_id, new, version = log_study(client, experiment, run, p.dataset, test_images[:2])
        record = {"tracking_uri": uri, "experiment": p.experiment, "experiment_id": experiment, "study_run": run_id,
                  "logged": "new" if new else "already tracked", "trainings": len(training_ids),
                  "registered_model": registered_model_name(p.dataset), "model_version": version,
                  "fingerprint": run.fingerprint}
        save_json(snakemake.output.study, record)
        print(f"study run {run_id} ({record['logged']}); model {record['registered_model']} version {version}; "
              f"experiment {p.experiment!r} of {uri}")
