"""cifarflow: the logic behind the CIFAR CNN study workflow (data, models, training, evaluation, figures)."""

__version__ = "0.1.0"
