"""Shared fixtures: tiny official-format archives and runs of the workflow on them."""

import fcntl
import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

from archives import cifar10_members, cifar100_members, sha256, write_tar  # noqa: E402
from skips import pytest_configure, pytest_make_collect_report, pytest_runtest_makereport  # noqa: E402,F401

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TINY_CONFIG = REPO / "configs" / "tiny.yaml"


def built_once(tmp_path_factory, name: str, build) -> Path:
    """``build(folder)`` run once for the whole test session, even when pytest-xdist runs it in several worker
    processes: the first worker builds in a folder all of them share while the others wait on a lock, then every
    worker gets that folder (so the files, and the paths recorded in them, are the same for all)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, above each worker's own
    folder, done = root / f"shared-{name}", root / f"shared-{name}.done"
    with open(root / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


# The test files that take longest (minutes: a study run through SLURM, a whole study of their own, trainings killed
# and resumed; then tens of seconds), longest first as measured, so that pytest-xdist's workers finish together
# (pyproject.toml: --no-loadscope-reorder); test_study_workflow.py early also makes the shared tiny study early.
LONGEST_FIRST = [
    "test_slurm.py", "test_study_workflow.py", "test_custom_dataset.py", "test_cpu_study.py", "test_tracking.py",
    "test_backend.py", "test_options.py", "test_data_workflow.py", "test_learning.py", "test_bench.py", "test_costs.py",
    "test_training.py",
]

# Every test has a time limit (pytest-timeout; pyproject.toml: `timeout`, fixtures included). A test that needs one of
# these fixtures may wait for a whole study to be run (or for another worker running it): it gets STUDY_TIMEOUT_S.
STUDY_FIXTURES = {"tiny_study", "jax_study", "slurm_study", "shapes_study", "tie_rule_study", "cifar100_study", "cpu_study"}
STUDY_TIMEOUT_S = 1800


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the tests of a file keep their order
    for item in items:
        if STUDY_FIXTURES & set(getattr(item, "fixturenames", ())) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(STUDY_TIMEOUT_S))


def shared_archive(tmp_path_factory, name: str, members) -> Path:
    """The tiny archive ``name`` of ``members()``, written once for every worker."""
    return built_once(tmp_path_factory, name, lambda folder: write_tar(folder / name, members())) / name


@pytest.fixture(scope="session")
def cifar10_archive(tmp_path_factory) -> Path:
    return shared_archive(tmp_path_factory, "cifar-10-python.tar.gz", cifar10_members)


@pytest.fixture(scope="session")
def cifar100_archive(tmp_path_factory) -> Path:
    return shared_archive(tmp_path_factory, "cifar-100-python.tar.gz", cifar100_members)


PROJECT_FILES = ["Snakefile", "config.yaml", "rules", "workflow", "envs", "configs", "profiles"]


def copy_project(dest: Path) -> Path:
    """A copy of the workflow's files, so a test can run (and edit) it like a user's checkout."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, dest / name)
    return dest


def snakemake(workdir: Path, *args: str, config: Path | None = TINY_CONFIG, check: bool = True,
              timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the workflow in ``workdir`` (its own copy of the workflow when it has one, else the repo's), with the
    tiny config unless told otherwise; returns the finished process."""
    snakefile = workdir / "Snakefile" if (workdir / "Snakefile").exists() else REPO / "Snakefile"
    command = [SNAKEMAKE, "-s", str(snakefile), "-d", str(workdir)]
    if config is not None:
        command += ["--configfile", str(config), "--replace-workflow-config"]
    command += list(args)
    env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake failed ({result.returncode}):\n{result.stdout[-5000:]}\n{result.stderr[-8000:]}")
    return result


def archive_config(archive: Path) -> list[str]:
    return ["--config", f"archive={archive}", f"archive_sha256={sha256(archive)}"]


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory, cifar10_archive) -> Path:
    """One complete run of the tiny study (every target of `rule all`) in a copy of the project, shared by every test
    (and test worker) that only reads it; returns its folder."""
    def build(workdir: Path) -> None:
        copy_project(workdir)
        snakemake(workdir, "--cores", "2", *archive_config(cifar10_archive))

    return built_once(tmp_path_factory, "tiny_study", build)


@pytest.fixture
def own_tiny_study(tiny_study, tmp_path) -> Path:
    """A copy of the finished tiny study, time stamps kept (so nothing is left to do in it), for a test that edits or
    writes there; the shared one stays as the workflow left it, whatever order the tests run in."""
    return copy_of_study(tiny_study, tmp_path / "tiny_study")


def copy_of_study(study: Path, dest: Path) -> Path:
    """A copy of a finished study, time stamps kept, without the lock files of a dry run that another test (worker)
    may be making in it at that moment."""
    def locks(folder: str, names: list[str]) -> list[str]:
        return names if Path(folder).parts[-2:] == (".snakemake", "locks") else []

    return Path(shutil.copytree(study, dest, symlinks=True, ignore=locks))


def dry_run_of_repo(workdir: Path, *args: str, configs: tuple[Path, ...] = (REPO / "config.yaml",), **options):
    """A dry run of the repository's workflow in ``workdir`` (never in the checkout: Snakemake writes .snakemake/
    where it runs) with the given config files, later ones overriding earlier ones."""
    return snakemake(workdir, "-n", "--configfile", *map(str, configs), *args, config=None, **options)


@functools.cache
def workflow_rules() -> dict[str, dict]:
    """Every rule of the repository's workflow with the tiny config, as Snakemake loads it: rule -> {"script": its
    script's file name or None, "output": its output patterns}."""
    import tempfile

    with tempfile.TemporaryDirectory() as workdir:
        result = subprocess.run([sys.executable, str(Path(__file__).with_name("workflow_rules.py")), workdir,
                                 str(REPO / "config.yaml"), str(TINY_CONFIG)], capture_output=True, text=True, check=True,
                                timeout=120)
    return json.loads(result.stdout)


def dag_jobs(result: subprocess.CompletedProcess) -> list[dict]:
    """The jobs a dry run lists, each as {"rule", "input": [...], "output": [...]}, paths as printed."""
    jobs = []
    for line in (result.stdout + result.stderr).splitlines():
        stripped = line.strip()
        if stripped.startswith(("rule ", "localrule ")) and stripped.endswith(":"):
            jobs.append({"rule": stripped.split()[1].rstrip(":"), "input": [], "output": []})
        elif jobs and stripped.startswith(("input:", "output:")):
            key, files = stripped.split(":", 1)
            jobs[-1][key] = [name.strip() for name in files.split(",") if name.strip()]
    return jobs


@pytest.fixture
def http_server():
    from http_server import ArchiveServer

    with ArchiveServer() as server:
        yield server


def edited_config(folder: Path, change) -> Path:
    """The tiny config, changed by ``change(config)``, written to folder/edited.yaml."""
    import yaml

    config = yaml.safe_load(TINY_CONFIG.read_text())
    change(config)
    path = folder / "edited.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def dry_run(project: Path, archive: Path, config: Path) -> list[str]:
    """The jobs a dry run of the tiny study in ``project`` with ``config`` would run (``planned_jobs``)."""
    return planned_jobs(snakemake(project, "-n", *archive_config(archive), config=config))


def planned_jobs(result: subprocess.CompletedProcess) -> list[str]:
    """The jobs a dry run (-n) would run, as 'rule' or 'rule:wildcards', sorted."""
    jobs, current = [], None
    for line in (result.stdout + result.stderr).splitlines():
        stripped = line.strip()
        if stripped.startswith(("rule ", "localrule ")) and stripped.endswith(":"):
            if current:
                jobs.append(current)
            current = stripped.split()[1].rstrip(":")
        elif current and stripped.startswith("wildcards:"):
            current += ":" + stripped.split(":", 1)[1].strip()
    if current:
        jobs.append(current)
    return sorted(jobs)
