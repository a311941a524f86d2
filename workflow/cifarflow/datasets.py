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
    # label key in the batch pickles -> class-name key in the meta pickle
    label_keys: dict

    @property
    def archive_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def batches(self) -> tuple[str, ...]:
        return self.train_batches + self.test_batches

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
        label_keys={"fine_labels": "fine_label_names", "coarse_labels": "coarse_label_names"},
    ),
}


def get_dataset(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}") from None
