from pathlib import Path

import stage  # noqa: F401
from cifarflow.data.archive import load_batches
from cifarflow.data.datasets import get_dataset
from cifarflow.runlog import logged
from cifarflow.fileio import save_json
from cifarflow.data.splits import save_batch

with logged(snakemake.log[0]):
    spec = get_dataset(snakemake.params.dataset, snakemake.config.get("datasets"))  # described in the config, or a known one
    batches, names = load_batches(Path(snakemake.input.archive), spec, snakemake.params.label_mode)
    for name, path in zip(spec.batches, snakemake.output.batches):
        save_batch(path, batches[name])
        print(f"{name}: {len(batches[name].labels)} images -> {path}")
    save_json(snakemake.output.classes, names)
    print(f"{len(names)} classes: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}")
