# cifarflow: the CIFAR CNN study as a workflow (download -> splits -> train each variant -> validate -> calibrate ->
# select the best -> test-evaluate -> robustness on corrupted test images -> report).
# Run: snakemake --cores 4; then snakemake --report report.html
import os
import sys
from pathlib import Path

import yaml
from snakemake.utils import min_version, validate

min_version("9.0")
sys.path.insert(0, os.path.join(workflow.basedir, "workflow"))
from cifarflow.config import command_line_booleans


configfile: "config.yaml"


SCHEMA = os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml")
command_line_booleans(config, yaml.safe_load(Path(SCHEMA).read_text()))  # --config tracking=false, not only tracking=False
validate(config, SCHEMA)


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/report_outputs.smk"
include: "rules/onstart.smk"
include: "rules/archive.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/select.smk"
include: "rules/test.smk"
include: "rules/export.smk"
include: "rules/report.smk"
include: "rules/track.smk"


rule all:
    input:
        rules.evaluate_test.output,
        rules.evaluate_robustness.output,
        rules.export_model.output,
        rules.model_card.output,
        REPORT_TARGETS,
        TRACKING_TARGETS,
    default_target: True
