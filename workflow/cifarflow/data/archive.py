"""Read CIFAR-format python archives (the official ones and any a ``DatasetSpec`` describes) safely: checked tar
members of bounded size, a restricted unpickler, validated batches."""

import gzip
import io
import pickle
import posixpath
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .datasets import DatasetSpec
from ..errors import UserError

# Exactly what numpy array reconstruction in the official (Python 2, protocol 2) pickles needs.
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how Python 3 writes bytes in protocol 2
}


class ArchiveError(UserError, ValueError):
    """The archive is unsafe, damaged or not in the official layout; the message says which."""


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in ALLOWED_GLOBALS:
            raise ArchiveError(
                f"refused to unpickle: the pickle asks for {module}.{name}, which a CIFAR batch never needs "
                "(the archive may be malicious); nothing was executed"
            )
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core"):]
        return super().find_class(module, name)


def safe_unpickle(data: bytes):
    """Unpickle a batch with bytes keys (as the official Python 2 files have), refusing any other global."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except ArchiveError:
        raise
    except Exception as error:
        raise ArchiveError(f"cannot unpickle batch: {type(error).__name__}: {error}") from None


def check_member(member: tarfile.TarInfo) -> None:
    """Refuse absolute paths, '..' components, links that leave the archive's folder and device files."""
    name = member.name
    normalized = posixpath.normpath(name)
    if name.startswith(("/", "\\")) or ":" in name.split("/", 1)[0] or normalized.startswith(".."):
        raise ArchiveError(f"unsafe path in archive: {name!r} points outside the archive's folder")
    if ".." in name.replace("\\", "/").split("/"):
        raise ArchiveError(f"unsafe path in archive: {name!r} contains '..'")
    if member.issym() or member.islnk():
        target = posixpath.normpath(posixpath.join(posixpath.dirname(normalized), member.linkname))
        if member.linkname.startswith("/") or target.startswith(".."):
            raise ArchiveError(f"unsafe link in archive: {name!r} -> {member.linkname!r} leaves the archive's folder")
    elif not (member.isfile() or member.isdir()):
        raise ArchiveError(f"unexpected member type in archive: {name!r} is not a file or folder")


def _key(entry: dict, key: str):
    for candidate in (key.encode(), key):
        if candidate in entry:
            return entry[candidate]
    raise ArchiveError(f"batch has no {key!r} entry")


@dataclass
class Batch:
    images: np.ndarray  # uint8, (n, height, width, channels)
    labels: np.ndarray  # int16, (n,)


MAX_MEMBERS = 1000  # the official archives have under 10
GZIP_MAGIC = b"\x1f\x8b"
MAX_TRAILING_BYTES = 1 << 20  # after the tar's end: tar pads its last record to 10 KiB


def open_compressed(path: Path):
    """The archive as a stream of tar bytes. gzip is read by ``gzip`` (tarfile's own stream reader never checks the
    CRC-32 at the end, so a flipped bit in the compressed data could unpack as other pixels); others as tarfile finds."""
    with open(path, "rb") as file:
        gzipped = file.read(len(GZIP_MAGIC)) == GZIP_MAGIC
    return gzip.open(path) if gzipped else open(path, "rb")


def read_to_end(stream, path: Path) -> None:
    """Read what follows the tar's end, so a gzip stream's CRC-32 and length are checked (``MAX_TRAILING_BYTES`` at
    most)."""
    left = MAX_TRAILING_BYTES
    while chunk := stream.read(min(left + 1, 1 << 20)):
        left -= len(chunk)
        if left < 0:
            raise ArchiveError(f"refused archive {path}: more than {MAX_TRAILING_BYTES:,} bytes follow the end of its tar data; "
                               "not a CIFAR archive")


def refuse_as_too_large(path: Path, spec: DatasetSpec, where: str, limit: str):
    raise ArchiveError(f"refused archive {path}: {where} it declares more than any real {spec.name} archive holds "
                       f"(at most {limit}): a decompression bomb or not a CIFAR archive; nothing was unpacked")


def archive_members(path: Path, spec: DatasetSpec):
    """Yield (name, raw bytes) of every batch and the meta file, one at a time, in archive order.

    Every member is checked before any of its content is read: a path or type that is not safe, or a size no real
    batch has (a decompression bomb, under a batch's name or another), is refused at its header, so neither time nor
    memory grows with what a hostile member declares."""
    wanted = {f"{spec.folder}/{name}" for name in spec.batches + (spec.meta_file,)}
    max_total = (len(wanted) + 1) * spec.max_member_bytes
    found, total = set(), 0
    try:
        with open_compressed(path) as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:  # read in order, never kept
            for count, member in enumerate(tar, start=1):
                check_member(member)
                total += member.size
                if count > MAX_MEMBERS:
                    refuse_as_too_large(path, spec, f"at {member.name!r}, its member number {count:,}",
                                        f"{MAX_MEMBERS:,} members")
                if member.size > spec.max_member_bytes or total > max_total:
                    refuse_as_too_large(path, spec, f"at {member.name!r} ({member.size:,} bytes)",
                                        f"{spec.max_member_bytes:,} bytes a member, {max_total:,} in all")
                name = posixpath.normpath(member.name)
                if name in wanted and member.isfile():
                    short = name.split("/", 1)[1]
                    if short in found:
                        raise ArchiveError(f"refused archive {path}: {member.name!r} appears twice; an official archive "
                                           "has each batch once")
                    found.add(short)
                    yield short, tar.extractfile(member).read()
            read_to_end(stream, path)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise ArchiveError(f"cannot read archive {path}: {type(error).__name__}: {error} (truncated or not a tar.gz?)") from None
    missing = sorted(name.split("/", 1)[1] for name in wanted if name.split("/", 1)[1] not in found)
    if missing:
        raise ArchiveError(f"archive {path} lacks {', '.join(missing)} under {spec.folder}/: not the official {spec.name} layout")


def class_names(meta: dict, spec: DatasetSpec, label_mode: str) -> list[str]:
    _, names_key = spec.label_set(label_mode)
    names = _key(meta, names_key)
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def decode_batch(entry: dict, label_key: str, n_classes: int, batch_name: str, expected_size: int | None,
                 image_shape: tuple[int, int, int]) -> Batch:
    """Check a batch's shapes, dtype and labels, and return it as NHWC uint8 images of ``image_shape`` (height,
    width, channels); a row of ``data`` holds the image channel by channel."""
    height, width, channels = image_shape
    data = _key(entry, "data")
    labels = np.asarray(_key(entry, label_key))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != height * width * channels:
        shape = getattr(data, "shape", None)
        dtype = getattr(data, "dtype", type(data).__name__)
        raise ArchiveError(f"{batch_name}: data must be uint8 of shape (n, {height * width * channels}), got {dtype} {shape}")
    if labels.ndim != 1 or len(labels) != len(data):
        raise ArchiveError(f"{batch_name}: {len(labels)} labels for {len(data)} images")
    if expected_size is not None and len(data) != expected_size:
        raise ArchiveError(f"{batch_name}: {len(data)} images, the meta file says {expected_size}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= n_classes:
        raise ArchiveError(f"{batch_name}: labels must be integers in [0, {n_classes}), got {labels.min()}..{labels.max()}")
    images = data.reshape(-1, channels, height, width).transpose(0, 2, 3, 1)
    return Batch(np.ascontiguousarray(images), labels.astype(np.int16))


def check_class_balance(batches: list[Batch], n_classes: int, what: str) -> None:
    """The official splits hold the same number of images of every class."""
    counts = np.bincount(np.concatenate([b.labels for b in batches]), minlength=n_classes)
    if counts.min() != counts.max():
        raise ArchiveError(f"{what} split is unbalanced ({counts.min()}..{counts.max()} images per class): damaged archive?")


def load_batches(path: Path, spec: DatasetSpec, label_mode: str = "fine") -> tuple[dict[str, Batch], list[str]]:
    """Read, unpickle and validate every batch of an archive in the layout ``spec`` describes; return batches and
    class names."""
    entries = {}  # unpickled batches: their pixel arrays are what the decoded batches hold, so memory stays near one copy
    for name, payload in archive_members(path, spec):
        entries[name] = safe_unpickle(payload)
        del payload
    meta = entries.pop(spec.meta_file)
    names = class_names(meta, spec, label_mode)
    label_key, _ = spec.label_set(label_mode)
    per_batch = meta.get(b"num_cases_per_batch", meta.get("num_cases_per_batch"))
    batches = {}
    for name in spec.batches:
        batches[name] = decode_batch(entries.pop(name), label_key, len(names), name, per_batch, spec.image_shape)
    check_class_balance([batches[n] for n in spec.train_batches], len(names), "training")
    check_class_balance([batches[n] for n in spec.test_batches], len(names), "test")
    return batches, names
