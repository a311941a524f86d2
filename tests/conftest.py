"""Shared fixtures: tiny official-format archives and runs of the workflow on them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

from archives import cifar10_members, cifar100_members, sha256, write_tar  # noqa: E402

SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
TINY_CONFIG = REPO / "configs" / "tiny.yaml"


@pytest.fixture(scope="session")
def cifar10_archive(tmp_path_factory) -> Path:
    return write_tar(tmp_path_factory.mktemp("archives") / "cifar-10-python.tar.gz", cifar10_members())


@pytest.fixture(scope="session")
def cifar100_archive(tmp_path_factory) -> Path:
    return write_tar(tmp_path_factory.mktemp("archives100") / "cifar-100-python.tar.gz", cifar100_members())


def snakemake(workdir: Path, *args: str, config: Path | None = TINY_CONFIG, check: bool = True,
              timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the workflow in ``workdir`` (with the tiny config unless told otherwise); returns the finished process."""
    command = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir)]
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
    """One complete run of the tiny study (every target of `rule all`); returns its working directory."""
    workdir = tmp_path_factory.mktemp("tiny_study")
    snakemake(workdir, "--cores", "2", *archive_config(cifar10_archive))
    return workdir
