"""One training's recipe: every setting it trains with, resolved once from its validated settings (``config.yaml``'s
``defaults``, the variant's own values, the study's budget and the seed). A setting the config leaves out takes the
default written here, and nowhere else; ``training.json`` records the whole recipe."""

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DropoutRates:
    conv: float = 0.25  # after each conv block
    dense: float = 0.4  # before the classifier


@dataclass(frozen=True)
class Augment:
    shift: float = 0  # a fraction of the image (< 1) or whole pixels
    flip: bool = False
    fill: str = "nearest"  # how a shift fills the border: nearest (edge pixels repeated) or reflect


@dataclass(frozen=True)
class Train:
    optimizer: str  # adam, sgd or rmsprop
    lr: float  # the (peak) learning rate
    batch_size: int
    epochs: int
    seed: int
    momentum: float = 0.9  # sgd
    nesterov: bool = True  # sgd
    bias_lr_scale: float = 1.0  # sgd: batch-norm shifts learn this many times faster
    schedule: str = "constant"  # constant, cosine or triangular
    warmup_epochs: float = 0
    warmup_fraction: float | None = None  # of all steps, instead of warmup_epochs
    initial_lr_fraction: float | None = None  # where the warm-up starts; None: 0.2 (triangular), 0.1 (cosine)
    final_lr_fraction: float = 0.0
    label_smoothing: float = 0.0
    ema: float | None = None  # momentum of a moving average of the weights
    flip_tta: bool = False
    translate_tta: int = 0
    batchnorm_recalibration: int = 0  # training images the batch-norm statistics are recomputed on after training
    mixed_precision: bool = False

    def __post_init__(self):
        if self.initial_lr_fraction is None:
            object.__setattr__(self, "initial_lr_fraction", 0.2 if self.schedule == "triangular" else 0.1)


@dataclass(frozen=True)
class Recipe:
    name: str
    arch: str
    weight_decay: float
    dropout: bool
    train: Train
    arch_options: dict = field(default_factory=dict)
    dropout_rates: DropoutRates = DropoutRates()
    augment: Augment = Augment()
    deterministic: bool = True
    max_train_images: int | None = None  # None: all
    epoch_validation_images: int | None = None  # None: all


def recipe_of(settings: dict) -> Recipe:
    """The recipe of one training's settings (``config.training_settings``), as the schema validated them."""
    nested = {"train": Train, "dropout_rates": DropoutRates, "augment": Augment}
    return Recipe(**{key: nested[key](**value) if key in nested else value for key, value in settings.items()})


def recipe_record(recipe: Recipe) -> dict:
    """The recipe as ``training.json`` records it (plain JSON values)."""
    return dataclasses.asdict(recipe)
