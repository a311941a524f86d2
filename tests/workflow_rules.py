"""Prints the rules of the repository's workflow as Snakemake itself loads them (rules made by a helper or a loop
included), as JSON {rule: {"script": file name or null, "output": [its output patterns]}}. Run by conftest's
workflow_rules() in a process of its own, since loading a workflow changes the working directory."""

import json
import sys
from pathlib import Path

from snakemake.api import SnakemakeApi
from snakemake.settings.types import (
    ConfigSettings,
    DeploymentSettings,
    OutputSettings,
    Quietness,
    ResourceSettings,
    StorageSettings,
    WorkflowSettings,
)

REPO = Path(__file__).resolve().parents[1]


def main(workdir: str, *configfiles: str) -> None:
    config = {"archive": "x.tar.gz", "archive_md5": "a" * 32}
    with SnakemakeApi(OutputSettings(quiet={Quietness.ALL})) as api:
        workflow_api = api.workflow(
            snakefile=REPO / "Snakefile",
            workdir=Path(workdir),
            config_settings=ConfigSettings(configfiles=[Path(name) for name in configfiles], config=config),
            resource_settings=ResourceSettings(),
            storage_settings=StorageSettings(),
            workflow_settings=WorkflowSettings(),
            deployment_settings=DeploymentSettings(),
        )
        rules = {
            rule.name: {
                "script": Path(rule.script).name if rule.script else None,
                "output": [str(path) for path in rule.output],
            }
            for rule in workflow_api._workflow.rules  # the loaded workflow: the API offers no public view of its rules
        }
    print(json.dumps(rules))


if __name__ == "__main__":
    main(*sys.argv[1:])
