"""The cost said before a run: the training split's size, a training's images and seconds from the measured
throughput, the pending (variant, seed) trainings, the one-line message, and that a real run prints it once."""

import copy

import pytest
import yaml

from conftest import REPO, archive_config, snakemake
from floats import EPS64
from cifarflow.config import deep_merge, variant_seeds, variant_settings
from cifarflow.costs import (
    CPU_STUDY_COMMAND, CPU_STUDY_MEASURED, CPU_STUDY_SECONDS, THROUGHPUT, Machine, cost_message, cpu_seconds, gpu_seconds,
    study_cost_words, throughput, training_images, training_split_size, wall_seconds,
)
from cifarflow.data.datasets import DATASETS
from cifarflow.status import duration_text
from cifarflow.train.recipe import recipe_of
from recipes import recipe

STUDY = yaml.safe_load((REPO / "config.yaml").read_text())
CPU_STUDY = deep_merge(STUDY, yaml.safe_load((REPO / "configs/cpu.yaml").read_text()))
LENET3 = {"arch": "lenet3", "train": {"epochs": 35}}
CPU_ONLY = Machine(local=True, cores=2, gpus=0, shares_per_gpu=4, train_threads=4, train_gpus=1)


def exact(value):
    return pytest.approx(value, rel=4 * EPS64)


def one_variant_study(**variant) -> dict:
    config = copy.deepcopy(STUDY)
    config["variants"] = {"model3": {"arch": "lenet3", **variant}}
    config["seeds"] = [0]
    return config


def test_training_split_size_of_cifar10_and_cifar100():
    assert training_split_size(DATASETS["cifar10"], ["data_batch_1"], 5000) == 40_000
    assert training_split_size(DATASETS["cifar10"], ["data_batch_1", "data_batch_2"], 5000) == 30_000
    assert training_split_size(DATASETS["cifar100"], [], 5000) == 45_000


def test_training_images_are_epochs_times_the_images_used():
    assert training_images(recipe(**LENET3), 40_000) == 35 * 40_000
    assert training_images(recipe(**LENET3, max_train_images=4000), 40_000) == 35 * 4000
    assert training_images(recipe(**LENET3, max_train_images=90_000), 40_000) == 35 * 40_000  # no more than the split


def test_seconds_from_the_measured_throughput():
    images = 35 * 40_000
    assert cpu_seconds(recipe(**LENET3), 40_000, threads=2) == exact(images / THROUGHPUT["lenet3"].cpu)
    assert cpu_seconds(recipe(**LENET3), 40_000, threads=1) == exact(2 * images / THROUGHPUT["lenet3"].cpu)
    assert gpu_seconds(recipe(**LENET3), 40_000) == exact(images / THROUGHPUT["lenet3"].gpu)
    quick, fast94 = (recipe_of(variant_settings(STUDY, name)) for name in ("quick", "fast94"))
    assert cpu_seconds(quick, 40_000, 2) == exact(5 * 40_000 / THROUGHPUT["whitened_cnn/stem_stride_2"].cpu)
    assert cpu_seconds(fast94, 40_000, 2) == exact(28 * 40_000 / THROUGHPUT["whitened_cnn"].cpu)
    unknown = recipe(arch="new_net", train={"epochs": 1})
    assert cpu_seconds(unknown, 9_000, 2) == exact(9_000 / min(t.cpu for t in THROUGHPUT.values()))


def test_wall_time_shares_the_work_out_but_waits_for_the_longest():
    assert wall_seconds([10.0] * 4, at_once=2) == 20.0
    assert wall_seconds([10.0, 10.0, 40.0], at_once=3) == 40.0
    assert wall_seconds([10.0, 20.0], at_once=0) == 30.0


def every_training(config: dict) -> list[tuple[str, int]]:
    return [(name, seed) for name, seeds in variant_seeds(config).items() for seed in seeds]


def test_message_on_a_cpu_says_the_time_and_the_cpu_study_command():
    message = cost_message(one_variant_study(), CPU_ONLY, [("model3", 0)])
    # 35 epochs of 40,000 images at 175 images/s on both cores (4 threads asked, 2 cores): 8,000 s
    assert message == ("cifarflow: 1 of 1 trainings to do, roughly 2.2 h on this machine's CPU (2 cores; no GPU found; "
                       "from measured throughput, ±50 %). For a CPU, the seed's questions on networks that train in "
                       f"minutes: snakemake --cores 4 --configfile configs/cpu.yaml (measured: {CPU_STUDY_MEASURED}).")


def test_message_for_the_whole_study_on_a_cpu_and_on_a_gpu():
    on_cpu = cost_message(STUDY, CPU_ONLY, every_training(STUDY))
    assert on_cpu.startswith("cifarflow: 36 of 36 trainings to do, roughly ") and CPU_STUDY_COMMAND in on_cpu
    hours = float(on_cpu.split("roughly ")[1].split(" h ")[0])
    assert 45 < hours < 120  # 3 seeds; the nine seed variants alone took 10-11 h per seed on a faster CPU, fast94 3.5 h more
    gpu = Machine(local=True, cores=16, gpus=1, shares_per_gpu=4, train_threads=4, train_gpus=1)
    on_gpu = cost_message(STUDY, gpu, every_training(STUDY))
    assert "on this machine's 1 GPU(s) (4 trainings per GPU at once" in on_gpu and CPU_STUDY_COMMAND not in on_gpu
    cluster = Machine(local=False, cores=0, gpus=0, shares_per_gpu=4, train_threads=4, train_gpus=1)
    assert "of GPU time on the cluster (one GPU each" in cost_message(STUDY, cluster, every_training(STUDY))


def test_the_reports_words_on_the_seed_study_give_the_cost_lines_figures():
    """The notebook says what the seed's own study costs: the same figures as the cost line on a 2-core CPU and on
    one GPU running one training at a time."""
    on_cpu = cost_message(STUDY, CPU_ONLY, every_training(STUDY)).split("roughly ")[1].split(" on this")[0]
    one_gpu = Machine(local=True, cores=2, gpus=1, shares_per_gpu=1, train_threads=4, train_gpus=1)
    on_gpu = cost_message(STUDY, one_gpu, every_training(STUDY)).split("roughly ")[1].split(" on this")[0]
    assert study_cost_words(STUDY) == (f"36 trainings, roughly {on_cpu} on 2 CPU cores and {on_gpu} on one GPU, "
                                       "from measured throughput, ±50 %")
    assert study_cost_words(CPU_STUDY).startswith("8 trainings, roughly ")


def test_the_cpu_study_itself_gets_no_cpu_study_hint():
    laptop = Machine(local=True, cores=2, gpus=0, shares_per_gpu=4, train_threads=1, train_gpus=1)
    message = cost_message(CPU_STUDY, laptop, every_training(CPU_STUDY))
    assert message.startswith("cifarflow: 8 of 8 trainings to do") and CPU_STUDY_COMMAND not in message
    minutes = float(message.split("roughly ")[1].split(" min ")[0])
    assert minutes < CPU_STUDY_SECONDS / 60


def test_the_count_is_of_the_trainings_the_run_does_not_of_the_study():
    message = cost_message(STUDY, CPU_ONLY, [("model1", 0), ("model1", 1)])
    assert message.startswith("cifarflow: 2 of 36 trainings to do")
    assert cost_message(STUDY, CPU_ONLY, []) is None


def test_a_run_says_the_cost_of_the_trainings_its_targets_need(tmp_path, cifar10_archive):
    said = "trainings to do, roughly"
    data_only = ["--cores", "1", *archive_config(cifar10_archive), "--", "results/data/classes.json"]
    run = snakemake(tmp_path, *data_only)
    assert said not in run.stdout + run.stderr  # the data stages train nothing
    one_training = ["--cores", "1", *archive_config(cifar10_archive), "--", "results/variants/small/seed-0/training.json"]
    dry = snakemake(tmp_path, "-n", *one_training)
    assert said not in dry.stdout + dry.stderr
    run = snakemake(tmp_path, *one_training)
    lines = [line for line in (run.stdout + run.stderr).splitlines() if said in line]
    assert len(lines) == 1 and lines[0].startswith("cifarflow: 1 of 3 trainings to do")
    assert "no GPU found" in lines[0]  # the tiny config lists no GPU devices
    nothing = snakemake(tmp_path, *one_training)
    assert said not in nothing.stdout + nothing.stderr


def study_of(seeds: int, **variant) -> dict:
    config = one_variant_study(**variant)
    config["seeds"] = list(range(seeds))
    return config


def machine(**settings) -> Machine:
    return Machine(**{"local": True, "cores": 2, "gpus": 0, "shares_per_gpu": 1, "train_threads": 2, "train_gpus": 0} | settings)


LENET3_IMAGES = 35 * 40_000  # lenet3 trains 35 epochs of the 40,000 training images


@pytest.mark.parametrize("seeds, where, seconds, text", [
    (1, machine(local=False, train_threads=4), LENET3_IMAGES / 350, "of CPU time on the cluster (4 cores each;"),
    (2, machine(local=False, train_gpus=1), 2 * LENET3_IMAGES / 7000, "of GPU time on the cluster (one GPU each;"),
    # five trainings of 200 s, four at once on 2 GPUs: the work shared out
    (5, machine(gpus=2, shares_per_gpu=2), 5 * 200 / 4, "on this machine's 2 GPU(s) (2 trainings per GPU at once;"),
    # two trainings of 2 threads on 3 cores: one at a time
    (2, machine(cores=3), 2 * LENET3_IMAGES / 175, "on this machine's CPU (3 cores; no GPU found;"),
    (1, machine(cores=1, train_threads=1), LENET3_IMAGES / 87.5, "on this machine's CPU (1 core; no GPU found;"),
    (1, machine(train_threads=0), LENET3_IMAGES / 87.5, "on this machine's CPU (2 cores; no GPU found;"),  # 1 thread
])
def test_each_machine_gets_the_time_of_its_trainings(seeds, where, seconds, text):
    message = cost_message(study_of(seeds), where, every_training(study_of(seeds)))
    assert message.startswith(f"cifarflow: {seeds} of {seeds} trainings to do, roughly {duration_text(seconds)} {text}")


def test_trainings_as_long_as_the_cpu_study_threshold_get_no_hint():
    exactly = study_of(1, train={"epochs": 7}, max_train_images=CPU_STUDY_SECONDS * 175 // 7)  # the threshold at 175/s
    assert CPU_STUDY_COMMAND not in cost_message(exactly, machine(), every_training(exactly))
    longer = study_of(1, train={"epochs": 8}, max_train_images=CPU_STUDY_SECONDS * 175 // 7)
    assert CPU_STUDY_COMMAND in cost_message(longer, machine(), every_training(longer))


def test_cifar100_trains_on_all_but_its_validation_images():
    config = study_of(1) | {"dataset": "cifar100", "validation_size": 10_000}
    message = cost_message(config, machine(train_threads=1), every_training(config))
    assert f"roughly {duration_text(35 * 40_000 / 87.5)} on" in message


def test_whitened_cnn_without_options_is_the_full_width_one():
    assert throughput(recipe(arch="whitened_cnn")) == THROUGHPUT["whitened_cnn"]
    assert throughput(recipe(arch="whitened_cnn", arch_options={"width": 2})) == THROUGHPUT["whitened_cnn"]
    assert wall_seconds([], 2) == 0.0
