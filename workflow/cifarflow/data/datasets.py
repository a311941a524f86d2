"""What a CIFAR-format dataset's archive looks like: a description per dataset, which every stage asks for geometry,
batch names and labels. A new CIFAR-format dataset is one entry in ``DATASETS``, or one under ``datasets`` in the
config (the same fields, see ``config.yaml``)."""

from dataclasses import dataclass

from ..errors import UserError


class DatasetError(UserError, ValueError):
    """A dataset setting that does not fit the dataset; the message says which."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    folder: str  # top folder inside the archive
    train_batches: tuple[str, ...]  # member names under ``folder``
    test_batches: tuple[str, ...]
    meta_file: str  # the pickle that holds the class names
    # label set (``cifar100_labels``: fine, coarse) -> (label key in the batch pickles, class-name key in the meta
    # pickle); a dataset with one label set uses it whatever the config says
    label_sets: dict
    max_batch_images: int  # the most images one batch file of the archive holds
    image_size: int = 32  # square images of image_size x image_size pixels
    channels: int = 3
    url: str | None = None  # the official download; None: a config must name the archive
    md5: str | None = None
    title: str | None = None  # the name documents give it (CIFAR-10); None: ``name``
    about: str | None = None  # what its images are, for the model card's limits
    test_images: int | None = None  # the images of the official test split, when there is one

    def display_name(self, label_mode: str) -> str:
        """The dataset's name in documents, with the label set where it has several (CIFAR-100 (fine labels))."""
        title = self.title or self.name
        return f"{title} ({label_mode} labels)" if len(self.label_sets) > 1 else title

    def validation_description(self, validation_batches: list[str], validation_size: int) -> str:
        """Which images the validation split holds (``split_batches``'s rule), in words."""
        if len(self.train_batches) == 1:
            return f"the last {validation_size:,} images of the training file, held out from training"
        return f"the training batch(es) {', '.join(f'`{b}`' for b in validation_batches)}, held out from training"

    def facts(self, label_mode: str, validation_batches: list[str], validation_size: int) -> dict:
        """What the model card says of the dataset."""
        return {"name": self.display_name(label_mode), "about": self.about, "test_images": self.test_images,
                "validation": self.validation_description(validation_batches, validation_size)}

    @property
    def archive_name(self) -> str:
        return self.url.rsplit("/", 1)[-1] if self.url else f"{self.name}.tar.gz"

    @property
    def batches(self) -> tuple[str, ...]:
        return self.train_batches + self.test_batches

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of an image, as the splits store it."""
        return self.image_size, self.image_size, self.channels

    @property
    def values_per_image(self) -> int:
        """Values of one image in a batch's ``data`` rows: all of channel 0 row by row, then channel 1..."""
        return self.image_size * self.image_size * self.channels

    @property
    def max_member_bytes(self) -> int:
        """The largest archive member a real batch can be: its pixels as a protocol-2 pickle stores them (one byte
        each from Python 2, up to two from Python 3) plus, with a wide margin, its labels, file names and framing.
        A larger member is refused before a byte of it is read."""
        return self.max_batch_images * (2 * self.values_per_image + 256) + (1 << 20)

    def label_set(self, label_mode: str) -> tuple[str, str]:
        """(label key in the batches, class-name key in the meta file) of the configured label set."""
        if len(self.label_sets) == 1:
            return next(iter(self.label_sets.values()))
        if label_mode not in self.label_sets:
            raise DatasetError(f"{self.name} has the label sets {', '.join(self.label_sets)}, not {label_mode!r}")
        return self.label_sets[label_mode]

    def check_validation_batches(self, validation_batches: list[str]) -> None:
        """With several training batches whole ones are held out for validation: they must be training batches and
        leave at least one to train on. (With one, the last ``validation_size`` images are.)"""
        if len(self.train_batches) == 1:
            return
        unknown = sorted(set(validation_batches) - set(self.train_batches))
        if unknown:
            raise DatasetError(f"validation_batches names {unknown}, which are not training batches of {self.name} "
                               f"({', '.join(self.train_batches)})")
        if set(validation_batches) == set(self.train_batches):
            raise DatasetError("validation_batches takes every training batch: nothing is left to train on")


CIFAR_IMAGES = "CIFAR images are small, centred photos of single objects collected from the web around 2008"

DATASETS = {
    "cifar10": DatasetSpec(
        name="cifar10",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
        folder="cifar-10-batches-py",
        train_batches=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_batches=("test_batch",),
        meta_file="batches.meta",
        max_batch_images=10000,
        label_sets={"labels": ("labels", "label_names")},
        title="CIFAR-10",
        about=CIFAR_IMAGES,
        test_images=10000,
    ),
    "cifar100": DatasetSpec(
        name="cifar100",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        md5="eb9058c3a382ffc7106e4002c42a8d85",
        folder="cifar-100-python",
        train_batches=("train",),
        test_batches=("test",),
        meta_file="meta",
        max_batch_images=50000,
        label_sets={"fine": ("fine_labels", "fine_label_names"), "coarse": ("coarse_labels", "coarse_label_names")},
        title="CIFAR-100",
        about=CIFAR_IMAGES,
        test_images=10000,
    ),
}


def described_dataset(name: str, description: dict) -> DatasetSpec:
    """A dataset described in the config (``datasets: {name: {...}}``), in the fields of ``DatasetSpec``."""
    fields = dict(description)
    for key in ("train_batches", "test_batches"):
        fields[key] = tuple(fields[key])
    fields["label_sets"] = {mode: (keys["labels"], keys["names"]) for mode, keys in fields["label_sets"].items()}
    return DatasetSpec(name=name, **fields)


def get_dataset(name: str, described: dict | None = None) -> DatasetSpec:
    """The dataset ``name``: one of ``DATASETS`` or of the config's ``datasets`` descriptions."""
    described = described or {}
    if name in described:
        return described_dataset(name, described[name])
    if name in DATASETS:
        return DATASETS[name]
    raise DatasetError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS) + sorted(described)} or describe it "
                       "under datasets in the config")


def dataset_of(config: dict) -> DatasetSpec:
    """The study's dataset (``dataset``), its validation batches checked."""
    spec = get_dataset(config["dataset"], config.get("datasets"))
    spec.check_validation_batches(config["validation_batches"])
    return spec
