import stage  # noqa: F401
from cifarflow.runlog import logged
from cifarflow.fileio import load_json
from cifarflow.splits import load_split

with logged(snakemake.log[0]):
    from cifarflow.figures import class_counts

    labels = {split: load_split(snakemake.input[split])[1] for split in ("train", "val", "test")}
    counts = class_counts(labels, load_json(snakemake.input.classes), snakemake.output.figure)
    print(counts.to_string())
