"""The cost said before a run: the training split's size, a training's images and seconds from the measured
throughput, the pending (variant, seed) trainings, the one-line message, and that a real run prints it once."""

import copy

import pytest
import yaml

from conftest import REPO, archive_config, snakemake
from floats import EPS64
from cifarflow.config import deep_merge, variant_seeds, variant_settings
from cifarflow.costs import (
    LAPTOP_COMMAND, LAPTOP_STUDY_SECONDS, THROUGHPUT, Machine, cost_message, cpu_seconds, gpu_seconds,
    pending_trainings, throughput, training_images, training_split_size, wall_seconds,
)
from cifarflow.datasets import DATASETS
from cifarflow.fileio import save_json
from cifarflow.status import duration_text

STUDY = yaml.safe_load((REPO / "config.yaml").read_text())
LAPTOP = deep_merge(STUDY, yaml.safe_load((REPO / "configs/laptop.yaml").read_text()))
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
    assert training_images(LENET3, 40_000) == 35 * 40_000
    assert training_images({**LENET3, "max_train_images": 4000}, 40_000) == 35 * 4000
    assert training_images({**LENET3, "max_train_images": 90_000}, 40_000) == 35 * 40_000  # no more than the split


def test_seconds_from_the_measured_throughput():
    images = 35 * 40_000
    assert cpu_seconds(LENET3, 40_000, threads=2) == exact(images / THROUGHPUT["lenet3"].cpu)
    assert cpu_seconds(LENET3, 40_000, threads=1) == exact(2 * images / THROUGHPUT["lenet3"].cpu)
    assert gpu_seconds(LENET3, 40_000) == exact(images / THROUGHPUT["lenet3"].gpu)
    quick, fast94 = (variant_settings(STUDY, name) for name in ("quick", "fast94"))
    assert cpu_seconds(quick, 40_000, 2) == exact(5 * 40_000 / THROUGHPUT["whitened_cnn/stem_stride_2"].cpu)
    assert cpu_seconds(fast94, 40_000, 2) == exact(28 * 40_000 / THROUGHPUT["whitened_cnn"].cpu)
    unknown = {"arch": "new_net", "train": {"epochs": 1}}
    assert cpu_seconds(unknown, 9_000, 2) == exact(9_000 / min(t.cpu for t in THROUGHPUT.values()))


def test_wall_time_shares_the_work_out_but_waits_for_the_longest():
    assert wall_seconds([10.0] * 4, at_once=2) == 20.0
    assert wall_seconds([10.0, 10.0, 40.0], at_once=3) == 40.0
    assert wall_seconds([10.0, 20.0], at_once=0) == 30.0


def test_pending_trainings_are_every_variant_and_seed_without_a_training_json(tmp_path):
    config = copy.deepcopy(STUDY)
    config["seeds"] = [3, 1]
    config["variants"]["model1"]["seeds"] = [7]
    config["only_variants"] = ["model1", "model2"]
    assert variant_seeds(config) == {"model1": [7], "model2": [1, 3]}
    save_json(tmp_path / "results/variants/model2/seed-1/training.json", {"epochs": 35})
    save_json(tmp_path / "results/variants/model2/training.json", {"epochs": 35})  # not a seed's: no training of it
    assert pending_trainings(config, tmp_path) == ([("model1", 7), ("model2", 3)], 3)


def test_message_on_a_cpu_says_the_time_and_the_laptop_command(tmp_path):
    message = cost_message(one_variant_study(), CPU_ONLY, tmp_path)
    # 35 epochs of 40,000 images at 175 images/s on both cores (4 threads asked, 2 cores): 8,000 s
    assert message == ("cifarflow: 1 of 1 trainings to do, roughly 2.2 h on this machine's CPU (2 cores; no GPU found; "
                       "from measured throughput, ±50 %). For a CPU: snakemake --cores 4 --configfile configs/laptop.yaml "
                       "(about 23 min on 2 cores).")


def test_message_for_the_whole_study_on_a_cpu_and_on_a_gpu(tmp_path):
    on_cpu = cost_message(STUDY, CPU_ONLY, tmp_path)
    assert on_cpu.startswith("cifarflow: 36 of 36 trainings to do, roughly ") and LAPTOP_COMMAND in on_cpu
    hours = float(on_cpu.split("roughly ")[1].split(" h ")[0])
    assert 45 < hours < 120  # 3 seeds; the nine seed variants alone took 10-11 h per seed on a faster CPU, fast94 3.5 h more
    gpu = Machine(local=True, cores=16, gpus=1, shares_per_gpu=4, train_threads=4, train_gpus=1)
    on_gpu = cost_message(STUDY, gpu, tmp_path)
    assert "on this machine's 1 GPU(s) (4 trainings per GPU at once" in on_gpu and LAPTOP_COMMAND not in on_gpu
    cluster = Machine(local=False, cores=0, gpus=0, shares_per_gpu=4, train_threads=4, train_gpus=1)
    assert "of GPU time on the cluster (one GPU each" in cost_message(STUDY, cluster, tmp_path)


def test_the_laptop_study_itself_gets_no_laptop_hint(tmp_path):
    laptop = Machine(local=True, cores=2, gpus=0, shares_per_gpu=4, train_threads=1, train_gpus=1)
    message = cost_message(LAPTOP, laptop, tmp_path)
    assert message.startswith("cifarflow: 9 of 9 trainings to do") and LAPTOP_COMMAND not in message
    minutes = float(message.split("roughly ")[1].split(" min ")[0])
    assert minutes < LAPTOP_STUDY_SECONDS / 60  # its trainings took 3,788 s of job time, four at a time on 2 cores


def test_no_message_when_every_training_is_done(tmp_path):
    save_json(tmp_path / "results/variants/model3/seed-0/training.json", {"epochs": 35})
    assert cost_message(one_variant_study(), CPU_ONLY, tmp_path) is None


def test_a_run_says_the_cost_once_and_a_dry_run_does_not(tmp_path, cifar10_archive):
    target = ["--cores", "1", *archive_config(cifar10_archive), "--", "results/data/classes.json"]
    said = "trainings to do, roughly"
    dry = snakemake(tmp_path, "-n", *target)
    assert said not in dry.stdout + dry.stderr
    run = snakemake(tmp_path, *target)
    lines = [line for line in (run.stdout + run.stderr).splitlines() if said in line]
    assert len(lines) == 1 and lines[0].startswith("cifarflow: 3 of 3 trainings to do")
    assert "no GPU found" in lines[0]  # the tiny config lists no GPU devices

    save_json(tmp_path / "results/variants/small/seed-0/training.json", {"epochs": 2})
    (tmp_path / "results/data/classes.json").unlink()
    rerun = snakemake(tmp_path, *target)
    assert [line for line in (rerun.stdout + rerun.stderr).splitlines() if said in line][0].startswith(
        "cifarflow: 2 of 3 trainings to do")
    nothing = snakemake(tmp_path, *target)
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
def test_each_machine_gets_the_time_of_its_trainings(tmp_path, seeds, where, seconds, text):
    message = cost_message(study_of(seeds), where, tmp_path)
    assert message.startswith(f"cifarflow: {seeds} of {seeds} trainings to do, roughly {duration_text(seconds)} {text}")


def test_a_study_as_long_as_the_laptop_study_gets_no_hint(tmp_path):
    exactly = study_of(1, train={"epochs": 7}, max_train_images=LAPTOP_STUDY_SECONDS * 175 // 7)  # 1,380 s at 175/s
    assert LAPTOP_COMMAND not in cost_message(exactly, machine(), tmp_path)
    longer = study_of(1, train={"epochs": 8}, max_train_images=LAPTOP_STUDY_SECONDS * 175 // 7)
    assert LAPTOP_COMMAND in cost_message(longer, machine(), tmp_path)


def test_cifar100_trains_on_all_but_its_validation_images(tmp_path):
    config = study_of(1) | {"dataset": "cifar100", "validation_size": 10_000}
    message = cost_message(config, machine(train_threads=1), tmp_path)
    assert f"roughly {duration_text(35 * 40_000 / 87.5)} on" in message


def test_whitened_cnn_without_options_is_the_full_width_one():
    assert throughput({"arch": "whitened_cnn"}) == THROUGHPUT["whitened_cnn"]
    assert throughput({"arch": "whitened_cnn", "arch_options": {"width": 2}}) == THROUGHPUT["whitened_cnn"]
    assert wall_seconds([], 2) == 0.0
