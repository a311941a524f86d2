"""Safe reading of official-format archives: restricted unpickling, safe members, validated batches."""

import gzip
import io
import pickle
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from archives import CIFAR10_CLASSES, add_member, cifar10_members, cifar100_members, to_rows, write_gzip_bomb, write_tar
from cifarflow.data.archive import MAX_MEMBERS, MAX_TRAILING_BYTES, ArchiveError, decode_batch, load_batches, safe_unpickle
from cifarflow.data.datasets import get_dataset
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
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_pickle_with_a_code_execution_payload_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    members = cifar10_members()
    members["cifar-10-batches-py/data_batch_2"] = pickle.dumps({b"data": Payload(marker)}, protocol=2)
    archive = write_tar(tmp_path / "evil.tar.gz", members)
    with pytest.raises(ArchiveError, match=r"refused to unpickle.*(posix|os)\.system.*nothing was executed"):
        load_batches(archive, CIFAR10)
    assert not marker.exists()
    pickle.loads(members["cifar-10-batches-py/data_batch_2"])  # what a plain unpickler does with it
    assert marker.exists()


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
        "from cifarflow.data.archive import ArchiveError, load_batches\n"
        "from cifarflow.data.datasets import get_dataset\n"
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


def test_the_refusal_does_not_read_the_declared_content(tmp_path, monkeypatch):
    """Headers that declare 1 GiB and 1 TiB with 256 MiB behind them: a reader that trusted the header would read on
    to the truncated end instead; both are refused alike, after reading the same few bytes of the file (counted, not
    timed: the compressed bytes read from the file are counted)."""
    import cifarflow.data.archive as archive

    read = []
    gzip_open = archive.gzip.open

    class Counted(io.RawIOBase):
        def __init__(self, path):
            self.file = open(path, "rb")

        def readable(self):
            return True

        def readinto(self, buffer):
            count = self.file.readinto(buffer)
            read[-1] += count
            return count

        def close(self):
            self.file.close()
            super().close()

    monkeypatch.setattr(archive.gzip, "open", lambda path: gzip_open(Counted(path)))
    for declared in (GiB, 1024 * GiB):
        bomb = write_gzip_bomb(tmp_path / f"bomb{declared}.tar.gz", {}, "cifar-10-batches-py/data_batch_1",
                               declared_bytes=declared, written_bytes=256 << 20)
        read.append(0)
        with pytest.raises(ArchiveError, match=BOMB_MESSAGE):
            load_batches(bomb, CIFAR10)
        assert 0 < read[-1] < bomb.stat().st_size / 10
    assert read[0] == read[1]


def test_an_archive_of_too_many_members_is_refused_by_their_count(tmp_path):
    """Many empty members declare no bytes: the refusal names the member count, not a size."""
    members = {f"cifar-10-batches-py/note_{k:04d}": b"" for k in range(MAX_MEMBERS + 1)}
    with pytest.raises(ArchiveError) as refused:
        load_batches(write_tar(tmp_path / "many.tar.gz", members), CIFAR10)
    message = str(refused.value)
    assert f"'cifar-10-batches-py/note_{MAX_MEMBERS:04d}', its member number {MAX_MEMBERS + 1:,}" in message
    assert f"at most {MAX_MEMBERS:,} members" in message and BOMB_MESSAGE in message and "bytes" not in message


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


def tiny_members() -> dict[str, bytes]:
    return cifar10_members(per_batch=10)


def archive_with(tmp_path, extra: list[tarfile.TarInfo | tuple[str, bytes]], members=None) -> Path:
    """A tiny CIFAR-10 archive with ``extra`` members after the official ones (headers alone, or name and bytes)."""
    path = tmp_path / "extra.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in (tiny_members() if members is None else members).items():
            add_member(tar, name, payload)
        for item in extra:
            if isinstance(item, tuple):
                add_member(tar, *item)
            else:
                tar.addfile(item)
    return path


def link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


@pytest.mark.parametrize("member, message", [
    (("C:evil/x", b""), r"^unsafe path in archive: 'C:evil/x' points outside the archive's folder$"),
    (("\\evil", b""), r"^unsafe path in archive: '\\\\evil' points outside the archive's folder$"),
    (("cifar-10-batches-py/a\\..\\b", b""), r"^unsafe path in archive: .* contains '\.\.'$"),
    (link("cifar-10-batches-py/abs", "/etc/passwd"),
     r"^unsafe link in archive: .* -> '/etc/passwd' leaves the archive's folder$"),
])
def test_unsafe_members_are_refused_by_name(tmp_path, member, message):
    with pytest.raises(ArchiveError, match=message):
        load_batches(archive_with(tmp_path, [member]), CIFAR10)


def test_a_link_that_stays_in_the_folder_and_a_plain_folder_are_accepted(tmp_path):
    folder = tarfile.TarInfo("cifar-10-batches-py/notes")
    folder.type = tarfile.DIRTYPE
    archive = archive_with(tmp_path, [folder, link("cifar-10-batches-py/notes/readme", "../readme.html")])
    assert len(load_batches(archive, CIFAR10)[0]["test_batch"].labels) == 10


def test_a_device_member_is_refused(tmp_path):
    fifo = tarfile.TarInfo("cifar-10-batches-py/pipe")
    fifo.type = tarfile.FIFOTYPE
    message = r"^unexpected member type in archive: 'cifar-10-batches-py/pipe' is not a file or folder$"
    with pytest.raises(ArchiveError, match=message):
        load_batches(archive_with(tmp_path, [fifo]), CIFAR10)


@pytest.mark.parametrize("extra, refused", [(992, False), (993, True)])  # 8 official members: 1,000 at most in all
def test_at_most_a_thousand_members(tmp_path, extra, refused):
    archive = archive_with(tmp_path, [(f"cifar-10-batches-py/extra/{i}", b"") for i in range(extra)])
    if refused:
        with pytest.raises(ArchiveError, match=r"at 'cifar-10-batches-py/extra/992'.*1,000 members\).*nothing was unpacked$"):
            load_batches(archive, CIFAR10)
    else:
        assert len(load_batches(archive, CIFAR10)[0]) == 6


# max_member_bytes of one image a batch: 1 MiB + 6,400 bytes; in all, 8 times that (7 wanted members, one more)
ONE_IMAGE = replace(CIFAR10, max_batch_images=1)


@pytest.mark.parametrize("over", [0, 1])
def test_a_member_may_be_as_large_as_the_limit_and_no_larger(tmp_path, over):
    archive = archive_with(tmp_path, [("cifar-10-batches-py/notes.txt", bytes(ONE_IMAGE.max_member_bytes + over))])
    if over:
        with pytest.raises(ArchiveError, match=rf"'cifar-10-batches-py/notes.txt' \({ONE_IMAGE.max_member_bytes + 1:,} bytes\)"):
            load_batches(archive, ONE_IMAGE)
    else:
        load_batches(archive, ONE_IMAGE)


@pytest.mark.parametrize("over", [0, 1])
def test_the_members_together_may_reach_the_limit_and_no_more(tmp_path, over):
    members = tiny_members()
    limit, total = 8 * ONE_IMAGE.max_member_bytes, sum(map(len, members.values()))
    fillers = [ONE_IMAGE.max_member_bytes] * ((limit - total) // ONE_IMAGE.max_member_bytes)
    fillers.append(limit - total - sum(fillers) + over)
    archive = archive_with(tmp_path, [(f"cifar-10-batches-py/fill{i}", bytes(size)) for i, size in enumerate(fillers)])
    if over:
        with pytest.raises(ArchiveError, match=rf"{limit:,} in all"):
            load_batches(archive, ONE_IMAGE)
    else:
        load_batches(archive, ONE_IMAGE)


def test_missing_batches_are_named_and_a_repeated_one_in_full(tmp_path):
    members = tiny_members()
    del members["cifar-10-batches-py/data_batch_2"], members["cifar-10-batches-py/test_batch"]
    with pytest.raises(ArchiveError, match=r"lacks data_batch_2, test_batch under cifar-10-batches-py/: not the official "
                                           r"cifar10 layout$"):
        load_batches(write_tar(tmp_path / "a.tar.gz", members), CIFAR10)
    twice = archive_with(tmp_path, [("cifar-10-batches-py/test_batch", tiny_members()["cifar-10-batches-py/test_batch"])])
    with pytest.raises(ArchiveError, match=r"appears twice; an official archive has each batch once$"):
        load_batches(twice, CIFAR10)


def test_the_reason_an_archive_cannot_be_read_is_named(tmp_path):
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"\x1f\x8b" + bytes(100))
    with pytest.raises(ArchiveError, match=r"cannot read archive .*: BadGzipFile: .*\(truncated or not a tar.gz\?\)$"):
        load_batches(garbage, CIFAR10)


def rewritten(tmp_path, name: str, change) -> Path:
    members = tiny_members()
    entry = pickle.loads(members[f"cifar-10-batches-py/{name}"], encoding="bytes")
    change(entry)
    members[f"cifar-10-batches-py/{name}"] = pickle.dumps(entry, protocol=2)
    return write_tar(tmp_path / f"{name}.tar.gz", members)


@pytest.mark.parametrize("name, change, message", [
    ("data_batch_3", lambda b: b.__setitem__(b"data", b[b"data"].astype(np.float32)),
     r"^data_batch_3: data must be uint8 of shape \(n, 3072\), got float32 \(10, 3072\)$"),
    ("data_batch_3", lambda b: b.__setitem__(b"data", b[b"data"].tolist()),
     r"^data_batch_3: data must be uint8 of shape \(n, 3072\), got list None$"),
    ("data_batch_3", lambda b: b.__setitem__(b"labels", [10] + b[b"labels"][1:]), r"got 0\.\.10$"),
    ("data_batch_3", lambda b: b.__setitem__(b"labels", [float(x) for x in b[b"labels"]]), r"labels must be integers"),
    ("data_batch_3", lambda b: b.pop(b"data"), r"^batch has no 'data' entry$"),
    ("test_batch", lambda b: b.__setitem__(b"labels", [0] * 10), r"^test split is unbalanced \(0\.\.10 images per class\)"),
    ("data_batch_2", lambda b: b.__setitem__(b"labels", [0] * 10), r"^training split is unbalanced"),
])
def test_each_bad_batch_is_refused_by_name(tmp_path, name, change, message):
    with pytest.raises(ArchiveError, match=message):
        load_batches(rewritten(tmp_path, name, change), CIFAR10)


def test_python3_metadata_with_text_keys_and_names_is_read(tmp_path):
    meta = {"label_names": list(CIFAR10_CLASSES), "num_cases_per_batch": 20}  # str keys and names
    members = tiny_members() | {"cifar-10-batches-py/batches.meta": pickle.dumps(meta, protocol=2)}
    with pytest.raises(ArchiveError, match="the meta file says 20"):
        load_batches(write_tar(tmp_path / "a.tar.gz", members), CIFAR10)
    meta["num_cases_per_batch"] = 10
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps(meta, protocol=2)
    assert load_batches(write_tar(tmp_path / "b.tar.gz", members), CIFAR10)[1] == CIFAR10_CLASSES


def test_python2_text_is_read_as_bytes_and_old_numpy_names_without_warnings():
    assert safe_unpickle(b"\x80\x02U\x01\xc8.") == b"\xc8"  # a Python 2 str holding byte 200
    data = pickle.dumps(np.zeros(2, np.uint8), protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # importing numpy.core warns: the old name is mapped to numpy._core
        assert safe_unpickle(data).tolist() == [0, 0]
