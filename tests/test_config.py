"""The config schema: the shipped configs pass, typos in a variant are refused, and it knows every option."""

import copy
import inspect
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from cifarflow.config import deep_merge
from cifarflow.models import ARCHITECTURES

REPO = Path(__file__).resolve().parents[1]
SCHEMA = str(REPO / "workflow/schemas/config.schema.yaml")
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.mark.parametrize("path", ["config.yaml", "configs/laptop.yaml", "configs/tiny.yaml"])
def test_shipped_configs_are_valid(path):
    config = deep_merge(CONFIG, yaml.safe_load((REPO / path).read_text()))  # as --configfile updates config.yaml
    validate(config, SCHEMA)


@pytest.mark.parametrize("section,typo", [("arch_options", "widht"), ("train", "label_smothing"),
                                          ("augment", "flp")])
def test_typo_in_a_variant_is_refused(section, typo):
    config = copy.deepcopy(CONFIG)
    config["variants"]["fast94"].setdefault(section, {})[typo] = 1
    with pytest.raises(WorkflowError, match=f"'{typo}' was unexpected"):
        validate(config, SCHEMA)


def test_schema_names_exactly_the_architectures_options():
    schema = yaml.safe_load(Path(SCHEMA).read_text())
    variant = schema["definitions"]["variant_settings"]["properties"]
    assert set(variant["arch"]["enum"]) == set(ARCHITECTURES)
    set_by_the_study = {"num_classes", "weight_decay", "conv_dropout", "dense_dropout", "_"}
    options = {name for build in ARCHITECTURES.values() for name in inspect.signature(build).parameters}
    assert set(variant["arch_options"]["properties"]) == options - set_by_the_study


def test_schema_names_exactly_the_corruptions():
    from cifarflow.corruptions import CORRUPTIONS

    schema = yaml.safe_load(Path(SCHEMA).read_text())
    names = schema["properties"]["corruptions"]["items"]["enum"]
    assert names == list(CORRUPTIONS) == CONFIG["corruptions"]
    config = copy.deepcopy(CONFIG)
    config["corruptions"] = ["frost"]
    with pytest.raises(WorkflowError, match="'frost' is not one of"):
        validate(config, SCHEMA)


def test_warmup_given_twice_is_refused():
    config = copy.deepcopy(CONFIG)
    config["variants"]["fast94"]["train"] |= {"warmup_epochs": 4, "warmup_fraction": 0.2}
    with pytest.raises(WorkflowError, match="should not be valid"):
        validate(config, SCHEMA)


def test_a_budget_scales_every_variant_but_the_exempt_ones():
    from cifarflow.config import all_variants

    config = deep_merge(CONFIG, {"budget_epochs": 3, "budget_train_images": 500, "budget_exempt": ["quick"]})
    variants = all_variants(config)
    assert variants["model3"]["train"]["epochs"] == 3 and variants["model3"]["max_train_images"] == 500
    assert variants["quick"]["train"]["epochs"] == CONFIG["variants"]["quick"]["train"]["epochs"]
    assert "max_train_images" not in variants["quick"]
    with pytest.raises(ValueError, match=r"budget_exempt names \['quik'\]"):
        all_variants(deep_merge(CONFIG, {"budget_exempt": ["quik"]}))
