import numpy as np

import stage  # noqa: F401
from cifarflow.data.archive import Batch
from cifarflow.data.datasets import get_dataset
from cifarflow.runlog import logged
from cifarflow.fileio import load_split, save_json, save_npz
from cifarflow.data.splits import channel_stats, split_batches

with logged(snakemake.log[0]):
    p = snakemake.params
    spec = get_dataset(p.dataset, snakemake.config.get("datasets"))  # described in the config, or a known one
    batches = {name: Batch(*load_split(path)) for name, path in zip(spec.batches, snakemake.input.batches)}
    splits = split_batches(batches, spec, p.validation_batches, p.validation_size)
    for split, batch in splits.items():
        save_npz(snakemake.output[split], images=batch.images, labels=batch.labels)
        counts = np.bincount(batch.labels)
        print(f"{split}: {len(batch.labels)} images, {counts.min()}..{counts.max()} per class")
    stats = channel_stats(splits["train"].images)
    save_json(snakemake.output.stats, stats)
    print(f"training mean {np.round(stats['mean'], 2)} std {np.round(stats['std'], 2)}")
