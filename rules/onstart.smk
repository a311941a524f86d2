# Before the first job of a run: the cost line (the trainings still to do and their rough time) and the run's
# config, kept for `cifarflow status`.
import os

import yaml
from snakemake.logging import logger

from cifarflow.backend import usable_threads, visible_gpus
from cifarflow.config import LAST_RUN_CONFIG
from cifarflow.costs import Machine, cost_message


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
