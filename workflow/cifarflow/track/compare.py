"""Two studies compared on the same images: "did my change help?"

A study is a result folder (its results/variants/*/seed-*/ validation files, its selection and test predictions) or
an MLflow study run (``runs:/<run id>``, its artifacts downloaded into the same layout). For each variant in both, the
new study (B) against the old one (A) with the package's paired statistics (``statistics.compare``): the paired
bootstrap interval of Δaccuracy and Δlog-loss over the validation images, McNemar per seed pair, and the verdict
better / worse / tied on the selection metric; beside it whether the variant's recipe and its predictions changed.
Then the two selected models on the test split, the same way. Both studies must hold the very same validation (and
test) images: their content digests must agree, or nothing is compared.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import TRAINING_RESULTS
from ..errors import UserError
from ..fileio import image_digest, load_json, load_npz, load_split
from ..select.selection import seed_runs
from ..select.statistics import Runs, bootstrap_weights, compare

MLFLOW_PREFIX = "runs:/"
# Predictions count as unchanged within float round-off: the test predictions are stored with 6 significant digits,
# and a model evaluated again may differ in the last one.
SAME_PREDICTIONS = 1e-5
COLUMNS = ["split", "variant", "a", "b", "seeds_a", "seeds_b", "accuracy_a", "accuracy_b", "delta_accuracy",
           "delta_accuracy_low", "delta_accuracy_high", "delta_log_loss", "delta_log_loss_low", "delta_log_loss_high",
           "seed_pairs", "mcnemar_p", "verdict", "recipe_changed", "predictions_changed"]


class CompareError(UserError):
    """The two studies cannot be compared; the message says why."""


@dataclass
class Study:
    label: str
    runs: dict[str, Runs]  # variant -> its validation predictions over its seeds
    recipes: dict[str, dict]  # variant -> its resolved settings, the seed left out
    selected: str | None
    test: Runs | None  # the selected (exported) model's test predictions


def without_seed(settings: dict) -> dict:
    return {key: ({k: v for k, v in value.items() if k != "seed"} if key == "train" else value)
            for key, value in settings.items()}


def load_folder(folder: Path, label: str | None = None, test_images: str | None = None) -> Study:
    """A study from its result folder."""
    folder = Path(folder)
    pattern = TRAINING_RESULTS.format(variant="*", seed="*")
    table = folder / "results/selection/trainings.csv"
    if table.exists():  # the study's trainings, not what an earlier config left in results/variants/
        listed = pd.read_csv(table)
        found = [folder / TRAINING_RESULTS.format(variant=variant, seed=seed) / "validation.json"
                 for variant, seed in zip(listed["variant"], listed["seed"])]
    else:
        found = sorted(folder.glob(f"{pattern}/validation.json"))
    if not found:
        raise CompareError(f"{folder}: no trainings with validation results ({pattern}/validation.json)")
    metrics = [load_json(path) for path in found]
    predictions = [load_npz(path.with_name("val_predictions.npz")) for path in found]
    recipes = {}
    for path, record in zip(found, metrics):
        training = path.with_name("training.json")
        if training.exists():
            recipes.setdefault(record["variant"], without_seed(load_json(training)["settings"]))
    selection_path = folder / "results/selection/selection.json"
    selected, test = None, None
    if selection_path.exists():
        selection = load_json(selection_path)
        selected = selection["variant"]
        test = test_runs(folder, selection, test_images)
    return Study(label or str(folder), seed_runs(metrics, predictions), recipes, selected, test)


def test_runs(folder: Path, selection: dict, images: str | None) -> Runs | None:
    """The exported seed's test predictions (results/test/predictions.csv) as Runs; the images' digest from the test
    split, when the folder has it."""
    path = folder / "results/test/predictions.csv"
    if not path.exists():
        return None
    table = pd.read_csv(path)
    columns = [column for column in table.columns if column.startswith("p_")]
    classes = [column[2:] for column in columns]
    labels = table["true"].map({name: k for k, name in enumerate(classes)}).to_numpy()
    split = folder / "results/data/test.npz"
    if images is None and split.exists():
        images = image_digest(load_split(split)[0])
    return Runs(variant=selection["variant"], seeds=(int(selection["exported_seed"]),), labels=labels,
                probabilities=table[columns].to_numpy(dtype=np.float64)[None], parameters=0, training_seconds=0.0,
                images=images or "")


def load_mlflow(reference: str, tracking_uri: str | None, scratch: Path) -> Study:
    """A study from its MLflow study run (``runs:/<id>``): its artifacts and those of its training runs downloaded
    into a result folder's layout under ``scratch``."""
    from .tracking import RUNS_TABLE, TAG, client_for

    run_id = reference[len(MLFLOW_PREFIX):].strip("/")
    client = client_for(tracking_uri, "nothing was compared") if tracking_uri else _default_client()
    try:
        run = client.get_run(run_id)
    except Exception as error:  # MLflow raises its own exception types for an unknown run
        raise CompareError(f"{reference}: no such MLflow run ({str(error).splitlines()[0]})") from None
    if run.data.tags.get(TAG + "kind") != "study":
        raise CompareError(f"{reference} is not a cifarflow study run (its tag {TAG}kind is not 'study')")
    folder = scratch / run_id
    table = pd.read_csv(client.download_artifacts(run_id, RUNS_TABLE, str(scratch)))
    for row in table.itertuples():
        target = folder / TRAINING_RESULTS.format(variant=row.variant, seed=row.seed)
        target.mkdir(parents=True, exist_ok=True)
        for name in ("validation.json", "val_predictions.npz", "training.json"):
            Path(client.download_artifacts(row.run_id, name, str(target)))
    for source, target in (("selection/selection.json", "results/selection"), ("test/predictions.csv", "results/test")):
        (folder / target).mkdir(parents=True, exist_ok=True)
        client.download_artifacts(run_id, source, str(folder / target))
    name = run.data.tags.get(TAG + "experiment", run.info.experiment_id)
    return load_folder(folder, f"{name} ({run_id[:8]})", run.data.tags.get(TAG + "test_images_sha256"))


def _default_client():
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def load_study(source: str, tracking_uri: str | None, scratch: Path) -> Study:
    if source.startswith(MLFLOW_PREFIX):
        return load_mlflow(source, tracking_uri, scratch)
    if not Path(source).is_dir():
        raise CompareError(f"{source}: neither a study folder nor an MLflow study run (runs:/<run id>)")
    return load_folder(Path(source))


def check_same_images(a: Study, b: Study, split: str, a_runs: list[Runs], b_runs: list[Runs]) -> None:
    """Both studies' predictions on the very same images in the same order (content digests and labels)."""
    digests = {runs.images for runs in a_runs} | {runs.images for runs in b_runs}
    if len(digests) != 1 or "" in digests or any(not np.array_equal(runs.labels, a_runs[0].labels) for runs in b_runs):
        shown = ", ".join(sorted(digest[:12] or "unknown" for digest in digests))
        raise CompareError(f"{a.label} and {b.label} were not evaluated on the same {split} images (image sha256 "
                           f"{shown}): a paired comparison needs the very same images; nothing was compared")


def row(split: str, variant: str, a: Runs, b: Runs, weights: np.ndarray, level: float, metric: str,
        recipe_changed) -> dict:
    """B against A for one variant (or the selected models), from ``statistics.compare``."""
    result = compare(b, a, weights, level, metric)
    same = a.probabilities.shape == b.probabilities.shape and bool(
        np.max(np.abs(a.probabilities - b.probabilities), initial=0) <= SAME_PREDICTIONS)
    return {
        "split": split, "variant": variant, "a": a.variant, "b": b.variant,
        "seeds_a": " ".join(map(str, a.seeds)), "seeds_b": " ".join(map(str, b.seeds)),
        "accuracy_a": float(a.correct.mean()), "accuracy_b": float(b.correct.mean()),
        **{key: result[key] for key in COLUMNS if key in result and key != "variant"},
        "recipe_changed": recipe_changed, "predictions_changed": not same,
    }


def compare_studies(a: Study, b: Study, level: float = 0.05, resamples: int = 2000, seed: int = 0,
                    metric: str = "val_accuracy") -> pd.DataFrame:
    """One row per variant in both studies (validation split), then one for the two selected models (test split)."""
    common = sorted(set(a.runs) & set(b.runs))
    if not common:
        raise CompareError(f"{a.label} and {b.label} have no variant in common: {sorted(a.runs)} vs {sorted(b.runs)}")
    check_same_images(a, b, "validation", [a.runs[v] for v in common], [b.runs[v] for v in common])
    weights = bootstrap_weights(len(a.runs[common[0]].labels), resamples, seed)
    rows = []
    for variant in common:
        changed = a.recipes.get(variant) != b.recipes.get(variant) if variant in a.recipes and variant in b.recipes else None
        rows.append(row("validation", variant, a.runs[variant], b.runs[variant], weights, level, metric, changed))
    if a.test is not None and b.test is not None:
        check_same_images(a, b, "test", [a.test], [b.test])
        test_weights = bootstrap_weights(len(a.test.labels), resamples, seed)
        changed = (a.selected != b.selected) or (a.recipes.get(a.selected) != b.recipes.get(b.selected))
        rows.append(row("test", "selected", a.test, b.test, test_weights, level, metric, changed))
    return pd.DataFrame(rows, columns=COLUMNS)


def format_table(table: pd.DataFrame, a: str, b: str) -> str:
    """The comparison as text: B against A, in points of accuracy and in log-loss."""
    lines = [f"B = {b}", f"  against A = {a}", ""]
    header = (f"{'split':<10} {'variant':<30} {'acc A':>7} {'acc B':>7} {'Δacc (points, interval)':>28} "
              f"{'Δlog-loss (interval)':>28} {'McNemar p':>12} {'verdict':>8} {'recipe':>8} {'predictions':>11}")
    lines.append(header)
    lines.append("-" * len(header))
    for r in table.itertuples():
        name = r.variant if r.split == "validation" else f"{r.a} → {r.b}"
        recipe = {True: "changed", False: "same", None: "?"}.get(r.recipe_changed, "?")
        lines.append(
            f"{r.split:<10} {name:<30} {100 * r.accuracy_a:>6.2f}% {100 * r.accuracy_b:>6.2f}% "
            f"{100 * r.delta_accuracy:>+8.2f} ({100 * r.delta_accuracy_low:>+6.2f} to {100 * r.delta_accuracy_high:>+6.2f}) "
            f"{r.delta_log_loss:>+8.4f} ({r.delta_log_loss_low:>+7.4f} to {r.delta_log_loss_high:>+7.4f}) "
            f"{r.mcnemar_p:>12} {r.verdict:>8} {recipe:>8} {'changed' if r.predictions_changed else 'same':>11}")
    return "\n".join(lines)


def run(source_a: str, source_b: str, tracking_uri: str | None = None, **options) -> tuple[pd.DataFrame, Study, Study]:
    with tempfile.TemporaryDirectory() as scratch:
        a = load_study(source_a, tracking_uri, Path(scratch) / "a")
        b = load_study(source_b, tracking_uri, Path(scratch) / "b")
        return compare_studies(a, b, **options), a, b
