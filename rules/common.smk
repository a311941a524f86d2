# The study as the config describes it: its variants and seeds, the wildcards, the input functions the rules share
# and the package modules each rule's script runs (its code inputs).
import os
import re
from pathlib import Path

import yaml

from cifarflow.codeinputs import package_modules
from cifarflow.config import TRAINING_RESULTS, all_variants, training_settings, variant_seeds
from cifarflow.data.datasets import dataset_of
from cifarflow.evaluate.tta import tta_settings
from cifarflow.migrate import old_trainings
from cifarflow.select.questions import check_questions
from cifarflow.train.architectures import check_architectures
from cifarflow.train.recipe import recipe_of

DATASET = dataset_of(config)
# config.yaml as shipped (the seed's study), whatever this run's config files change
SHIPPED_CONFIG = yaml.safe_load(Path(workflow.basedir, "config.yaml").read_text())
PACKAGE = os.path.relpath(os.path.join(workflow.basedir, "workflow", "cifarflow"))


VARIANTS = all_variants(config)
check_architectures(VARIANTS)
check_questions(config["questions"], config["variants"])
SEEDS = variant_seeds(config)
OLD_TRAININGS = old_trainings(".")
if OLD_TRAININGS:
    raise ValueError(
        f"this study was made before seeds ({', '.join(OLD_TRAININGS)} in results/variants/ without seed "
        "folders): run `cifarflow migrate-seeds` here once to keep those trainings (or `cifarflow migrate-seeds -n` to see "
        "what moves); snakemake would otherwise train them all again"
    )
# The training env: TensorFlow's CPU build, or its CUDA build for GPU nodes (train_env: gpu).
TRAIN_ENV = {"cpu": "../envs/train.yaml", "gpu": "../envs/train-gpu.yaml"}[config["train_env"]]


wildcard_constraints:
    variant="|".join(re.escape(name) for name in VARIANTS),
    seed=r"\d+",


def every_training(pattern):
    """``pattern`` for every (variant, seed) of the study."""
    pairs = [(variant, seed) for variant, seeds in SEEDS.items() for seed in seeds]
    return expand(pattern, zip, variant=[variant for variant, _ in pairs], seed=[seed for _, seed in pairs])


def seeds_of_variant(pattern):
    """An input function: ``pattern`` for every seed of the job's variant."""
    return lambda wildcards: expand(pattern, variant=wildcards.variant, seed=SEEDS[wildcards.variant])


def first_seed_of_variant(pattern):
    """An input function: ``pattern`` for the first seed of the job's variant."""
    return lambda wildcards: pattern.format(variant=wildcards.variant, seed=SEEDS[wildcards.variant][0])


def settings_of_training(wildcards):
    return training_settings(VARIANTS[wildcards.variant], wildcards.seed)


def script_code(script):
    """The package modules that workflow/scripts/<script>.py runs (found from its imports, directly or not), as
    inputs, so that editing any of them reruns the rule."""
    path = os.path.join(workflow.basedir, "workflow", "scripts", f"{script}.py")
    return [os.path.relpath(module) for module in package_modules(path, PACKAGE)]


def tta(variant):
    return tta_settings(recipe_of(VARIANTS[variant]).train)
