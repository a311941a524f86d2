from pathlib import Path

import stage  # noqa: F401
from cifarflow.data.download import fetch_archive
from cifarflow.runlog import logged

with logged(snakemake.log[0]):
    p = snakemake.params
    fetch_archive(p.source, Path(snakemake.output.archive), md5=p.md5, sha256=p.sha256,
                  retries=p.retries, timeout=p.timeout)
