"""What a study's pending trainings will cost, said once before a run spends it: how many trainings are still to do
and a rough time for them on this machine, from each architecture's measured throughput.

A training is pending while its ``results/variants/{variant}/seed-{seed}/training.json`` does not exist. The figure
is rough (±50 %): the throughput depends on the CPU's features, on the widths an architecture is built with, on
what else runs, and the per-epoch validation is left out.
"""

from dataclasses import dataclass

from .config import all_variants, variant_seeds
from .data.datasets import DatasetSpec, dataset_of
from .status import duration_text
from .train.recipe import Recipe, recipe_of


@dataclass(frozen=True)
class Throughput:
    """Training images per second of one training: on the 2-core CPU with both cores, and on one GPU."""

    cpu: float
    gpu: float


# Measured through the pipeline's training code (docs/measurements.md). CPU: a 2-core AMD EPYC with AVX2 + FMA and no
# AVX-512 (the slowest CPU measured), float32, 2 threads. GPU: one NVIDIA H200.
THROUGHPUT = {
    # model 3: 147-200 images/s at 2 threads (the laptop study's benchmark); H200: 7,000 each, nine variants side by side
    "lenet3": Throughput(cpu=175, gpu=7_000),
    # models 1 and 2: 1.5x model 3 at one thread in the laptop study (140-150 against 90-95); H200: the nine side by side
    "lenet2": Throughput(cpu=270, gpu=7_000),
    # fast: 8 epochs of 40,000 images in 941.9 s (339 images/s); H200: in 14 s
    "resnet_fast": Throughput(cpu=339, gpu=22_900),
    # fast94 (64-256-256 on 31x31 maps): 90 images/s in float32; H200 not measured, taken as resnet_fast's
    "whitened_cnn": Throughput(cpu=90, gpu=22_900),
    # quick (48-96-96 on 16x16 maps): 1,287 images/s on an idle machine; H200 not measured, taken as resnet_fast's
    "whitened_cnn/stem_stride_2": Throughput(cpu=1_287, gpu=22_900),
}
MEASURED_CORES = 2  # the CPU figures used both cores of the 2-core machine
UNMEASURED = min(THROUGHPUT.values(), key=lambda throughput: throughput.cpu)  # a new architecture: the slowest figure
ROUGHLY = "from measured throughput, ±50 %"
# Shown on a machine without a GPU when the trainings would take longer than this measured study (README, "The CPU study").
CPU_STUDY_COMMAND = "snakemake --cores 4 --configfile configs/cpu.yaml"
CPU_STUDY_SECONDS = 25 * 60  # the hint's threshold: the CPU study's own trainings are estimated at about 21 min
CPU_STUDY_MEASURED = "11 min end to end on 2 AVX-512 cores, 14 min with AVX2 kernels"  # docs/measurements.md


def training_split_size(spec: DatasetSpec, validation_batches: list[str], validation_size: int) -> int:
    """Images in the training split (at most; a described dataset's batches may hold fewer): the training batches
    not held out for validation, or of a single training batch all but the last ``validation_size``."""
    if len(spec.train_batches) == 1:
        return spec.max_batch_images - validation_size
    return len(set(spec.train_batches) - set(validation_batches)) * spec.max_batch_images


def training_images(recipe: Recipe, split_size: int) -> int:
    """Images a training sees: its epochs of its first ``max_train_images`` training images (all when unset)."""
    return recipe.train.epochs * min(recipe.max_train_images or split_size, split_size)


def throughput(recipe: Recipe) -> Throughput:
    arch = recipe.arch
    if arch == "whitened_cnn" and recipe.arch_options.get("stem_stride") == 2:
        arch = "whitened_cnn/stem_stride_2"  # a quarter of the feature map: several times faster
    return THROUGHPUT.get(arch, UNMEASURED)


def cpu_seconds(recipe: Recipe, split_size: int, threads: int) -> float:
    """A training's time on ``threads`` CPU cores: the throughput scales with the cores (two one-thread trainings on
    2 cores ran as fast as one two-thread training, docs/measurements.md)."""
    return training_images(recipe, split_size) / (throughput(recipe).cpu * threads / MEASURED_CORES)


def gpu_seconds(recipe: Recipe, split_size: int) -> float:
    return training_images(recipe, split_size) / throughput(recipe).gpu


def wall_seconds(durations: list[float], at_once: int) -> float:
    """Trainings of these durations, ``at_once`` at a time: the work shared out, but never less than the longest."""
    return max(sum(durations) / max(1, at_once), max(durations, default=0.0))


def local_cpu_seconds(recipes: list[Recipe], split_size: int, cores: int, train_threads: int) -> float:
    """These trainings on a machine's ``cores`` CPU cores, as many side by side as ``train_threads`` allows."""
    threads = max(1, min(train_threads, cores))
    return wall_seconds([cpu_seconds(each, split_size, threads) for each in recipes], cores // threads)


def recipes_of(config: dict, trainings: list[tuple[str, int]]) -> tuple[list[Recipe], int]:
    """The recipes of these (variant, seed) trainings of the study, and the images its training split holds."""
    split_size = training_split_size(dataset_of(config), config["validation_batches"], config.get("validation_size", 0))
    variants = all_variants(config)
    return [recipe_of(variants[name]) for name, _ in trainings], split_size


def study_cost_words(config: dict) -> str:
    """A whole study's trainings and their rough time on the measured 2-core CPU and on one GPU, in words."""
    recipes, split_size = recipes_of(config, [(name, seed) for name, seeds in variant_seeds(config).items() for seed in seeds])
    cpu = local_cpu_seconds(recipes, split_size, MEASURED_CORES, config["train_threads"])
    gpu = sum(gpu_seconds(each, split_size) for each in recipes)
    return (f"{len(recipes)} trainings, roughly {duration_text(cpu)} on {MEASURED_CORES} CPU cores and "
            f"{duration_text(gpu)} on one GPU, {ROUGHLY}")


@dataclass
class Machine:
    """Where the trainings run: ``local`` (this machine, ``cores`` for Snakemake, ``gpus`` found) or a cluster."""

    local: bool
    cores: int
    gpus: int
    shares_per_gpu: int
    train_threads: int
    train_gpus: int  # what a cluster job asks for


def cost_message(config: dict, machine: Machine, pending: list[tuple[str, int]]) -> str | None:
    """One line: the ``pending`` (variant, seed) trainings, those this run will do, and their rough time where they
    will run; on a machine without a GPU, for trainings longer than the CPU study, the CPU study's command too. None
    when the run trains nothing."""
    total = sum(len(seeds) for seeds in variant_seeds(config).values())
    if not pending:
        return None
    recipes, split_size = recipes_of(config, pending)
    todo = f"cifarflow: {len(pending)} of {total} trainings to do, roughly"
    if not machine.local:
        if machine.train_gpus:
            seconds = sum(gpu_seconds(each, split_size) for each in recipes)
            return f"{todo} {duration_text(seconds)} of GPU time on the cluster (one GPU each; {ROUGHLY})."
        seconds = sum(cpu_seconds(each, split_size, machine.train_threads) for each in recipes)
        return f"{todo} {duration_text(seconds)} of CPU time on the cluster ({machine.train_threads} cores each; {ROUGHLY})."
    if machine.gpus:
        at_once = machine.gpus * machine.shares_per_gpu
        seconds = wall_seconds([gpu_seconds(each, split_size) for each in recipes], at_once)
        return (f"{todo} {duration_text(seconds)} on this machine's {machine.gpus} GPU(s) "
                f"({machine.shares_per_gpu} trainings per GPU at once; {ROUGHLY}).")
    seconds = local_cpu_seconds(recipes, split_size, machine.cores, machine.train_threads)
    cores = f"{machine.cores} core{'s' if machine.cores != 1 else ''}"
    message = f"{todo} {duration_text(seconds)} on this machine's CPU ({cores}; no GPU found; {ROUGHLY})."
    if seconds > CPU_STUDY_SECONDS:
        message += (f" For a CPU, the seed's questions on networks that train in minutes: {CPU_STUDY_COMMAND} "
                    f"(measured: {CPU_STUDY_MEASURED}).")
    return message
