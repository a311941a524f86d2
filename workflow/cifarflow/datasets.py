"""What each supported dataset's official archive looks like."""

from dataclasses import dataclass


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    url: str
    md5: str
    folder: str  # top folder inside the archive
    train_batches: tuple[str, ...]
    test_batches: tuple[str, ...]
    meta_file: str
    images_per_batch: int
    max_batch_images: int  # the most images one batch file of the official archive holds
    # label key in the batch pickles -> class-name key in the meta pickle
    label_keys: dict

    @property
    def archive_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def batches(self) -> tuple[str, ...]:
        return self.train_batches + self.test_batches

    @property
    def max_member_bytes(self) -> int:
        """The largest archive member a real batch can be: its pixels as a protocol-2 pickle stores them (one byte
        each from Python 2, up to two from Python 3) plus, with a wide margin, its labels, file names and framing.
        A larger member is refused before a byte of it is read."""
        return self.max_batch_images * (2 * 3072 + 256) + (1 << 20)

    def label_key(self, label_mode: str) -> str:
        if self.name == "cifar10":
            return "labels"
        return {"fine": "fine_labels", "coarse": "coarse_labels"}[label_mode]


DATASETS = {
    "cifar10": DatasetSpec(
        name="cifar10",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
        folder="cifar-10-batches-py",
        train_batches=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_batches=("test_batch",),
        meta_file="batches.meta",
        images_per_batch=10000,
        max_batch_images=10000,
        label_keys={"labels": "label_names"},
    ),
    "cifar100": DatasetSpec(
        name="cifar100",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        md5="eb9058c3a382ffc7106e4002c42a8d85",
        folder="cifar-100-python",
        train_batches=("train",),
        test_batches=("test",),
        meta_file="meta",
        images_per_batch=0,  # 50000 train / 10000 test, checked from the data itself
        max_batch_images=50000,
        label_keys={"fine_labels": "fine_label_names", "coarse_labels": "coarse_label_names"},
    ),
}


def get_dataset(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}") from None
