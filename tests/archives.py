"""Write tiny CIFAR archives in the official layout (protocol-2 pickles with bytes keys, the same member names), and
CIFAR-format archives of another layout. The official-layout images carry their label and place in their pixels
(``stamp``)."""

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def class_images(labels: np.ndarray, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """Learnable size x size images: each class has its own colour and a bright square at its own place, plus noise."""
    n, block = len(labels), size // 4
    images = rng.integers(0, 150, size=(n, size, size, 3), dtype=np.int16)
    for i, label in enumerate(labels):
        hue = np.array([(label * 37) % 160, (label * 91) % 160, (label * 53) % 160])
        images[i] += hue
        row, col = divmod(int(label) % 16, 4)
        images[i, row * block:row * block + block, col * block:col * block + block] += 40
    return np.clip(images, 0, 255).astype(np.uint8)


STAMP_MARK = 0xA5  # a stamp's third byte, which tells it from noise


def stamp(images: np.ndarray, labels: np.ndarray, batch: int) -> np.ndarray:
    """Write into the last row's first two pixels of each image its label, its batch's number and its place in the
    batch (``read_stamps`` reads them back), so a test can tell from the pixels alone which image it holds and
    whose label it carries, whatever split, shuffle or file it went through. Two pixels of 1024: still learnable."""
    index = np.arange(len(images))
    images[:, -1, 0] = np.stack([labels, index // 256, index % 256], axis=1)
    images[:, -1, 1] = np.stack([np.full_like(index, batch), 255 - np.asarray(labels), np.full_like(index, STAMP_MARK)], axis=1)
    return images


def read_stamps(images: np.ndarray) -> dict[str, np.ndarray]:
    """The stamps of NHWC uint8 images: label, batch and index (place in the batch) of each; refuses an unstamped one."""
    first, second = images[:, -1, 0].astype(int), images[:, -1, 1].astype(int)
    if not ((second[:, 2] == STAMP_MARK) & (first[:, 0] + second[:, 1] == 255)).all():
        raise AssertionError("an image without its stamp: pixels changed or not an image of these archives")
    return {"label": first[:, 0], "batch": second[:, 0], "index": first[:, 1] * 256 + first[:, 2]}


def to_rows(images: np.ndarray) -> np.ndarray:
    """NHWC uint8 -> the official rows, channel by channel: (n, 3072) for CIFAR, 1024 R, then 1024 G, then 1024 B."""
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2).reshape(len(images), -1))


def balanced_labels(n: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n) % n_classes)


def add_member(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mtime = 1554014139
    tar.addfile(info, io.BytesIO(payload))


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            add_member(tar, name, payload)
    return path


def cifar10_members(per_batch: int = 50, seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    folder = "cifar-10-batches-py"
    members = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for number, name in enumerate(names, start=1):
        labels = balanced_labels(per_batch, 10, rng)
        label = f"training batch {name[-1]} of 5" if name != "test_batch" else "testing batch 1 of 1"
        batch = {
            b"batch_label": label.encode(),
            b"labels": [int(x) for x in labels],
            b"data": to_rows(stamp(class_images(labels, rng), labels, number)),
            b"filenames": [f"{name}_{i:05d}.png".encode() for i in range(per_batch)],
        }
        members[f"{folder}/{name}"] = pickle.dumps(batch, protocol=2)
    meta = {b"label_names": [c.encode() for c in CIFAR10_CLASSES], b"num_cases_per_batch": per_batch, b"num_vis": 3072}
    members[f"{folder}/batches.meta"] = pickle.dumps(meta, protocol=2)
    members[f"{folder}/readme.html"] = b"<html>tiny CIFAR-10 for tests</html>"
    return members


def cifar100_members(train: int = 200, test: int = 100, seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    folder = "cifar-100-python"
    fine_names = [f"fine{i:02d}" for i in range(100)]
    coarse_names = [f"coarse{i:02d}" for i in range(20)]
    members = {}
    for number, (name, n) in enumerate((("train", train), ("test", test)), start=1):
        fine = balanced_labels(n, 100, rng)
        batch = {
            b"filenames": [f"{name}_{i:05d}.png".encode() for i in range(n)],
            b"batch_label": f"{name} batch".encode(),
            b"fine_labels": [int(x) for x in fine],
            b"coarse_labels": [int(x) // 5 for x in fine],  # the stamp holds the fine label
            b"data": to_rows(stamp(class_images(fine % 10, rng), fine, number)),
        }
        members[f"{folder}/{name}"] = pickle.dumps(batch, protocol=2)
    meta = {b"fine_label_names": [c.encode() for c in fine_names], b"coarse_label_names": [c.encode() for c in coarse_names]}
    members[f"{folder}/meta"] = pickle.dumps(meta, protocol=2)
    return members


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def write_gzip_bomb(path: Path, members: dict[str, bytes], bomb_name: str, declared_bytes: int,
                    written_bytes: int | None = None) -> Path:
    """A .tar.gz whose member ``bomb_name`` declares ``declared_bytes`` of zeros, after the given members.

    The zeros are one compressed MiB repeated as concatenated gzip members (valid gzip: readers join them), so an
    8 GiB member costs 8 MB of disk and no time to make. ``written_bytes`` < declared cuts the member short: a stream
    that only a reader which trusted the header would notice."""
    import gzip

    chunk = 1 << 20
    zeros = gzip.compress(bytes(chunk), compresslevel=9, mtime=0)
    head = io.BytesIO()
    with tarfile.open(fileobj=head, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, payload in members.items():
            add_member(tar, name, payload)
        info = tarfile.TarInfo(bomb_name)
        info.size = declared_bytes
        tar.addfile(info)  # header only: no content follows it in this buffer
        header_end = tar.offset
    body = head.getvalue()[:header_end]  # the members and the bomb's header, without tar's end blocks
    written = declared_bytes if written_bytes is None else written_bytes
    with open(path, "wb") as out:
        out.write(gzip.compress(body, mtime=0))
        for _ in range(written // chunk):
            out.write(zeros)
        rest = written % chunk
        if rest:
            out.write(gzip.compress(bytes(rest), mtime=0))
        if written == declared_bytes:  # complete: pad the member to 512 bytes and end the archive
            out.write(gzip.compress(bytes((-declared_bytes) % 512 + 1024), mtime=0))
    return path


def cifar_format_members(folder: str, batches: dict[str, int], meta_file: str, label_key: str, names_key: str,
                         class_names: list[str], size: int, seed: int = 0) -> dict[str, bytes]:
    """An archive of a made-up CIFAR-format dataset: ``batches`` (name -> images, balanced over the classes) of
    ``size`` x ``size`` RGB images, labels under ``label_key``, class names under ``names_key`` of ``meta_file``."""
    rng = np.random.default_rng(seed)
    members = {}
    for name, n in batches.items():
        labels = balanced_labels(n, len(class_names), rng)
        batch = {b"data": to_rows(class_images(labels, rng, size)), label_key.encode(): [int(x) for x in labels]}
        members[f"{folder}/{name}"] = pickle.dumps(batch, protocol=2)
    members[f"{folder}/{meta_file}"] = pickle.dumps({names_key.encode(): [c.encode() for c in class_names]}, protocol=2)
    return members
