import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import stage  # noqa: F401
from cifarflow.errors import StageError
from cifarflow.runlog import logged

with logged(snakemake.log[0]):
    from cifarflow.report.figures.pipeline import rule_graph

    # The rule graph comes from Snakemake itself, run on this workflow with this run's config; printing a graph
    # takes no lock, so it works while the run that asked for it is still going.
    if importlib.util.find_spec("snakemake"):
        command = [sys.executable, "-m", "snakemake"]
    elif shutil.which("snakemake"):
        command = [shutil.which("snakemake")]
    else:
        raise FileNotFoundError("snakemake is needed to draw the rule graph but is neither importable nor on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps(snakemake.params.config))
        command += ["--snakefile", snakemake.params.snakefile, "--directory", ".", "--configfile", str(config),
                    "--replace-workflow-config", "--rulegraph", "dot", "all"]
        print(" ".join(command), flush=True)
        done = subprocess.run(command, capture_output=True, text=True)
    print(done.stderr)
    if done.returncode != 0 or "digraph" not in done.stdout:
        raise StageError(f"snakemake --rulegraph failed ({done.returncode}): {done.stderr[-2000:]}")
    dot = done.stdout[done.stdout.index("digraph"):]
    Path(snakemake.output.dot).write_text(dot)
    rule_graph(dot, snakemake.output.figure)
