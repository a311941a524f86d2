"""A CIFAR-format dataset the pipeline has never seen, described in the config alone: other image size, classes,
batch, meta and label names. The whole tiny study (every target of `rule all`) runs on it."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from archives import cifar_format_members, write_tar
from cifarflow.data.datasets import DatasetError, get_dataset
from conftest import REPO, TINY_CONFIG, archive_config, copy_project, dry_run_of_repo, snakemake

SHAPES = ["circle", "square", "star", "cross"]
DESCRIPTION = {
    "folder": "shapes-24-py",
    "train_batches": ["part_a", "part_b", "part_c"],
    "test_batches": ["held_out"],
    "meta_file": "shapes.meta",
    "label_sets": {"shape": {"labels": "shape_ids", "names": "shape_names"}},
    "max_batch_images": 1000,
    "image_size": 24,
}


def shapes_config(tmp_path, **changes):
    """The tiny study's config on the made-up dataset, written to a file."""
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config |= {"dataset": "shapes24", "datasets": {"shapes24": DESCRIPTION}, "validation_batches": ["part_a"]} | changes
    config["variants"]["small_augmented"]["seeds"] = [0]  # a training per variant is enough here
    path = tmp_path / "shapes.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def shapes_archive(tmp_path_factory):
    members = cifar_format_members(DESCRIPTION["folder"], {"part_a": 40, "part_b": 40, "part_c": 40, "held_out": 40},
                                   "shapes.meta", "shape_ids", "shape_names", SHAPES, size=24)
    return write_tar(tmp_path_factory.mktemp("shapes") / "shapes-24.tar.gz", members)


def test_the_described_dataset_is_the_spec_every_stage_reads():
    spec = get_dataset("shapes24", {"shapes24": DESCRIPTION})
    assert spec.image_shape == (24, 24, 3) and spec.batches == ("part_a", "part_b", "part_c", "held_out")
    assert spec.label_set("fine") == ("shape_ids", "shape_names")  # one label set: whatever cifar100_labels says
    assert spec.max_member_bytes == 1000 * (2 * 24 * 24 * 3 + 256) + (1 << 20)
    with pytest.raises(DatasetError, match=r"not training batches of shapes24 \(part_a, part_b, part_c\)"):
        spec.check_validation_batches(["data_batch_1"])


def test_the_schema_accepts_the_description_and_refuses_a_typo(tmp_path):
    schema = str(REPO / "workflow/schemas/config.schema.yaml")
    config = yaml.safe_load(shapes_config(tmp_path).read_text())
    validate(config, schema)
    config["datasets"]["shapes24"]["image_sise"] = 24
    with pytest.raises(WorkflowError, match="'image_sise' was unexpected"):
        validate(config, schema)


def test_cifar10_batch_names_on_another_dataset_are_refused_before_any_job_runs(tmp_path, shapes_archive):
    result = dry_run_of_repo(tmp_path, *archive_config(shapes_archive),
                             configs=(shapes_config(tmp_path, validation_batches=["data_batch_1"]),), check=False)
    assert result.returncode != 0 and "rule " not in result.stdout
    message = "validation_batches names ['data_batch_1'], which are not training batches of shapes24"
    assert message in result.stdout + result.stderr


def test_the_whole_study_runs_on_a_dataset_described_in_the_config(tmp_path, shapes_archive):
    study = copy_project(tmp_path / "study")
    snakemake(study, "--cores", "2", *archive_config(shapes_archive), config=shapes_config(tmp_path), timeout=2400)
    assert json.loads((study / "results/data/classes.json").read_text()) == SHAPES
    with np.load(study / "results/data/train.npz") as train:
        assert train["images"].shape == (80, 24, 24, 3)  # part_b and part_c; part_a is the validation split
    with np.load(study / "results/robustness/corrupted/fog.npz") as fog:
        assert fog["images"].shape == (5, 40, 24, 24, 3)
    metadata = json.loads((study / "results/export/metadata.json").read_text())
    assert metadata["input"]["shape"] == [None, 24, 24, 3] and metadata["classes"] == SHAPES
    assert "**24×24 pixels**" in (study / "results/export/model_card.md").read_text()
    predictions = pd.read_csv(study / "results/test/predictions.csv")
    assert len(predictions) == 40 and set(predictions["true"]) == set(SHAPES)
    training = json.loads((study / "results/variants/small/seed-0/training.json").read_text())
    assert training["parameters"] == 2_233_898 - 512 * 64 * (8 * 8 - 6 * 6) - 6 * 513  # lenet2 on 24x24, 4 classes
