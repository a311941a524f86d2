"""End-to-end runs of the data stages (download -> unpack -> normalize) through snakemake."""

import json
import socket

import numpy as np
import pytest

from archives import cifar10_members, read_stamps, sha256, write_gzip_bomb, write_tar
from conftest import REPO, archive_config, copy_project, dry_run_of_repo, planned_jobs, snakemake

DATA_TARGET = "normalize"


@pytest.fixture
def project(tmp_path):
    return copy_project(tmp_path / "project")


def data_outputs(project):
    return sorted(p.relative_to(project).as_posix() for p in (project / "results").rglob("*") if p.is_file()) \
        if (project / "results").exists() else []


def test_download_from_http_unpack_and_split(project, http_server, cifar10_archive):
    url = http_server.add("/cifar-10-python.tar.gz", cifar10_archive)
    args = ["--cores", "2", "--config", f"archive={url}", f"archive_sha256={sha256(cifar10_archive)}", "--", DATA_TARGET]
    snakemake(project, *args)
    for split, size in (("train", 200), ("val", 50), ("test", 50)):
        with np.load(project / f"results/data/{split}.npz") as data:
            assert data["images"].shape == (size, 32, 32, 3) and data["images"].dtype == np.uint8
    stats = json.loads((project / "results/data/normalization.json").read_text())
    assert stats["n_images"] == 200 and len(stats["mean"]) == 3
    assert json.loads((project / "results/data/classes.json").read_text())[0] == "airplane"
    # a second run does nothing and never downloads again
    requests = len(http_server.requests)
    second = snakemake(project, *args)
    assert "Nothing to be done" in second.stdout + second.stderr
    assert len(http_server.requests) == requests


def test_interrupted_transfer_is_resumed(project, http_server, cifar10_archive):
    url = http_server.add("/cifar-10-python.tar.gz", cifar10_archive)
    http_server.cut_after = cifar10_archive.stat().st_size // 2
    snakemake(project, "--cores", "1", "--config", f"archive={url}", f"archive_sha256={sha256(cifar10_archive)}",
              "--", "download")
    assert [r["range"] is not None for r in http_server.requests] == [False, True]
    log = (project / "logs/download.log").read_text()
    assert "resuming at byte" in log and "verified sha256" in log
    assert list((project / "resources").rglob("*.part")) == []


def test_wrong_checksum_is_refused_with_nothing_left(project, http_server, cifar10_archive):
    url = http_server.add("/cifar-10-python.tar.gz", cifar10_archive)
    result = snakemake(project, "--cores", "1", "--config", f"archive={url}", "archive_sha256=" + "ab" * 32,
                       "--", DATA_TARGET, check=False)
    assert result.returncode != 0
    assert "ERROR: checksum mismatch" in result.stderr
    assert list((project / "resources").rglob("*.*")) == [] if (project / "resources").exists() else True
    assert data_outputs(project) == []


def test_404_is_a_clear_error(project, http_server):
    result = snakemake(project, "--cores", "1", "--config", f"archive={http_server.url('/nope.tar.gz')}",
                       "archive_md5=" + "a" * 32, "--", DATA_TARGET, check=False)
    assert result.returncode != 0
    assert "ERROR: download failed:" in result.stderr and "HTTP 404" in result.stderr


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: a connection there is refused at once, never leaving the machine."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_download_says_how_to_use_a_local_archive(project):
    url = f"http://127.0.0.1:{closed_port()}/cifar-10-python.tar.gz"
    result = snakemake(project, "--cores", "1", "--config", f"archive={url}", "archive_md5=" + "a" * 32,
                       "--", DATA_TARGET, check=False)
    assert result.returncode != 0
    assert f"cannot reach {url}" in result.stderr
    assert "--config archive=PATH/TO/ARCHIVE archive_sha256=SHA256" in result.stderr
    assert "attempt 2" not in (project / "logs/download.log").read_text()  # refused: no retries


@pytest.mark.parametrize("member,payload,message", [
    ("cifar-10-batches-py/../../escape", b"x", "unsafe path in archive"),
    ("cifar-10-batches-py/data_batch_2", b"cos\nsystem\n(S'echo pwned'\ntR.", "refused to unpickle"),
])
def test_malicious_archives_are_refused(project, tmp_path, member, payload, message):
    members = cifar10_members()
    members[member] = payload
    archive = write_tar(tmp_path / "bad.tar.gz", members)
    result = snakemake(project, "--cores", "1", *archive_config(archive), "--", DATA_TARGET, check=False)
    assert result.returncode != 0 and message in result.stderr
    assert not (project / "results/data/classes.json").exists()
    assert not (project / "results/data/train.npz").exists()


@pytest.mark.parametrize("bomb_name", ["cifar-10-batches-py/data_batch_2", "cifar-10-batches-py/extra.bin"])
def test_a_decompression_bomb_is_refused_with_nothing_left(project, tmp_path, bomb_name):
    members = cifar10_members()
    members.pop(bomb_name, None)
    bomb = write_gzip_bomb(tmp_path / "bomb.tar.gz", members, bomb_name, declared_bytes=8 << 30)
    result = snakemake(project, "--cores", "1", *archive_config(bomb), "--", "results/data/train.npz", check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "a decompression bomb or not a CIFAR archive" in errors[0]
    assert data_outputs(project) == []


@pytest.mark.parametrize("override,message", [
    ("archiv=x", "'archiv' was unexpected"),
    ("dataset=cifar1000", "unknown dataset 'cifar1000'"),
    ("validation_size=many", "'many' is not of type 'integer'"),
    ("archive=/data/cifar.tar.gz", "'archive_md5' or 'archive_sha256' must be set"),
])
def test_bad_config_is_refused_before_any_job(project, override, message):
    result = snakemake(project, "--cores", "1", "--config", override, check=False)
    assert result.returncode != 0
    assert message in result.stderr
    assert not (project / "logs").exists() and not (project / "results").exists()


@pytest.mark.parametrize("mode,classes", [("fine", 100), ("coarse", 20)])
def test_cifar100_splits_keep_every_image_with_its_fine_or_coarse_label(project, cifar100_archive, mode, classes):
    """Validation is the last images of the one training batch; each image keeps its label (the stamp in its pixels
    holds the fine label; a coarse label is the fine one // 5) and its place."""
    snakemake(project, "--cores", "1", *archive_config(cifar100_archive), "dataset=cifar100",
              f"cifar100_labels={mode}", "validation_size=40", "--", DATA_TARGET)
    names = json.loads((project / "results/data/classes.json").read_text())
    assert len(names) == classes and names[0] == f"{mode}00"
    expected = {"train": (1, range(160)), "val": (1, range(160, 200)), "test": (2, range(100))}
    for split, (batch, places) in expected.items():
        with np.load(project / f"results/data/{split}.npz") as data:
            stamps = read_stamps(data["images"])
            assert list(stamps["batch"]) == [batch] * len(places) and list(stamps["index"]) == list(places), split
            assert list(data["labels"]) == list(stamps["label"] // (100 // classes)), split


def test_default_config_lists_one_train_job_per_variant_and_seed(tmp_path):
    result = dry_run_of_repo(tmp_path, "--config", "archive=x.tar.gz", "archive_md5=" + "a" * 32)
    trained = [job for job in planned_jobs(result) if job.startswith("train:")]
    seed_variants = ["model1", "model2", "model3", "model3_l2_0", "model3_l2_5e-5", "model3_l2_5e-4",
                     "model3_l2_0.05", "model3_dropout", "model3_l2_5e-4_dropout"]
    assert trained == sorted(f"train:variant={name}, seed={seed}" for name in seed_variants + ["fast", "fast94", "quick"]
                             for seed in (0, 1, 2))


def test_only_variants_picks_variants_and_rejects_unknown_names(tmp_path):
    result = dry_run_of_repo(tmp_path, "--config", "archive=x.tar.gz", "archive_md5=" + "a" * 32,
                             configs=(REPO / "config.yaml", REPO / "configs/laptop.yaml"))
    trained = [job.split(",")[0] for job in planned_jobs(result) if job.startswith("train:")]
    assert "train:variant=model3_dropout" in trained and "train:variant=quick" not in trained
    bad = dry_run_of_repo(tmp_path, "--config", "archive=x.tar.gz", "archive_md5=" + "a" * 32, "only_variants=[model9]",
                          check=False)
    assert bad.returncode != 0 and "only_variants names ['model9']" in bad.stdout + bad.stderr
