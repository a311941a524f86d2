"""The config schema: the shipped configs pass, typos in a variant are refused; architectures and their options are
checked against the code before any job runs."""

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from cifarflow.train.architectures import ARCHITECTURES, check_architectures
from cifarflow.config import all_variants, command_line_booleans, deep_merge
from cifarflow.errors import UserError
from conftest import dry_run_of_repo
from recipes import BASE

REPO = Path(__file__).resolve().parents[1]
SCHEMA = str(REPO / "workflow/schemas/config.schema.yaml")
CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())


@pytest.mark.parametrize("path", ["config.yaml", "configs/laptop.yaml", "configs/tiny.yaml"])
def test_shipped_configs_are_valid(path):
    config = deep_merge(CONFIG, yaml.safe_load((REPO / path).read_text()))  # as --configfile updates config.yaml
    validate(config, SCHEMA)


def test_the_command_lines_true_and_false_are_booleans_where_the_schema_says_boolean():
    """`--config tracking=false` gives the string "false" (Snakemake reads only True/False): it is the boolean where the
    schema declares one (through $ref, allOf and additionalProperties), and left alone elsewhere."""
    given = {"tracking": "false", "temperature_scaling": "Yes", "report": {"notebook_code": "OFF"},
             "variants": {"v": {"augment": {"flip": "true"}, "dropout": "no", "arch": "false"}},
             "compare_with": "false", "dataset": "on"}
    config = deep_merge(CONFIG, copy.deepcopy(given))
    command_line_booleans(config, yaml.safe_load(Path(SCHEMA).read_text()))
    assert config["tracking"] is False and config["temperature_scaling"] is True
    assert config["report"]["notebook_code"] is False
    assert config["variants"]["v"]["augment"]["flip"] is True and config["variants"]["v"]["dropout"] is False
    assert config["variants"]["v"]["arch"] == "false" and config["compare_with"] == "false" and config["dataset"] == "on"
    unknown = {"tracking": "maybe"}
    command_line_booleans(unknown, yaml.safe_load(Path(SCHEMA).read_text()))
    assert unknown == {"tracking": "maybe"}  # the schema refuses it, with its own message


@pytest.mark.parametrize("section,typo", [("train", "label_smothing"), ("augment", "flp")])
def test_typo_in_a_variant_is_refused(section, typo):
    config = copy.deepcopy(CONFIG)
    config["variants"]["fast94"].setdefault(section, {})[typo] = 1
    with pytest.raises(WorkflowError, match=f"'{typo}' was unexpected"):
        validate(config, SCHEMA)


@pytest.mark.parametrize("variant,message", [
    ({"arch": "lenet9"}, "v: unknown architecture 'lenet9'; choose one of " + str(sorted(ARCHITECTURES))),
    ({"arch": "whitened_cnn", "arch_options": {"widht": 1}}, "v: architecture whitened_cnn takes no option 'widht'"),
    ({"arch": "lenet3", "arch_options": {"widths": [8]}}, "v: architecture lenet3 takes no option 'widths' (arch_options); "
                                                          "its options are none"),
])
def test_architectures_and_their_options_are_checked_against_the_code(variant, message):
    with pytest.raises(UserError) as refused:
        check_architectures({"v": deep_merge(BASE, variant | {"name": "v"})})
    assert str(refused.value).startswith(message)
    check_architectures(all_variants(CONFIG))  # the shipped study passes


def test_an_option_of_another_architecture_is_refused_before_any_job_runs(tmp_path):
    """``patch`` is an option of whitened_cnn, so the schema lets it through; resnet_fast has none such."""
    config = copy.deepcopy(CONFIG)
    config["variants"]["fast"]["arch_options"]["patch"] = 2
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = dry_run_of_repo(tmp_path, configs=(tmp_path / "config.yaml",), check=False)
    assert result.returncode != 0
    assert "fast: architecture resnet_fast takes no option 'patch' (arch_options)" in result.stdout + result.stderr
    assert "rule " not in result.stdout  # no job was planned


def test_schema_names_exactly_the_corruptions():
    from cifarflow.evaluate.corruptions import CORRUPTIONS

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
