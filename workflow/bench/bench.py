"""Benchmark variants side by side in one run: throughput, time to a target accuracy, final accuracy, peak memory.

    python workflow/bench/bench.py --data results/data --variants fast model3 [--epochs N] [--target 0.94]
    python workflow/bench/bench.py --data results/data --variants model3 --bare-fit 2   # pipeline vs bare model.fit
    python workflow/bench/bench.py --data results/data --variants fast94 --input-only    # the input pipeline alone

Each variant trains in its own subprocess (fresh TensorFlow state, its own peak memory). Prints a table and,
with --json, writes every figure to a file. This is a measurement script, not a test.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from cifarflow.config import deep_merge, variant_settings
from cifarflow.train.recipe import Recipe, recipe_of


def machine() -> dict:
    from cifarflow.backend import cpu_description

    cpu = cpu_description()
    gpu = None
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        pass
    return {"cpu": cpu["model"], "cpu_isa": cpu["isa"], "kernel_cap": cpu["kernel_cap"], "cores": os.cpu_count(),
            "gpu": gpu, "platform": platform.platform(), "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow")}


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class TargetWatch:
    """Follows a training like ``live.LiveView``: after every epoch it scores the validation split with the variant's
    test-time augmentation and, at the end of the first epoch whose score reaches ``target``, the test split: the
    time-to-accuracy of the seed's protocol (select on validation, then read the test split). Its evaluation time
    is not training time: the checkpointing callback has already measured the epoch."""

    def __init__(self, val: tuple, test: tuple, tta: dict, target: float):
        self.val, self.test, self.tta, self.target = val, test, tta, target
        self.curve: list[float] = []
        self.reached: dict | None = None

    def score(self, model, split: tuple) -> tuple[float, float]:
        from cifarflow.evaluate.evaluation import accuracy_and_log_loss, predict_probabilities

        images, labels = split
        return accuracy_and_log_loss(labels, predict_probabilities(model, images, self.tta))

    def follow(self, history: list[dict], epochs_done: int, total_epochs: int) -> list:
        import keras

        watch = self

        class Watch(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                val_accuracy, _ = watch.score(self.model, watch.val)
                watch.curve.append(round(val_accuracy, 4))
                if watch.reached is None and val_accuracy >= watch.target:
                    test_accuracy, test_log_loss = watch.score(self.model, watch.test)
                    watch.reached = {"epoch": epoch + 1, "seconds": sum(r["train_seconds"] for r in history),
                                     "val_accuracy": val_accuracy, "test_accuracy": test_accuracy,
                                     "test_log_loss": test_log_loss}

        return [Watch()]


def run_variant(recipe: Recipe, data: Path, threads: int, target: float) -> dict:
    """Train one variant through the pipeline's own training code and score it on validation and test, at the end
    and at the first epoch whose validation accuracy reaches ``target``."""
    from cifarflow.backend import configure_training
    from cifarflow.fileio import load_json, load_split
    from cifarflow.train.training import train_variant
    from cifarflow.evaluate.tta import tta_settings

    classes = load_json(data / "classes.json")
    val, test = load_split(data / "val.npz"), load_split(data / "test.npz")
    watch = TargetWatch(val, test, tta_settings(recipe.train), target)
    with tempfile.TemporaryDirectory() as checkpoints:
        model, history, summary, _ = train_variant(recipe, load_split(data / "train.npz"), val, len(classes),
                                                   load_json(data / "normalization.json"), Path(checkpoints), threads,
                                                   live=watch, device=configure_training(recipe, threads))
    result = {"variant": recipe.name, "images_per_second": summary["images_per_second"],
              "training_seconds": sum(r["train_seconds"] for r in history), "epochs": len(history),
              "train_images": summary["train_images"], "target": target, "at_target": watch.reached,
              "device": summary["device"], "threads": threads}
    for name, split in (("val", val), ("test", test)):
        result[f"{name}_accuracy"], result[f"{name}_log_loss"] = watch.score(model, split)
    result["accuracy_curve"] = watch.curve
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def training_arrays(recipe: Recipe, data: Path):
    """The training images and labels a variant sees (its ``max_train_images`` first ones), and the class names."""
    from cifarflow.fileio import load_json, load_split

    images, labels = load_split(data / "train.npz")
    limit = recipe.max_train_images or len(labels)
    return images[:limit], labels[:limit], load_json(data / "classes.json")


def run_bare_fit(recipe: Recipe, data: Path, threads: int, epochs: int) -> dict:
    """The same model trained by a bare ``model.fit`` on in-memory arrays: the reference for input overhead."""
    import keras
    import numpy as np

    from cifarflow.train.inputs_common import full_batches
    from cifarflow.fileio import load_json
    from cifarflow.backend import configure_training
    from cifarflow.train.training import compile_model, new_model

    configure_training(recipe, threads)
    images, labels, classes = training_arrays(recipe, data)
    model = new_model(recipe, images, len(classes), load_json(data / "normalization.json"))
    batch, steps = full_batches(len(labels), recipe.train.batch_size)
    images, labels = images[:batch * steps], labels[:batch * steps]  # the pipeline's workload: full batches only
    compile_model(model, recipe.train, steps)
    onehot = np.eye(len(classes), dtype=np.float32)[labels]
    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.monotonic() - self.started)

    model.fit(images, onehot, batch_size=batch, epochs=epochs, shuffle=True, verbose=2, callbacks=[Timer()])
    return {"variant": recipe.name + " (bare model.fit)", "images_per_second": len(labels) * len(times) / sum(times),
            "training_seconds": sum(times), "epochs": epochs, "train_images": len(labels), "peak_rss_mb": peak_rss_mb()}


def run_input_only(recipe: Recipe, data: Path, threads: int, epochs: int = 2) -> dict:
    """The training input stream alone (shuffle, gather, augmentation, batching): images/s it can deliver."""
    from cifarflow.train.inputs import training_dataset
    from cifarflow.backend import configure_backend

    configure_backend(threads, recipe.train.seed, recipe.deterministic, False)
    images, labels, classes = training_arrays(recipe, data)
    dataset, _ = training_dataset(images, labels, len(classes), recipe.train.batch_size,
                                  recipe.train.seed, 0, epochs, recipe.augment)
    started = time.monotonic()
    delivered = sum(int(batch.shape[0]) for batch, _ in dataset)
    seconds = time.monotonic() - started
    return {"variant": recipe.name + " (input pipeline only)", "images_per_second": delivered / seconds,
            "training_seconds": seconds, "epochs": epochs, "train_images": len(labels), "peak_rss_mb": peak_rss_mb()}


def _child(args) -> None:
    recipe = recipe_of(json.loads(args.settings))
    if args.input_only:
        result = run_input_only(recipe, Path(args.data), args.threads)
    elif args.bare_epochs:
        result = run_bare_fit(recipe, Path(args.data), args.threads, args.bare_epochs)
    else:
        result = run_variant(recipe, Path(args.data), args.threads, args.target)
    Path(args.result).write_text(json.dumps(result))


def _spawn(settings: dict, args, bare_epochs: int = 0) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, __file__, "--child", "--settings", json.dumps(settings),
                   "--data", args.data, "--threads", str(args.threads), "--target", str(args.target),
                   "--result", out.name, "--bare-epochs", str(bare_epochs)] + (["--input-only"] if args.input_only else [])
        log = open(args.log, "a") if args.log else subprocess.DEVNULL
        started = time.monotonic()
        subprocess.run(command, check=True, stdout=log, stderr=log)
        result = json.loads(Path(out.name).read_text())
        result["wall_seconds"] = time.monotonic() - started
        return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python workflow/bench/bench.py", description=__doc__.split("\n")[0])
    parser.add_argument("--config", nargs="+", default=["config.yaml"],
                        help="study config holding the variants; later files update earlier ones, as Snakemake's "
                             "--configfile updates config.yaml (e.g. config.yaml configs/cpu.yaml)")
    parser.add_argument("--data", default="results/data", help="folder with train/val/test.npz (the pipeline's splits)")
    parser.add_argument("--variants", nargs="+", default=["fast"])
    parser.add_argument("--epochs", type=int, help="override every variant's epochs")
    parser.add_argument("--max-train-images", type=int, help="train on the first N training images only")
    parser.add_argument("--target", type=float, default=0.94,
                        help="validation accuracy (with the variant's test-time augmentation) to time")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--bare-fit", type=int, default=0, metavar="EPOCHS",
                        help="also time a bare model.fit on in-memory arrays for this many epochs, per variant")
    parser.add_argument("--input-only", action="store_true",
                        help="time the training input stream alone (2 epochs, no model), per variant")
    parser.add_argument("--json", help="write all results to this file")
    parser.add_argument("--log", help="append the trainings' output to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--bare-epochs", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)

    config = {}
    for path in args.config:
        config = deep_merge(config, yaml.safe_load(Path(path).read_text()))
    config["budget_epochs"] = args.epochs or config.get("budget_epochs")
    config["budget_train_images"] = args.max_train_images or config.get("budget_train_images")
    unknown = [name for name in args.variants if name not in config["variants"]]
    if unknown:
        parser.error(f"unknown variants {unknown}; {' + '.join(args.config)} define {sorted(config['variants'])}")
    info = machine()
    print(f"machine: {info['cpu']} ({info['cores']} cores), GPU: {info['gpu'] or 'none'}, Keras backend: {info['keras_backend']}")
    results = []
    for name in args.variants:
        settings = variant_settings(config, name)
        if args.input_only:
            results.append(_spawn(settings, args))
            _print(results[-1])
            continue
        if args.bare_fit:
            settings_bare = dict(settings, train=dict(settings["train"], epochs=args.bare_fit))
            results.append(_spawn(settings_bare, args, bare_epochs=args.bare_fit))
            _print(results[-1])
        results.append(_spawn(settings, args))
        _print(results[-1])
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "results": results}, indent=2))


def _print(r: dict) -> None:
    line = (f"{r['variant']:<34} {r['images_per_second']:8.0f} images/s  {r['epochs']:3d} epochs  "
            f"train {r['training_seconds']:7.1f} s  peak RSS {r['peak_rss_mb']:6.0f} MB")
    if "val_accuracy" in r:
        line += f"  val {r['val_accuracy']:.4f}  test {r['test_accuracy']:.4f}  |  val >= {r['target']:.2%}: "
        reached = r["at_target"]
        line += (f"epoch {reached['epoch']}, {reached['seconds']:.1f} s of training, test then {reached['test_accuracy']:.4f}"
                 if reached else "not reached")
    print(line, flush=True)


if __name__ == "__main__":
    main()
