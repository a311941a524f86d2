"""What the statistics of a full study cost: ``compare_all`` on synthetic validation predictions of the full study's
size (10 variants × 3 seeds × 10,000 images × 10 classes by default) with 2,000 bootstrap resamples.

    PYTHONPATH=workflow python workflow/bench/statistics_cost.py [--variants 10] [--seeds 3] [--images 10000]
        [--classes 10] [--resamples 2000]

Prints the wall time of compare_all, the peak of the memory it allocates (tracemalloc, which numpy reports to, in a
second run) and the process's peak resident memory (imports and the synthetic predictions included). A measurement, not a test.
"""

import argparse
import resource
import time
import tracemalloc

import numpy as np

from cifarflow.select.statistics import Runs, compare_all


def synthetic_runs(variants: int, seeds: int, images: int, classes: int) -> dict[str, Runs]:
    """Softmax predictions whose true-class logit grows with the variant, so accuracies differ and some pairs tie."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, classes, size=images)
    runs = {}
    for k in range(variants):
        logits = rng.normal(size=(seeds, images, classes))
        logits[:, np.arange(images), labels] += 1.0 + 0.02 * k
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=2, keepdims=True)
        runs[f"variant{k}"] = Runs(f"variant{k}", tuple(range(seeds)), labels, probabilities, 100_000 * (k + 1), 60.0 * k)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--resamples", type=int, default=2000)
    args = parser.parse_args()
    runs = synthetic_runs(args.variants, args.seeds, args.images, args.classes)
    started = time.perf_counter()
    summary, pairs = compare_all(runs, level=0.05, resamples=args.resamples, seed=0, metric="val_accuracy")
    seconds = time.perf_counter() - started
    tracemalloc.start()  # a second run for the memory: tracing slows the first's clock
    compare_all(runs, level=0.05, resamples=args.resamples, seed=0, metric="val_accuracy")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(summary.to_string(index=False, float_format="%.4f"))
    print(pairs["verdict"].value_counts().to_string())
    print(f"\ncompare_all on {args.variants} variants × {args.seeds} seeds × {args.images:,} images × {args.classes} classes, "
          f"{args.resamples:,} resamples: {seconds:.2f} s wall, {peak / 2**20:.0f} MiB peak allocated by it; process peak "
          f"resident {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")


if __name__ == "__main__":
    main()
