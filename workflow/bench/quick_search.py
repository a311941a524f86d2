"""Search the recipe of a variant for the shortest training time to a target accuracy, with the benchmark.

    python workflow/bench/quick_search.py --base quick --data results/data --target 0.7838 \
        --widths 32,64,64 48,96,96 --batch-size 256 512 --epochs 3 4 --lr 0.4 0.6 --json search.json

Every combination of the given values becomes a candidate variant (the base variant of config.yaml with those
settings); `workflow/bench/bench.py` trains them one after another in one run, and the table lists them by the
training time at which their validation accuracy first reached the target, with the test accuracy at that epoch
(the seed's protocol). Candidates that never reach it come last, by final validation accuracy.
This is a measurement script: run it on an otherwise idle machine and state its CPU with the figures.
"""

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def candidates(base: dict, grid: dict[str, list]) -> dict[str, dict]:
    """One variant per combination of the grid's values, named after them."""
    variants = {}
    for values in itertools.product(*grid.values()):
        chosen = dict(zip(grid, values))
        variant = json.loads(json.dumps(base))
        variant["arch_options"]["widths"] = chosen["widths"]
        variant["train"].update(batch_size=chosen["batch_size"], epochs=chosen["epochs"], lr=chosen["lr"])
        name = "w{}_b{}_e{}_lr{}".format("-".join(map(str, chosen["widths"])), chosen["batch_size"], chosen["epochs"],
                                         chosen["lr"])
        variants[name] = variant
    return variants


def ranking_key(row: dict):
    reached = row.get("at_target")
    return (0, reached["seconds"]) if reached else (1, -row["val_accuracy"])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=str(REPO / "config.yaml"))
    parser.add_argument("--base", default="quick", help="the variant whose recipe is varied")
    parser.add_argument("--data", default="results/data")
    parser.add_argument("--target", type=float, default=0.7838)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--widths", nargs="+", default=["32,64,64"], help="stage widths, comma-separated, per candidate")
    parser.add_argument("--batch-size", nargs="+", type=int, default=[256])
    parser.add_argument("--epochs", nargs="+", type=int, default=[4])
    parser.add_argument("--lr", nargs="+", type=float, default=[0.4])
    parser.add_argument("--json", help="write the benchmark's results to this file")
    args = parser.parse_args(argv)

    config = yaml.safe_load(Path(args.config).read_text())
    grid = {"widths": [[int(w) for w in text.split(",")] for text in args.widths], "batch_size": args.batch_size,
            "epochs": args.epochs, "lr": args.lr}
    config["variants"] = candidates(config["variants"][args.base], grid)
    with tempfile.TemporaryDirectory() as folder:
        search_config, results = Path(folder) / "search.yaml", Path(args.json or Path(folder) / "search.json")
        search_config.write_text(yaml.safe_dump(config, sort_keys=False))
        bench = Path(__file__).with_name("bench.py")
        subprocess.run([sys.executable, str(bench), "--config", str(search_config), "--data", args.data,
                        "--variants", *config["variants"], "--target", str(args.target), "--threads", str(args.threads),
                        "--json", str(results), "--log", str(results.with_suffix(".log"))], check=True)
        rows = json.loads(results.read_text())["results"]
    print(f"\nranked by training seconds until validation >= {args.target:.2%} (test accuracy at that epoch):")
    for row in sorted(rows, key=ranking_key):
        reached = row.get("at_target")
        at = (f"{reached['seconds']:6.1f} s (epoch {reached['epoch']}), test then {reached['test_accuracy']:.4f}"
              if reached else "not reached")
        print(f"  {row['variant']:<30} {row['images_per_second']:6.0f} images/s  {at}  | final val "
              f"{row['val_accuracy']:.4f} test {row['test_accuracy']:.4f} after {row['training_seconds']:.1f} s")


if __name__ == "__main__":
    main()
