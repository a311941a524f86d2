"""Safe reading of official-format archives: restricted unpickling, safe members, validated batches."""

import gzip
import pickle
import subprocess
import sys
import tarfile
import time

import numpy as np
import pytest

from archives import CIFAR10_CLASSES, add_member, cifar10_members, cifar100_members, to_rows, write_gzip_bomb, write_tar
from cifarflow.archive import MAX_TRAILING_BYTES, ArchiveError, decode_batch, load_batches, safe_unpickle
from cifarflow.datasets import get_dataset
from conftest import REPO

CIFAR10 = get_dataset("cifar10")
CIFAR100 = get_dataset("cifar100")


def test_cifar10_batches_and_class_names(cifar10_archive):
    batches, names = load_batches(cifar10_archive, CIFAR10)
    assert names == CIFAR10_CLASSES
    assert list(batches) == list(CIFAR10.batches)
    for batch in batches.values():
        assert batch.images.shape == (50, 32, 32, 3) and batch.images.dtype == np.uint8
        assert batch.labels.dtype == np.int16 and batch.labels.max() < 10


def test_rows_are_decoded_channels_last(cifar10_archive):
    raw = pickle.loads(cifar10_members()["cifar-10-batches-py/data_batch_1"], encoding="bytes")
    batches, _ = load_batches(cifar10_archive, CIFAR10)
    image = batches["data_batch_1"].images[0]
    assert np.array_equal(to_rows(image[None])[0], raw[b"data"][0])
    assert image[0, 1, 0] == raw[b"data"][0][1]  # red of row 0, column 1
    assert image[0, 0, 2] == raw[b"data"][0][2048]  # blue of the first pixel


@pytest.mark.parametrize("mode,classes", [("fine", 100), ("coarse", 20)])
def test_cifar100_label_modes(cifar100_archive, mode, classes):
    batches, names = load_batches(cifar100_archive, CIFAR100, mode)
    assert len(names) == classes and names[0] == f"{mode}00"
    assert batches["train"].labels.max() == classes - 1
    assert len(batches["test"].labels) == 100


class Payload:
    def __reduce__(self):
        import os

        return os.system, ("touch /tmp/cifarflow-pwned",)


def test_pickle_with_a_code_execution_payload_is_refused(tmp_path):
    marker = __import__("pathlib").Path("/tmp/cifarflow-pwned")
    marker.unlink(missing_ok=True)
    members = cifar10_members()
    members["cifar-10-batches-py/data_batch_2"] = pickle.dumps({b"data": Payload()}, protocol=2)
    archive = write_tar(tmp_path / "evil.tar.gz", members)
    with pytest.raises(ArchiveError, match=r"refused to unpickle.*(posix|os)\.system.*nothing was executed"):
        load_batches(archive, CIFAR10)
    assert not marker.exists()


def test_official_python2_pickle_opcodes_are_accepted():
    # numpy.core spelling, as the official files were written by Python 2 with numpy 1.x
    data = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [3]}, protocol=2)
    data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    batch = decode_batch(safe_unpickle(data), "labels", 10, "b", None, CIFAR10.image_shape)
    assert batch.labels.tolist() == [3]


@pytest.mark.parametrize("name", ["../evil", "/etc/evil", "cifar-10-batches-py/../../evil"])
def test_path_traversal_members_are_refused(tmp_path, name):
    members = cifar10_members()
    members[name] = b"x"
    archive = write_tar(tmp_path / "traversal.tar.gz", members)
    with pytest.raises(ArchiveError, match="unsafe path"):
        load_batches(archive, CIFAR10)


def test_links_leaving_the_folder_are_refused(tmp_path):
    archive = tmp_path / "link.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, payload in cifar10_members().items():
            add_member(tar, name, payload)
        link = tarfile.TarInfo("cifar-10-batches-py/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        tar.addfile(link)
    with pytest.raises(ArchiveError, match="unsafe link"):
        load_batches(archive, CIFAR10)


def test_truncated_archive_is_reported(tmp_path, cifar10_archive):
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(cifar10_archive.read_bytes()[:5000])
    with pytest.raises(ArchiveError, match="truncated or not a tar.gz"):
        load_batches(truncated, CIFAR10)


def test_missing_batch_is_reported(tmp_path):
    members = cifar10_members()
    del members["cifar-10-batches-py/test_batch"]
    with pytest.raises(ArchiveError, match="lacks test_batch"):
        load_batches(write_tar(tmp_path / "a.tar.gz", members), CIFAR10)


def _rewrite_batch(tmp_path, change):
    members = cifar10_members()
    key = "cifar-10-batches-py/data_batch_3"
    batch = pickle.loads(members[key], encoding="bytes")
    change(batch)
    members[key] = pickle.dumps(batch, protocol=2)
    return write_tar(tmp_path / "bad.tar.gz", members)


@pytest.mark.parametrize("change,message", [
    (lambda b: b.__setitem__(b"labels", [11] + b[b"labels"][1:]), r"labels must be integers in \[0, 10\)"),
    (lambda b: b.__setitem__(b"data", b[b"data"].astype(np.float32)), "must be uint8"),
    (lambda b: b.__setitem__(b"data", b[b"data"][:, :1000]), r"shape \(n, 3072\)"),
    (lambda b: b.__setitem__(b"labels", b[b"labels"][:-1]), "49 labels for 50 images"),
    (lambda b: b.__setitem__(b"labels", [0] * 50), "unbalanced"),
])
def test_invalid_batches_are_refused(tmp_path, change, message):
    with pytest.raises(ArchiveError, match=message):
        load_batches(_rewrite_batch(tmp_path, change), CIFAR10)


def test_batch_size_is_checked_against_the_meta_file(tmp_path):
    members = cifar10_members()
    meta = pickle.loads(members["cifar-10-batches-py/batches.meta"], encoding="bytes")
    meta[b"num_cases_per_batch"] = 10000
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps(meta, protocol=2)
    with pytest.raises(ArchiveError, match="the meta file says 10000"):
        load_batches(write_tar(tmp_path / "a.tar.gz", members), CIFAR10)


def test_garbage_pickle_is_reported():
    with pytest.raises(ArchiveError, match="cannot unpickle"):
        safe_unpickle(b"not a pickle")


BOMB_MESSAGE = "a decompression bomb or not a CIFAR archive; nothing was unpacked"
GiB = 1 << 30


@pytest.mark.parametrize("name", ["cifar-10-batches-py/data_batch_3", "cifar-10-batches-py/notes.txt"])
def test_a_decompression_bomb_is_refused_at_its_header_in_bounded_memory(tmp_path, name):
    """A real 8 GiB member (8 MB of gzip) under a batch's name or another: refused in one line, peak RSS far
    below the member, in a process of its own (VmHWM: the peak of this program alone, unlike ru_maxrss, which
    Linux carries over from the forking test process)."""
    members = cifar10_members()
    del members["cifar-10-batches-py/data_batch_3"]
    bomb = write_gzip_bomb(tmp_path / "bomb.tar.gz", members, name, declared_bytes=8 * GiB)
    assert bomb.stat().st_size < 16 << 20
    code = (
        "import sys\n"
        "from cifarflow.archive import ArchiveError, load_batches\n"
        "from cifarflow.datasets import get_dataset\n"
        "try:\n"
        f"    load_batches({str(bomb)!r}, get_dataset('cifar10'))\n"
        "except ArchiveError as error:\n"
        "    print(error)\n"
        "peak = [line for line in open('/proc/self/status') if line.startswith('VmHWM:')][0]\n"
        "print('peak_kb', peak.split()[1])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(REPO / "workflow"), "PATH": "/usr/bin:/bin"})
    assert BOMB_MESSAGE in result.stdout and "8,589,934,592 bytes" in result.stdout, result.stdout + result.stderr
    peak_kb = int(result.stdout.split("peak_kb")[1])
    assert peak_kb < 512 * 1024  # the bomb's 8 GiB never reach memory


def test_the_refusal_does_not_read_the_declared_content(tmp_path):
    """Headers that declare 1 GiB and 1 TiB with only 1 MiB behind them: a reader that trusted the header would
    stop at the truncated stream instead; both are refused alike, and as fast."""
    seconds = []
    for declared in (GiB, 1024 * GiB):
        bomb = write_gzip_bomb(tmp_path / f"bomb{declared}.tar.gz", {}, "cifar-10-batches-py/data_batch_1",
                               declared_bytes=declared, written_bytes=1 << 20)
        started = time.monotonic()
        with pytest.raises(ArchiveError, match=BOMB_MESSAGE):
            load_batches(bomb, CIFAR10)
        seconds.append(time.monotonic() - started)
    assert max(seconds) < 5


def test_the_largest_real_batches_fit_under_the_limit():
    """A full-size batch of each dataset (10,000 CIFAR-10 images; 50,000 CIFAR-100 training images), pickled by
    Python 3 (bytes >= 128 take two bytes: 1.5x the official Python 2 files) stays below the member limit."""
    full_cifar10 = len(cifar10_members(per_batch=10000)["cifar-10-batches-py/data_batch_1"])
    assert full_cifar10 < CIFAR10.max_member_bytes * 0.95
    full_cifar100 = len(cifar100_members(train=50000, test=100)["cifar-100-python/train"])
    assert full_cifar100 < CIFAR100.max_member_bytes * 0.95


def test_a_batch_given_twice_is_refused(tmp_path):
    members = cifar10_members()
    archive = tmp_path / "twice.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, payload in members.items():
            add_member(tar, name, payload)
        add_member(tar, "cifar-10-batches-py/data_batch_2", members["cifar-10-batches-py/data_batch_2"])
    with pytest.raises(ArchiveError, match="'cifar-10-batches-py/data_batch_2' appears twice"):
        load_batches(archive, CIFAR10)


def test_a_gzip_whose_checksum_does_not_match_is_refused(tmp_path, cifar10_archive):
    """The gzip trailer's CRC-32 is checked (the content is intact here: only the check can tell)."""
    data = bytearray(cifar10_archive.read_bytes())
    data[-8] ^= 1  # the trailer: CRC-32, then the length
    damaged = tmp_path / "damaged.tar.gz"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="CRC check failed"):
        load_batches(damaged, CIFAR10)


@pytest.mark.parametrize("trailing, refused", [(MAX_TRAILING_BYTES // 2, False), (MAX_TRAILING_BYTES + (64 << 10), True)])
def test_data_after_the_tar_end_is_read_up_to_a_limit(tmp_path, trailing, refused):
    """A stream that goes on after the tar's end (here: a second gzip member of zeros) is read to its end for the
    checksum, but only so far (tarfile has read ahead of the end by at most a 10 KiB record)."""
    archive = write_tar(tmp_path / "a.tar.gz", cifar10_members(per_batch=10))
    archive.write_bytes(archive.read_bytes() + gzip.compress(bytes(trailing), mtime=0))
    if refused:
        with pytest.raises(ArchiveError, match="bytes follow the end of its tar data"):
            load_batches(archive, CIFAR10)
    else:
        assert len(load_batches(archive, CIFAR10)[0]["test_batch"].labels) == 10
