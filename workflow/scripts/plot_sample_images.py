import stage  # noqa: F401
from cifarflow.runlog import logged
from cifarflow.fileio import load_json
from cifarflow.splits import load_split

with logged(snakemake.log[0]):
    from cifarflow.figures import sample_images

    images, labels = load_split(snakemake.input.train)
    sample_images(images, labels, load_json(snakemake.input.classes), snakemake.params.per_class,
                  snakemake.output.figure, seed=snakemake.params.seed)
