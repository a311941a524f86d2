"""Mutation testing of the pure modules with mutmut, on their fast unit tests (docs/mutation-testing.md).

mutmut names a mutant after its file's path (``src/`` stripped) and matches it to the module the tests import, so
the package is copied into a scratch folder as ``src/cifarflow`` beside copies of ``tests/`` and of what the
tests read; mutmut runs there.
Prints each module's killed/total (a timeout counts as killed) and every mutant that was not killed.

    nice -n 19 python tools/mutation_test.py [--max-children N] [--scratch DIR] [mutant name patterns...]
"""

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODULES = ["select.statistics", "evaluate.calibration", "data.splits", "data.archive", "evaluate.corruptions", "select.selection",
           "costs", "select.questions", "report.catalog"]
MUTATED_FILES = [f"src/cifarflow/{module.replace('.', '/')}.py" for module in MODULES]
# Their unit tests: no Snakemake run, no tiny study, nothing in a subprocess (a subprocess imports the package
# unmutated, and the scratch folder has no workflow/ to run in).
TESTS = [f"tests/test_{module.rsplit('.', 1)[-1]}.py" for module in MODULES] + ["tests/test_properties.py"]
NOT_UNIT_TESTS = [
    "tests/test_statistics.py::test_the_statistics_import_no_deep_learning_framework",  # a subprocess
    "tests/test_archive.py::test_a_decompression_bomb_is_refused_at_its_header_in_bounded_memory",  # a subprocess
    "tests/test_selection.py::test_no_job_that_selection_depends_on_reads_the_test_split",  # a Snakemake dry run
    "tests/test_selection.py::test_the_finished_study_scored_the_test_split_after_selecting",  # the tiny study
    "tests/test_costs.py::test_a_run_says_the_cost_of_the_trainings_its_targets_need",  # Snakemake runs
]
# read by the tests: the configs (test_costs.py), the rule scripts (test_properties.py runs unpack and normalize)
ALSO_COPIED = ["config.yaml", "configs", "workflow/scripts"]
KILLED = {"killed", "timeout", "caught by type check"}


def setup_cfg() -> str:
    def listed(values):
        return "".join(f"\n    {value}" for value in values)

    selection = TESTS + [f"--deselect={test}" for test in NOT_UNIT_TESTS]
    return (
        "[mutmut]\n"
        "source_paths = src/cifarflow\n"
        f"also_copy ={listed(ALSO_COPIED)}\n"
        f"only_mutate ={listed(MUTATED_FILES)}\n"
        f"pytest_add_cli_args_test_selection ={listed(selection)}\n"
        # one process per mutant is mutmut's own parallelism
        "pytest_add_cli_args =\n    -p no:xdist\n    -p no:cacheprovider\n"
        "\n[tool:pytest]\n"  # pytest's settings for the copy (the repository's pyproject.toml is not copied)
        "markers =\n    slow: end-to-end workflow runs\n    slurm: needs a SLURM cluster\n"
    )


def prepare(scratch: Path) -> None:
    """A fresh scratch folder: src/cifarflow, tests/, ``ALSO_COPIED`` and setup.cfg (mutmut's results: scratch/mutants)."""
    shutil.rmtree(scratch, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis")
    shutil.copytree(REPO / "workflow" / "cifarflow", scratch / "src" / "cifarflow", ignore=ignore)
    shutil.copytree(REPO / "tests", scratch / "tests", ignore=ignore)
    for name in ALSO_COPIED:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, scratch / name, ignore=ignore)
        else:
            shutil.copy2(REPO / name, scratch / name)
    (scratch / "setup.cfg").write_text(setup_cfg())


def mutmut(scratch: Path, *args: str, **options) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("mutmut")), *args]
    return subprocess.run(command, cwd=scratch, text=True, env=dict(os.environ, PYTHONHASHSEED="0"), **options)


def kill_rates(results: str) -> tuple[dict[str, collections.Counter], list[str]]:
    """Per module: a count of its mutants by status, and the names of those not killed."""
    counts, alive = collections.defaultdict(collections.Counter), []
    for line in results.splitlines():
        found = re.match(rf"\s*(cifarflow\.({'|'.join(map(re.escape, MODULES))})\.\S+): (.+)$", line)
        if found:
            name, module, status = found.groups()
            counts[module][status] += 1
            if status not in KILLED:
                alive.append(f"{name}: {status}")
    return counts, alive


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", type=Path, default=REPO / ".mutation", help="work folder (made anew)")
    parser.add_argument("--max-children", type=int, default=2, help="mutants tested at once")
    parser.add_argument("mutants", nargs="*", help="only these mutants (mutmut's names, * allowed)")
    args = parser.parse_args()
    prepare(args.scratch)
    run = mutmut(args.scratch, "run", "--max-children", str(args.max_children), *args.mutants)
    if run.returncode != 0:
        print(f"mutmut run failed with exit code {run.returncode}", file=sys.stderr)
        return run.returncode
    results = mutmut(args.scratch, "results", "--all", "true", capture_output=True, check=True).stdout
    counts, alive = kill_rates(results)
    print("\nmodule               killed/total")
    for module in MODULES:
        total = sum(counts[module].values())
        killed = sum(counts[module][status] for status in KILLED)
        print(f"{module:<20} {killed:>4}/{total:<4} {100 * killed / max(total, 1):5.1f} %")
    print("\nnot killed:" if alive else "\nevery mutant killed", *alive, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
