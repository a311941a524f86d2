"""What watching a training costs: model 3 trains through ``train_variant`` with a live view that does its work
(TensorBoard events + the learning-curve PNG) after every second epoch only, so epochs with and without it
alternate in one process.

    PYTHONPATH=workflow python workflow/bench/live_cost.py [--images 4000] [--epochs 12] [--threads 2]

Prints each epoch's cycle (from one epoch's end to the next, every callback included), the mean cycle with and
without the live work and their ratio, and the live work's own time (the first PNG includes matplotlib's import).
Random images: the time of an epoch does not depend on what the images show. A measurement, not a test.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from bench import machine
from cifarflow.config import variant_settings
from cifarflow.train.live import LiveView
from cifarflow.data.splits import channel_stats
from cifarflow.backend import configure_training
from cifarflow.train.recipe import recipe_of, recipe_record
from cifarflow.train.training import train_variant


class EveryOtherEpoch(LiveView):
    def __init__(self, *args):
        super().__init__(*args)
        self.epochs = []  # (epoch, watched, live work: wall and CPU seconds, when it ended: wall and CPU clock)

    def epoch_end(self, history):
        epoch, started, started_cpu = history[-1]["epoch"], time.monotonic(), time.process_time()
        if epoch % 2 == 0:
            super().epoch_end(history)
        ended, ended_cpu = time.monotonic(), time.process_time()
        self.epochs.append((epoch, epoch % 2 == 0, (ended - started, ended_cpu - started_cpu), (ended, ended_cpu)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "config.yaml").read_text())
    settings = variant_settings(config, "model3")
    settings["train"]["epochs"] = args.epochs
    recipe = recipe_of(settings)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.images + 1000, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=len(images))
    train, val = (images[:args.images], labels[:args.images]), (images[args.images:], labels[args.images:])
    with tempfile.TemporaryDirectory() as folder:
        view = EveryOtherEpoch(Path(folder) / "tensorboard/model3", Path(folder) / "model3.png", recipe_record(recipe))
        train_variant(recipe, train, val, 10, channel_stats(train[0]), Path(folder) / "ckpt", args.threads, live=view,
                      device=configure_training(recipe, args.threads))
    print(f"\n{machine()}, {args.threads} thread(s), model 3, {args.images} training + 1000 validation images")
    for clock, name in ((0, "wall"), (1, "CPU")):  # CPU: this process's CPU time, less disturbed by other load
        cycles = {True: [], False: []}
        for (_, _, _, before), (epoch, watched, work, ended) in zip(view.epochs, view.epochs[1:]):
            print(f"epoch {epoch}: {ended[clock] - before[clock]:.2f} {name} s {'with' if watched else 'without'} "
                  f"the live work ({work[clock]:.3f} s)")
            if epoch > 2:  # epoch 2 draws the first PNG, with matplotlib's import
                cycles[watched].append(ended[clock] - before[clock])
        with_, without = np.mean(cycles[True]), np.mean(cycles[False])
        works = [work[clock] for epoch, watched, work, _ in view.epochs if watched and epoch > 2]
        print(f"{name}: mean epoch with the live work {with_:.2f} s, without {without:.2f} s: ratio {with_ / without:.4f}; "
              f"live work per epoch {np.mean(works):.3f} s (min {min(works):.3f}, max {max(works):.3f}), "
              f"{np.mean(works) / without:.2%} of an epoch without it; the first (matplotlib's import): "
              f"{view.epochs[1][2][clock]:.3f} s")

if __name__ == "__main__":
    main()
