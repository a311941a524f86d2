import os
import re
import sys

import yaml

from snakemake.logging import logger

sys.path.insert(0, os.path.join(workflow.basedir, "workflow"))
from cifarflow.architectures import check_architectures
from cifarflow.backend import usable_threads, visible_gpus
from cifarflow.codeinputs import package_modules
from cifarflow.config import LAST_RUN_CONFIG, TRAINING_RESULTS, all_variants, training_settings, variant_seeds
from cifarflow.costs import Machine, cost_message, study_cost_words
from cifarflow.tta import tta_settings
from cifarflow.datasets import dataset_of
from cifarflow.migrate import old_trainings
from cifarflow.questions import check_questions

DATASET = dataset_of(config)
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

# The report's categories, in the order the report lists them.
SUMMARY = "1. Summary"
DATA = "2. Data"
TRAINING = "3. Training"
ARCHITECTURES = "4. Architectures"
SELECTION = "5. Selection"
TEST = "6. Test"
BEYOND_ACCURACY = "7. Beyond accuracy"
PIPELINE = "8. Pipeline"
MODEL = "9. Model"


def figure(path, caption, label, category, subcategory=None):
    """A report output: captioned by workflow/report/<caption>.rst, listed under category (and subcategory) with the
    label {"figure": label}, preceded by {"variant": ...} where the path has a variant."""
    labels = {"variant": "{variant}"} if "{variant}" in path else {}
    labels["figure"] = label
    return report(
        path, caption=f"../workflow/report/{caption}.rst", category=category, subcategory=subcategory, labels=labels
    )


# Every output of the report rules, expanded over the variants; `rule all` requests them.
REPORT_TARGETS = []


def report_rule(name, input, output, params=None, plot=None, read=None, script_name=None):
    """Defines a report rule named `name`, which runs a script in the report env with the script's package modules as
    `code` inputs, logs to logs/<name>.log and benchmarks to benchmarks/<name>.tsv (a folder per variant where the
    outputs have one), and adds its outputs to REPORT_TARGETS.

    With `plot`, the script is the generic workflow/scripts/plot.py: it calls the function `plot` of
    workflow/cifarflow/figures.py with the inputs (read by file type; `read` names another reader of an input, see
    cifarflow/figureio.py) and the params, and writes what the function returns to the outputs. Without it, the
    script is workflow/scripts/<script_name, by default name>.py. A figure rule (its script is plot.py or plot_*.py)
    is a local rule: on a cluster it runs where Snakemake runs."""
    # not `script`: the rule's body calls Snakemake's script() by that name
    if plot:
        script_name, params = "plot", {**(params or {}), "plot": plot, "read": read or {}}
    script_name = script_name or name
    job = f"{name}/{{variant}}" if any("{variant}" in path for path in output.values()) else name
    rule:
        name:
            name
        # A figure takes seconds of matplotlib on small result files: on a cluster it is drawn where Snakemake runs
        # instead of waiting in the queue as a job of its own.
        localrule: script_name.startswith("plot")
        input:
            **input,
            code=script_code(script_name),
        output:
            **output,
        log:
            f"logs/{job}.log",
        benchmark:
            f"benchmarks/{job}.tsv"
        params:
            **(params or {}),
        conda:
            "../envs/report.yaml"
        script:
            f"../workflow/scripts/{script_name}.py"
    REPORT_TARGETS.extend(expand(str(path), variant=VARIANTS) for path in output.values())


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


def say_cost():
    """The trainings still to do and their rough time, once per run before any job starts (not with --touch, which
    trains nothing)."""
    if workflow.touch:
        return
    local = workflow.local_exec
    machine = Machine(
        local=local,
        cores=usable_threads(workflow.cores) if local else 0,
        gpus=len(visible_gpus(config["gpu"]["devices"])) if local else 0,
        shares_per_gpu=config["gpu"]["shares_per_gpu"],
        train_threads=config["train_threads"],
        train_gpus=config["train_gpus"],
    )
    # only the trainings this run's targets need
    pending = [(job.wildcards.variant, int(job.wildcards.seed)) for job in workflow.dag.needrun_jobs() if job.rule.name == "train"]
    message = cost_message(config, machine, pending)
    if message:  # none when every training is done: the cost is spent, Snakemake's job table says the rest
        logger.info(message)


def record_config():
    """The whole config of this run, for `cifarflow status` (which otherwise knows only config.yaml)."""
    os.makedirs(os.path.dirname(LAST_RUN_CONFIG), exist_ok=True)
    with open(LAST_RUN_CONFIG, "w") as out:
        yaml.safe_dump(config, out, sort_keys=False)


# Snakemake 9 runs onstart once, in the process that schedules the jobs and only when there are jobs: never on a
# dry run, --lint, --report or in the jobs it spawns (they get --no-hooks, SLURM jobs too).
onstart:
    say_cost()
    record_config()


def script_code(script):
    """The package modules that workflow/scripts/<script>.py runs (found from its imports, directly or not), as
    inputs, so that editing any of them reruns the rule."""
    path = os.path.join(workflow.basedir, "workflow", "scripts", f"{script}.py")
    return [os.path.relpath(module) for module in package_modules(path, PACKAGE)]


def archive_source():
    if not (config.get("archive") or DATASET.url):
        raise ValueError(f"dataset {DATASET.name} has no official download: set 'archive' and 'archive_sha256' (or 'archive_md5')")
    return config.get("archive") or DATASET.url


def archive_checksum():
    """(md5, sha256) of the archive to fetch; the official md5 unless another source is configured."""
    if not config.get("archive"):
        return DATASET.md5, None
    md5, sha256 = config.get("archive_md5"), config.get("archive_sha256")
    if not (md5 or sha256):
        raise ValueError(
            "config 'archive' is set, so 'archive_md5' or 'archive_sha256' must be set too "
            "(e.g. --config archive=PATH archive_sha256=HEX)"
        )
    return md5, sha256


def archive_path():
    """Archives are kept under their checksum, so each distinct archive is fetched once and never again."""
    md5, sha256 = archive_checksum()
    tag = f"sha256-{sha256[:16]}" if sha256 else f"md5-{md5[:16]}"
    return f"resources/{tag.lower()}/{DATASET.archive_name}"


def raw_batches():
    return [f"results/data/raw/{batch}.npz" for batch in DATASET.batches]


def tta(variant):
    return tta_settings(VARIANTS[variant]["train"])
