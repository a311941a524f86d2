import time

import numpy as np

import stage  # noqa: F401
from cifarflow.runlog import logged
from cifarflow.fileio import load_split, save_npz

with logged(snakemake.log[0]):
    from cifarflow.evaluate.corruptions import SEVERITIES, corrupt_all_severities

    name, count = snakemake.wildcards.corruption, snakemake.params.images
    images, labels = load_split(snakemake.input.test)
    indices = np.arange(len(images) if count is None else min(count, len(images)))  # the first N test images
    started = time.perf_counter()
    corrupted = corrupt_all_severities(images[indices], name, snakemake.params.seed)
    seconds = time.perf_counter() - started
    save_npz(snakemake.output.images, images=corrupted, labels=labels[indices], indices=indices,
             severities=np.array(SEVERITIES))
    print(f"{name}: {len(indices):,} test images x {len(SEVERITIES)} severities in {seconds:.1f} s "
          f"({seconds / len(indices) / len(SEVERITIES) * 1e4:.1f} s per 10,000 corrupted images)")
