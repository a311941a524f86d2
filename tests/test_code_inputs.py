"""A stage reruns when any package module its script runs changes: rules list those modules as inputs, derived from
the scripts' imports, and editing one in a finished study plans exactly the stages that run it."""

import modulefinder
import os
from pathlib import Path

import yaml

from cifarflow.codeinputs import affects_results, package_modules
from conftest import (REPO, TINY_CONFIG, archive_config, dag_jobs, dry_run_of_repo, planned_jobs, snakemake,
                      workflow_rules)

SCRIPTS = REPO / "workflow" / "scripts"
PACKAGE = REPO / "workflow" / "cifarflow"


def rule_scripts() -> dict[str, str]:
    """rule name -> its script's file name, as Snakemake loads the rules."""
    return {name: rule["script"] for name, rule in workflow_rules().items() if rule["script"]}


def dotted(path: Path) -> str:
    """A package file's module name below the package: train/models.py -> "train.models", train/__init__.py -> "train"
    (the package's own __init__.py -> "")."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def reached_by_bytecode(script: Path) -> set[str]:
    """The package modules a script reaches, found by Python's own modulefinder (imports in the compiled code,
    followed through the package) — an implementation independent of the one the rules use. Modules that only
    watch a job (``AFFECTS_RESULTS = False``) are not followed."""
    watchers = [f"cifarflow.{dotted(path)}" for path in PACKAGE.rglob("*.py") if not affects_results(path)]
    finder = modulefinder.ModuleFinder(path=[str(SCRIPTS), str(REPO / "workflow")], excludes=watchers)
    finder.run_script(str(script))
    return {name.split(".", 1)[1] for name in finder.modules if name.startswith("cifarflow.")}


def test_every_rule_with_a_script_lists_every_package_module_the_script_reaches(tmp_path):
    # compare_with set, so that its rule is in the plan too (it reads the earlier study only when it runs)
    result = dry_run_of_repo(tmp_path, "--forceall", "--config", "archive=x.tar.gz", "archive_md5=" + "a" * 32,
                             "compare_with=earlier_study", configs=(TINY_CONFIG,))
    jobs = dag_jobs(result)
    scripts = rule_scripts()
    assert {job["rule"] for job in jobs if job["rule"] != "all"} == set(scripts)
    for job in jobs:
        if job["rule"] == "all":
            continue
        script = SCRIPTS / scripts[job["rule"]]
        inputs = [Path(os.path.normpath(tmp_path / name)) for name in job["input"]]  # relative to the run's folder
        listed = {dotted(path) for path in inputs if path.is_relative_to(PACKAGE)}
        reached = reached_by_bytecode(script)
        assert reached, f"{script.name} runs no package module?"
        assert reached <= listed, f"rule {job['rule']} misses {sorted(reached - listed)} among its inputs"
        assert listed - {""} <= reached, f"rule {job['rule']} lists {sorted(listed - reached)}, which it never runs"


def test_imports_are_followed_through_the_package(tmp_path):
    package = tmp_path / "cifarflow"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import thing\n")
    (package / "b.py").write_text("def thing():\n    from . import c\n    from .d import x\n")
    (package / "c.py").write_text("import numpy\n")
    (package / "d.py").write_text("x = 1\n")
    (package / "unused.py").write_text("")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "stage.py").write_text("from cifarflow.d import x\n")
    script = scripts / "script.py"
    script.write_text("import stage\nimport numpy\nfrom cifarflow.a import thing\n")
    found = [p.relative_to(tmp_path).as_posix() for p in package_modules(script, package)]
    assert found == ["cifarflow/__init__.py", "cifarflow/a.py", "cifarflow/b.py", "cifarflow/c.py", "cifarflow/d.py",
                     "scripts/stage.py"]


def planned_after_editing(study: Path, module: str, archive: Path) -> list[str]:
    path = study / "workflow" / "cifarflow" / module
    path.write_text(path.read_text() + "\n# edited\n")
    return planned_jobs(snakemake(study, "-n", *archive_config(archive)))


def test_editing_a_module_that_training_reaches_only_indirectly_retrains(own_tiny_study, cifar10_archive):
    jobs = planned_after_editing(own_tiny_study, "train/inputs_common.py", cifar10_archive)
    assert [job for job in jobs if job.startswith("train:")] == [
        "train:variant=small, seed=0", "train:variant=small_augmented, seed=0", "train:variant=small_augmented, seed=1"]


def test_editing_a_report_module_trains_and_evaluates_nothing(own_tiny_study, cifar10_archive):
    jobs = planned_after_editing(own_tiny_study, "report/figures/test.py", cifar10_archive)
    assert "plot_confusion_matrix" in jobs
    assert not [job for job in jobs if job.split(":")[0] in ("train", "validate", "select_best", "evaluate_test")]


def reversed_keys(value):
    if isinstance(value, dict):
        return {key: reversed_keys(value[key]) for key in reversed(list(value))}
    return value


def test_reordering_the_config_keys_reruns_nothing(own_tiny_study, cifar10_archive, tmp_path):
    reordered = tmp_path / "reordered.yaml"
    reordered.write_text(yaml.safe_dump(reversed_keys(yaml.safe_load(TINY_CONFIG.read_text())), sort_keys=False))
    assert reordered.read_text() != TINY_CONFIG.read_text()
    assert planned_jobs(snakemake(own_tiny_study, "-n", *archive_config(cifar10_archive), config=reordered)) == []
