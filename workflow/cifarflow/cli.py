"""The ``cifarflow`` command. ``cifarflow predict PATH...`` classifies image files with a run's selected model;
``cifarflow status`` shows how far each training of a (running) study has got; ``cifarflow compare A B`` compares two
studies on the same images.

Only the standard library is imported before the arguments are parsed, so ``--help`` and usage errors are instant;
numpy, Pillow and the model's runtime (LiteRT, or TensorFlow for ``--backend keras``) are imported when there is work
to do.

Exit status of ``predict``: 0 when every image got a prediction, 1 when some input could not be read (each one
is named on stderr, the others still get their predictions), 2 when the command could not run (bad arguments,
no model).
"""

import argparse
import sys

from . import __version__

PREDICT_HELP = """\
Classify image files with a trained cifarflow model and print the top-k classes with their probabilities.

Inputs: image files (PNG, JPEG, or anything else Pillow reads) and folders (their image files, recursively, by
extension). Each image is converted to RGB (grayscale and palette expanded, transparency composited on white,
16-bit scaled to 8-bit) and resized to the model's image size (32x32 for CIFAR) with Pillow's bicubic filter after
cutting the largest centred square (--fit crop, the default) or stretched whole (--fit stretch). RGB images of that
size are used as they are.

Model: by default the selected model of the run in --run-dir, run by the LiteRT runtime without TensorFlow
(results/export/model.tflite); with --backend keras by TensorFlow (results/export/model.keras, else
results/selection/best_model.keras with the selection's test-time averaging and temperature). Or --model: a .tflite
file, a .keras file or a SavedModel folder. Class names: --classes, else classes.json beside the model, else the run's.
On a terminal, a progress line on stderr counts the images classified.

Exit status: 0 all images classified; 1 some inputs could not be read (named on stderr, the others are still
classified); 2 the command could not run.
"""

STATUS_HELP = """\
Show each training of a study, one line per variant and seed: its state, epoch, last validation accuracy, seconds
per epoch and time left. It reads the study's files only (results/variants/*/seed-*/training.json,
checkpoints/*/seed-*/, logs/train/*/seed-*.log), so it can run while snakemake runs, locally or on SLURM from the
shared working folder. States: done, training, stalled (no new epoch for over 10 minutes or 3 epochs' time: the job
stopped without a word, e.g. killed), failed (its log ends with an error), waiting (not started). Variants and their
seeds come from the config the last run used (DIR/.snakemake/cifarflow/last_run_config.yaml, written when a run starts), or with
--configfile from DIR/config.yaml and those files merged as snakemake does; plus any that have files in DIR. The
first line says which config it shows.
"""

MIGRATE_HELP = """\
Keep the trainings of a study made before seeds. Each variant's files in results/variants/VARIANT/ (model,
history, training and validation records, validation predictions, calibration) and its logs and benchmarks move to
the folder of the seed its training.json records (results/variants/VARIANT/seed-SEED/ ...), time stamps kept, so
snakemake retrains only the seeds that are new. Run it once, before the first snakemake run after the update.
"""


COMPARE_HELP = """\
Compare two studies on the same images: did the change from A to B help? A and B are study folders (their
results/) or MLflow study runs (runs:/RUN_ID, from --tracking-uri). For each variant in both, B against A: the
paired bootstrap interval of the difference in validation accuracy and log-loss, McNemar's test per seed pair, the
verdict (better / worse / tied on --metric), and whether the variant's recipe and its predictions changed; then the
two selected models on the test split. Both studies must hold the very same validation and test images (by content
hash), else nothing is compared. Prints the table; --out DIR also writes DIR/comparison.csv, DIR/comparison.png
and DIR/comparison.html.

Exit status: 0 compared; 2 the studies could not be compared (other images, nothing in common, unreadable).
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cifarflow", description="cifarflow: the CIFAR CNN study workflow's command line.")
    parser.add_argument("--version", action="version", version=f"cifarflow {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    predict = commands.add_parser("predict", help="classify image files with a trained model", description=PREDICT_HELP,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    predict.add_argument("paths", nargs="+", metavar="PATH", help="image files and/or folders of images")
    predict.add_argument("--run-dir", default=".", metavar="DIR",
                         help="a finished cifarflow run whose selected model to use (default: the current folder)")
    predict.add_argument("--model", metavar="PATH",
                         help="a .tflite or .keras model file or a SavedModel folder (overrides --run-dir)")
    predict.add_argument("--backend", choices=("litert", "keras"),
                         help="the runtime: litert (the run's model.tflite, no TensorFlow; the default) or keras "
                              "(TensorFlow); default: the one the model file needs")
    predict.add_argument("--classes", metavar="JSON", help="a JSON list of class names, in the model's output order")
    predict.add_argument("-k", "--top-k", type=int, default=3, metavar="K", help="how many classes to print (default: 3)")
    predict.add_argument("--csv", metavar="OUT",
                         help="also write every image's prediction and class probabilities to this CSV file")
    predict.add_argument("--fit", choices=("crop", "stretch"), default="crop",
                         help="how a non-square image becomes square: centre crop (default) or stretch")
    predict.add_argument("--batch-size", type=int, default=256, metavar="N", help="images per model call (default: 256)")
    predict.add_argument("-q", "--quiet", action="store_true", help="print no per-image lines (errors still go to stderr)")

    status = commands.add_parser("status", help="each training's epoch, ETA and validation accuracy in a study's folder",
                                 description=STATUS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    status.add_argument("--dir", default=".", metavar="DIR", help="the study's folder (default: the current folder)")
    status.add_argument("--configfile", nargs="+", default=[], metavar="FILE",
                        help="the config files given to snakemake (they name the variants not started yet)")
    status.add_argument("--replace-workflow-config", action="store_true",
                        help="as given to snakemake: the config files replace DIR/config.yaml")

    migrate = commands.add_parser("migrate-seeds", help="keep a study made before seeds: move its trainings to seed folders",
                                  description=MIGRATE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    migrate.add_argument("--dir", default=".", metavar="DIR", help="the study's folder (default: the current folder)")
    migrate.add_argument("-n", "--dry-run", action="store_true", help="print what would move, move nothing")
    compare = commands.add_parser("compare", help="two studies on the same images: paired differences and verdicts",
                                  description=COMPARE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    compare.add_argument("a", metavar="A", help="the earlier study: a folder, or runs:/RUN_ID (an MLflow study run)")
    compare.add_argument("b", metavar="B", help="the later study, compared against A")
    compare.add_argument("--tracking-uri", metavar="URI", help="the MLflow store of runs:/ studies (default: MLflow's)")
    compare.add_argument("--out", metavar="DIR", help="also write DIR/comparison.csv, DIR/comparison.png and DIR/comparison.html")
    compare.add_argument("--metric", choices=("val_accuracy", "val_log_loss"), default="val_accuracy",
                         help="the metric whose interval gives the verdict (default: val_accuracy)")
    compare.add_argument("--level", type=float, default=0.05, help="two-sided level; intervals cover 1 - level")
    compare.add_argument("--resamples", type=int, default=2000, help="paired bootstrap resamples (default: 2000)")
    compare.add_argument("--seed", type=int, default=0, help="the bootstrap's random seed (default: 0)")
    return parser


def error(path: str, message: str) -> None:
    print(f"cifarflow predict: {path}: {message}", file=sys.stderr, flush=True)


class Progress:
    """A progress line on stderr, redrawn in place (at most 10 times a second); ``clear`` makes room for other output."""

    def __init__(self, total: int, stream=None):
        import time

        self.total, self.done, self.stream, self.clock = total, 0, stream or sys.stderr, time.monotonic
        self.start = self.drawn = self.clock()

    def clear(self) -> None:
        self.stream.write("\r\033[K")

    def update(self, done: int) -> None:
        self.done = done
        now = self.clock()
        if now - self.drawn >= 0.1 or done == self.total:
            self.drawn = now
            rate = done / max(now - self.start, 1e-9)
            filled = round(30 * done / self.total)
            self.stream.write(f"\r\033[K[{'#' * filled}{'.' * (30 - filled)}] {done:,}/{self.total:,} images, "
                              f"{rate:,.0f}/s, {(self.total - done) / max(rate, 1e-9):,.0f} s left")
            self.stream.flush()

    def close(self) -> None:
        self.clear()
        self.stream.flush()


def predict_command(args) -> int:
    import numpy as np

    from .export import predict

    if args.top_k < 1 or args.batch_size < 1:
        print("cifarflow predict: --top-k and --batch-size must be at least 1", file=sys.stderr)
        return 2
    files, failures = predict.find_images(args.paths)
    for path, message in failures:
        error(path, message)
    if not files:
        print("cifarflow predict: no image files to classify", file=sys.stderr)
        return 1
    try:
        classifier = predict.load_classifier(args.model, args.run_dir, args.classes, args.backend)
    except predict.PredictError as problem:
        print(f"cifarflow predict: {problem}", file=sys.stderr)
        return 2
    k = min(args.top_k, len(classifier.classes))
    progress = Progress(len(files)) if sys.stderr.isatty() else None
    classified, probabilities, infos = [], [], []
    for start in range(0, len(files), args.batch_size):  # a batch at a time: the answers come as they are made
        batch, images, batch_infos, unreadable = predict.load_images(files[start:start + args.batch_size],
                                                                     classifier.image_size, args.fit)
        probs = classifier.probabilities(images, args.batch_size)
        if progress:
            progress.clear()
        for path, message in unreadable:
            error(path, message)
        if not args.quiet:
            for path, best in zip(batch, predict.top_k(probs, classifier.classes, k)):
                print(f"{path}: " + ", ".join(f"{name} {p:.3f}" for name, p in best))
            sys.stdout.flush()
        if progress:
            progress.update(min(start + args.batch_size, len(files)))
        failures += unreadable
        classified += batch
        probabilities.append(probs)
        infos += batch_infos
    if progress:
        progress.close()
    if args.csv:
        table = predict.prediction_table(classified, np.concatenate(probabilities), infos, classifier.classes)
        try:
            table.to_csv(args.csv, index=False, float_format="%.6g")
        except OSError as problem:
            print(f"cifarflow predict: cannot write {args.csv}: {problem}", file=sys.stderr)
            return 2
    if failures:
        print(f"cifarflow predict: {len(classified)} image(s) classified, {len(failures)} input(s) failed", file=sys.stderr)
        return 1
    return 0


def status_command(args) -> int:
    from pathlib import Path

    from . import status

    directory = Path(args.dir)
    if not directory.is_dir():
        print(f"cifarflow status: {directory} is not a folder", file=sys.stderr)
        return 2
    try:
        config, source = status.study_config(directory, args.configfile, args.replace_workflow_config)
        epochs = status.configured_epochs(config)
    except (OSError, ValueError, KeyError, TypeError) as problem:
        print(f"cifarflow status: cannot read the study's config: {problem}", file=sys.stderr)
        return 2
    print(f"trainings of {source}:")
    print(status.format_table(status.study_status(directory, epochs)))
    return 0


def migrate_command(args) -> int:
    from pathlib import Path

    from .migrate import migrate

    directory = Path(args.dir)
    if not (directory / "results" / "variants").is_dir():
        print(f"cifarflow migrate-seeds: {directory} has no results/variants/: nothing to migrate", file=sys.stderr)
        return 2
    lines = migrate(directory, dry_run=args.dry_run)
    for line in lines:
        print(("would move " if args.dry_run else "moved ") + line)
    done = "to move" if args.dry_run else "moved"
    print(f"{len(lines)} file(s) {done}" + ("" if lines else ": the study already has the seed layout"))
    return 0


def compare_command(args) -> int:
    from pathlib import Path

    from .track import compare
    from .errors import UserError

    try:
        table, a, b = compare.run(args.a, args.b, args.tracking_uri, level=args.level, resamples=args.resamples,
                                  seed=args.seed, metric=args.metric)
    except (UserError, OSError, KeyError, ValueError) as problem:
        print(f"cifarflow compare: {problem}", file=sys.stderr)
        return 2
    print(compare.format_table(table, a.label, b.label))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        from .report.figureio import write_outputs
        from .report.figures.selection import study_comparison

        table.to_csv(out / "comparison.csv", index=False)
        paths = {"figure": out / "comparison.png", "table": out / "comparison.html"}
        write_outputs("study_comparison", study_comparison(table, earlier=a.label, later=b.label, level=args.level), paths)
        print(f"\nwritten: {out / 'comparison.csv'}, {paths['figure']}, {paths['table']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "migrate-seeds":
        return migrate_command(args)
    if args.command == "predict":
        return predict_command(args)
    if args.command == "status":
        return status_command(args)
    if args.command == "compare":
        return compare_command(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
