"""Training recipes for unit tests: a small fixed training, without regularization unless a test asks for it."""

from cifarflow.config import deep_merge
from cifarflow.train.recipe import Recipe, recipe_of

BASE = {"name": "unit", "arch": "lenet2", "weight_decay": 0.0, "dropout": False,
        "train": {"optimizer": "adam", "lr": 1e-3, "batch_size": 32, "epochs": 1, "seed": 0}}


def recipe(**settings) -> Recipe:
    """The recipe of ``settings`` (nested ones merged) on top of ``BASE``."""
    return recipe_of(deep_merge(BASE, settings))
