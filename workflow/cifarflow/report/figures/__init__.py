"""The report's figures, one module per report category; ``style`` holds their look and the registry ``FIGURES`` of
the figure functions, each registered by one ``@registered("Title", ...)`` line that Snakemake reads (``catalog``)."""

from . import style  # noqa: F401  (first: it sets matplotlib's backend before any figure module imports pyplot)
from . import beyond_accuracy, data, pipeline, selection, test, training  # noqa: F401  (each registers its figures)
