"""Time the robustness stage side by side, to size ``robustness.images`` for a machine.

    python workflow/bench/robustness_bench.py --variants model3 fast --images 2000 --repeats 3

Inference: untrained models of each variant's architecture (the same cost as trained ones), each with its own
test-time augmentation and a temperature, on the same images, timed in turns (A, B, A, B, ...) in one process so
that a busy machine slows all of them alike. Corruption: every corruption at all five severities. Prints seconds
per 10,000 corrupted images. This is a measurement script, not a test.
"""

import argparse
import time

import numpy as np
import yaml

from bench import machine
from cifarflow.config import variant_settings
from cifarflow.train.recipe import recipe_of


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config.yaml", help="study config holding the variants")
    parser.add_argument("--variants", nargs="+", default=["model3", "fast"])
    parser.add_argument("--images", type=int, default=2000, help="images per timed inference call")
    parser.add_argument("--corruption-images", type=int, default=1000, help="images per timed corruption (x 5 severities)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from cifarflow.evaluate.corruptions import CORRUPTIONS, SEVERITIES, corrupt_all_severities
    from cifarflow.evaluate.evaluation import calibrated_probabilities
    from cifarflow.train.models import build_model
    from cifarflow.evaluate.tta import tta_settings

    config = yaml.safe_load(open(args.config))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.images, 32, 32, 3), dtype=np.uint8)
    models = {}
    for name in args.variants:
        recipe = recipe_of(variant_settings(config, name))
        models[name] = (build_model(recipe, 10, [125.0] * 3, [63.0] * 3, images.shape[1:]), tta_settings(recipe.train))
        calibrated_probabilities(models[name][0], images[:500], models[name][1], 1.5)  # warm-up: graph building
    seconds = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, (model, tta) in models.items():
            started = time.perf_counter()
            calibrated_probabilities(model, images, tta, 1.5)
            seconds[name].append((time.perf_counter() - started) / args.images * 1e4)
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, Keras backend {info['keras_backend']}")
    first = np.median(seconds[args.variants[0]])
    for name, values in seconds.items():
        print(f"inference {name:10s} (tta {models[name][1]}): {np.median(values):6.1f} s per 10,000 images "
              f"(runs: {', '.join(f'{v:.1f}' for v in values)}), {np.median(values) / first:.2f}x {args.variants[0]}")
    clean = images[:args.corruption_images]
    total = 0.0
    for name in CORRUPTIONS:
        started = time.perf_counter()
        corrupt_all_severities(clean, name)
        per_10000 = (time.perf_counter() - started) / (len(clean) * len(SEVERITIES)) * 1e4
        total += per_10000
        print(f"corruption {name:16s}: {per_10000:6.2f} s per 10,000 corrupted images")
    print(f"corruption, all {len(CORRUPTIONS)}: {total / len(CORRUPTIONS):.2f} s per 10,000 corrupted images on average")


if __name__ == "__main__":
    main()
