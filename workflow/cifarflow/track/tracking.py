"""MLflow tracking of a finished study: it reads result files, never steers a training.

One MLflow run per training (variant, seed) in the study's experiment: the whole resolved recipe as params, the
per-epoch curves as metrics with ``step=epoch``, the final validation, calibration and timing figures, tags that say
where it came from (dataset, data digest, code fingerprint, git commit, config hash), and its files as artifacts
(history, training record, learning curves, per-image validation predictions). One parent run for the study: the
selection, the test metrics, the robustness summary, the analysis report and the model card, and the exported model
logged with MLflow's Keras flavour and registered as a new version of the dataset's registered model.

Idempotent: every run carries the SHA-256 of exactly what it logs (``cifarflow.fingerprint``); a run whose fingerprint
is already in the experiment is found, not logged again. A retrained variant has new result files, so a new run, and
the old one stays. mlflow is imported only inside the functions that log, so the package imports without it.
"""

import fcntl
import hashlib
import json
import socket
import subprocess
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..fileio import load_json

TAG = "cifarflow."
FINGERPRINT = TAG + "fingerprint"
KIND = TAG + "kind"  # "training" or "study"
STORE = "results/mlflow"  # the default store: mlflow.db and the artifacts beside it
TRAINING_FILES = ("training.json", "history.csv", "validation.json", "calibration.json", "val_predictions.npz")
RUNS_TABLE = "trainings.csv"  # the study run's artifact: every training run of the study, by (variant, seed)
PARAMS_PER_BATCH, METRICS_PER_BATCH = 100, 1000  # MLflow's limits of one log_batch call
REACH_TIMEOUT_S = 5


class TrackingError(UserError):
    """The tracking store cannot be used; the message says why and what to do, in one line."""


def registered_model_name(dataset: str) -> str:
    return f"cifarflow-{dataset}"


def experiment_name(configured: str | None, dataset: str) -> str:
    """The study's experiment: ``tracking_experiment`` from the config, else ``cifarflow <dataset>`` (the default
    store is the study's own, so its experiment is the study's; on a shared server, name each study)."""
    return configured or f"cifarflow {dataset}"


def store_uri(configured: str | None, workdir: Path) -> str:
    """The tracking URI: ``tracking_uri`` from the config, else a SQLite file in the study's results."""
    if configured:
        return configured
    return f"sqlite:///{(Path(workdir) / STORE / 'mlflow.db').resolve()}"


def artifact_location(uri: str, workdir: Path) -> str | None:
    """Where a new experiment's artifacts go: beside a local SQLite store; a server decides for itself (None)."""
    if uri.startswith("sqlite:"):
        return (Path(workdir) / STORE / "artifacts").resolve().as_uri()
    return None


@contextmanager
def one_writer(uri: str):
    """While a job writes a local SQLite store (``sqlite:///<path>``): an exclusive lock on ``<path>.lock`` beside it.
    SQLite admits one writer at a time, MLflow migrates a new store's schema when it first opens it, and a job looks
    for a run's fingerprint before it logs the run; so two jobs on one store (two studies sharing a ``tracking_uri``)
    take turns instead of failing on a locked database or logging a run twice. A server orders its own writes."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    store = Path(uri[len("sqlite:///"):])
    store.parent.mkdir(parents=True, exist_ok=True)
    with open(store.with_name(store.name + ".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"{store}: another job is writing this store; waiting for it to finish", flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


LOGGED_NOTHING = ("nothing was logged; the study's results are intact (start the server, set tracking_uri, or "
                  "tracking: false)")


def check_reachable(uri: str, timeout: float = REACH_TIMEOUT_S, consequence: str = LOGGED_NOTHING) -> None:
    """For a tracking server (http/https), one request to its health endpoint, so that a server that is down fails in
    one line at once rather than after MLflow's retries with back-off."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
            response.read(64)
    except urllib.error.HTTPError as error:
        raise TrackingError(f"the tracking server {uri} answered HTTP {error.code} to /health: {consequence}") from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise TrackingError(f"the tracking server {uri} cannot be reached ({reason}): {consequence}") from None


def digest(*parts: bytes | str) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return hasher.hexdigest()


def files_digest(paths: list[Path]) -> str:
    """SHA-256 of the files' names and contents, in the given order."""
    return digest(*[part for path in paths for part in (Path(path).name, Path(path).read_bytes())])


def json_digest(value) -> str:
    return digest(json.dumps(value, sort_keys=True, default=str))


def code_fingerprint(paths: list[str]) -> str:
    """SHA-256 of the code files (the training's script and the package modules it runs), by path and content."""
    ordered = sorted(Path(path) for path in paths)
    return digest(*[part for path in ordered for part in (path.as_posix(), path.read_bytes())])


def git_commit(folder: Path) -> str:
    """The checkout's commit (with ``-dirty`` when files differ from it), or ``unknown`` outside a git checkout."""
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=20)
        if head.returncode:
            return "unknown"
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=20)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def flatten(value, prefix: str = "") -> dict[str, str]:
    """Nested settings as MLflow params: dotted keys, values as JSON text (a list stays one value)."""
    if isinstance(value, dict) and value:
        flat = {}
        for key in sorted(value):
            flat |= flatten(value[key], f"{prefix}{key}.")
        return flat
    return {prefix.rstrip("."): value if isinstance(value, str) else json.dumps(value)}


def numbers(record: dict, prefix: str = "") -> dict[str, float]:
    """The finite numbers of a (nested) record as metric names and values."""
    import math

    found = {}
    for key, value in record.items():
        if isinstance(value, dict):
            found |= numbers(value, f"{prefix}{key}.")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            found[f"{prefix}{key}"] = float(value)
    return found


# Per-epoch history columns -> MLflow metric names (step = epoch).
EPOCH_METRICS = {"loss": "train_loss", "accuracy": "train_accuracy", "val_loss": "val_loss",
                 "val_accuracy": "val_accuracy", "learning_rate": "learning_rate", "seconds": "epoch_seconds"}


@dataclass
class TrainingRun:
    """What one training's MLflow run holds, read from its result files."""

    variant: str
    seed: int
    name: str
    params: dict[str, str]
    metrics: dict[str, float]
    epoch_metrics: list[tuple[str, float, int]]  # (name, value, epoch)
    tags: dict[str, str]
    artifacts: list[Path]
    fingerprint: str


def training_run(folder: Path, study_tags: dict[str, str]) -> TrainingRun:
    """The run of the training whose results are in ``folder`` (results/variants/<variant>/seed-<seed>/)."""
    import pandas as pd

    folder = Path(folder)
    training = load_json(folder / "training.json")
    validation = load_json(folder / "validation.json")
    calibration = load_json(folder / "calibration.json")
    history = pd.read_csv(folder / "history.csv")
    variant, seed = validation["variant"], int(validation["seed"])
    settings = training["settings"]
    params = flatten(settings) | {"seed": str(seed)}
    # the validate stage's figures as final.*: the curves above own the plain names (val_accuracy per epoch)
    metrics = {f"final.{key}": value for key, value in numbers(validation).items() if key != "seed"}
    for kind in ("uncalibrated", "calibrated"):
        metrics |= {f"calibration.{kind}.{key}": value for key, value in numbers(calibration[kind]).items()}
    metrics["calibration.temperature"] = float(calibration["temperature"])
    metrics |= {key: float(training[key]) for key in ("training_seconds", "wall_seconds_this_run", "images_per_second")
                if isinstance(training.get(key), (int, float))}
    epoch_metrics = [(name, float(row[column]), int(row["epoch"])) for _, row in history.iterrows()
                     for column, name in EPOCH_METRICS.items() if column in history and pd.notna(row[column])]
    files = [folder / name for name in TRAINING_FILES]
    fingerprint = files_digest(files)
    tags = study_tags | {
        KIND: "training", FINGERPRINT: fingerprint, TAG + "variant": variant, TAG + "seed": str(seed),
        TAG + "recipe_hash": json_digest(settings), TAG + "device": str(training.get("device")),
        "mlflow.runName": f"{variant} seed {seed}",
    }
    return TrainingRun(variant, seed, f"{variant} seed {seed}", params, metrics, epoch_metrics, tags, files, fingerprint)


@dataclass
class StudyRun:
    """What the study's parent run holds."""

    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    artifacts: dict[str, list[Path]]  # artifact folder -> files
    model: Path | None
    fingerprint: str
    trainings: list = field(default_factory=list)  # (variant, seed, run id)


def study_run(files: dict[str, Path], config: dict, study_tags: dict[str, str], training_ids: list[tuple[str, int, str]],
              model: Path | None) -> StudyRun:
    """The study's run: ``files`` maps selection, test_metrics, robustness, model_card, model_card_html, report and
    the selection tables (variants, trainings, pairs) to their paths."""
    selection = load_json(files["selection"])
    test = load_json(files["test_metrics"])
    robustness = load_json(files["robustness"])
    kept = {key: value for key, value in config.items() if key not in ("variants", "defaults", "datasets", "questions")}
    params = flatten(kept) | {"variants": json.dumps(sorted(config["variants"])), "trainings": str(len(training_ids))}
    metrics = {f"selection.{key}": value for key, value in numbers(selection).items()
               if key in ("val_accuracy", "val_log_loss", "margin", "exported_seed", "temperature")}
    metrics |= {f"test.{key}": value for key, value in numbers(test).items()
                if key.startswith(("accuracy", "log_loss", "calibration.calibrated.", "calibration.uncalibrated.",
                                   "over_seeds."))}
    metrics |= {f"robustness.{key}": value for key, value in numbers(robustness).items()
                if not key.startswith(("seconds", "temperature", "bins", "images"))}
    artifacts = {
        "selection": [files[key] for key in ("selection", "variants", "trainings", "pairs")],
        "test": [files[key] for key in ("test_metrics", "test_predictions", "confusion", "class_report")],
        "robustness": [files["robustness"], files["robustness_table"]],
        "report": [files["report"], files["model_card"], files["model_card_html"]],
    }
    contents = [path for paths in artifacts.values() for path in paths] + ([model] if model else [])
    fingerprint = digest(files_digest(contents), json.dumps(sorted(training_ids)), json.dumps(kept, sort_keys=True))
    tags = study_tags | {
        KIND: "study", FINGERPRINT: fingerprint, TAG + "selected_variant": selection["variant"],
        TAG + "exported_seed": str(selection["exported_seed"]), "mlflow.runName": "study",
    }
    return StudyRun(params, metrics, tags, artifacts, model, fingerprint, list(training_ids))


# --- logging -------------------------------------------------------------------------------------------------------


def client_for(uri: str, consequence: str = LOGGED_NOTHING):
    """An MlflowClient on ``uri``, after a reachability check; MLflow's own retries kept short."""
    import os

    check_reachable(uri, consequence=consequence)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


# The experiment's kind, which MLflow's UI reads to open its model-training pages rather than its GenAI ones.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def experiment_id(client, name: str, location: str | None) -> str:
    found = client.get_experiment_by_name(name)
    if found is None:
        return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
    if found.lifecycle_stage == "deleted":
        client.restore_experiment(found.experiment_id)
    if location and found.artifact_location.rstrip("/") != location.rstrip("/"):
        # MLflow keeps an experiment's artifact folder as an absolute path: a moved or copied study still logs there
        print(f"warning: experiment {name!r} keeps its artifacts in {found.artifact_location}, not in this study's "
              f"{location} (the study was moved or copied); new artifacts go there too")
    return found.experiment_id


@contextmanager
def open_store(configured_uri: str | None, experiment: str, workdir: Path):
    """The study's tracking store opened for writing: (uri, client, experiment id), held for one job at a time
    (``one_writer``). A server that cannot be reached fails here, in one line, before anything is logged."""
    uri = store_uri(configured_uri, workdir)
    with one_writer(uri):
        client = client_for(uri)
        yield uri, client, experiment_id(client, experiment, artifact_location(uri, workdir))


def find_run(client, experiment: str, fingerprint: str) -> str | None:
    """The id of a finished run of the experiment that logged exactly this content, if any."""
    runs = client.search_runs([experiment], filter_string=f"tags.`{FINGERPRINT}` = '{fingerprint}'",
                              max_results=1)
    return runs[0].info.run_id if runs else None


def log_content(client, run_id: str, params: dict, metrics: dict, steps: list[tuple[str, float, int]]) -> None:
    import time

    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    params = [Param(key, str(value)[:6000]) for key, value in params.items()]
    for start in range(0, len(params), PARAMS_PER_BATCH):
        client.log_batch(run_id, params=params[start:start + PARAMS_PER_BATCH])
    entries = [Metric(key, value, now, 0) for key, value in metrics.items()]
    entries += [Metric(key, value, now, step) for key, value, step in steps]
    for start in range(0, len(entries), METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=entries[start:start + METRICS_PER_BATCH])


def log_training(client, experiment: str, run: TrainingRun) -> tuple[str, bool]:
    """(run id, whether it is new): the training's run, logged unless one with its fingerprint exists."""
    import tempfile

    import pandas as pd

    from ..report.figures.style import save
    from ..report.figures.training import learning_curves

    existing = find_run(client, experiment, run.fingerprint)
    if existing:
        return existing, False
    created = client.create_run(experiment, run_name=run.name, tags=run.tags)
    run_id = created.info.run_id
    try:
        log_content(client, run_id, run.params, run.metrics, run.epoch_metrics)
        for path in run.artifacts:
            client.log_artifact(run_id, str(path))
        with tempfile.TemporaryDirectory() as scratch:
            figure = Path(scratch) / "learning_curves.png"
            history = pd.read_csv(next(path for path in run.artifacts if path.name == "history.csv"))
            save(learning_curves(history, f"{run.variant} seed {run.seed}"), figure)
            client.log_artifact(run_id, str(figure))
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        client.set_tag(run_id, FINGERPRINT, "incomplete")  # never found as a complete run
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id, True


def log_study(client, experiment: str, run: StudyRun, dataset: str, input_example) -> tuple[str, bool, str | None]:
    """(run id, whether it is new, the registered model version): the study run with its model, unless one with its
    fingerprint exists; new training runs without a parent become its children."""
    import tempfile

    import pandas as pd

    existing = find_run(client, experiment, run.fingerprint)
    if existing:
        version = client.get_run(existing).data.tags.get(TAG + "model_version")
        return existing, False, version
    created = client.create_run(experiment, run_name="study", tags=run.tags)
    run_id = created.info.run_id
    version = None
    try:
        log_content(client, run_id, run.params, run.metrics, [])
        for folder, paths in run.artifacts.items():
            for path in paths:
                client.log_artifact(run_id, str(path), folder)
        with tempfile.TemporaryDirectory() as scratch:
            table = Path(scratch) / RUNS_TABLE
            pd.DataFrame(run.trainings, columns=["variant", "seed", "run_id"]).to_csv(table, index=False)
            client.log_artifact(run_id, str(table))
        if run.model is not None:
            version = log_model(run_id, run.model, registered_model_name(dataset), input_example)
            client.set_tag(run_id, TAG + "model_version", version)
        for _, _, child in run.trainings:  # last: a study run that failed adopts no training run
            if "mlflow.parentRunId" not in client.get_run(child).data.tags:
                client.set_tag(child, "mlflow.parentRunId", run_id)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        client.set_tag(run_id, FINGERPRINT, "incomplete")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id, True, version


def log_model(run_id: str, path: Path, name: str, input_example) -> str:
    """The exported Keras model in the study run, with signature and input example, registered as a new version of
    ``name``; returns that version."""
    import os

    import keras
    import mlflow
    import numpy
    import tensorflow
    from mlflow.keras import save as keras_save
    from mlflow.models import infer_signature

    # MLflow's Keras flavour writes the input example before it makes the model's folder (mlflow/mlflow#16183, open):
    # make the folder first.
    save_example = keras_save._save_example
    if not getattr(save_example, "makes_folder", False):
        def folder_first(model, example, folder, *args, **kwargs):
            os.makedirs(folder, exist_ok=True)
            return save_example(model, example, folder, *args, **kwargs)

        folder_first.makes_folder = True
        keras_save._save_example = folder_first
    model = keras.models.load_model(path)
    signature = infer_signature(input_example, model.predict(input_example, verbose=0))
    # the requirements named, so MLflow need not load the model in a subprocess to guess them
    requirements = [f"{tensorflow_distribution()}=={tensorflow.__version__}", f"keras=={keras.__version__}",
                    f"numpy=={numpy.__version__}"]
    with mlflow.start_run(run_id=run_id):
        info = mlflow.keras.log_model(model, name="model", signature=signature, input_example=input_example,
                                      registered_model_name=name, pip_requirements=requirements)
    return str(info.registered_model_version)


def tensorflow_distribution() -> str:
    """The installed TensorFlow's package name: tensorflow-cpu (this project's CPU install) or tensorflow."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("tensorflow-cpu")
        return "tensorflow-cpu"
    except PackageNotFoundError:
        return "tensorflow"


def repository_root() -> Path:
    """The checkout this package runs from (workflow/cifarflow/ is two levels below it)."""
    return Path(__file__).resolve().parents[2]


def study_tags(dataset: str, experiment: str, config: dict, code_files: list[str], train_split: Path,
               val_split: Path) -> dict[str, str]:
    """Tags every run of the study carries: dataset, the training and validation images' digest, the training code's
    fingerprint, the git commit and the config's hash."""
    from ..fileio import image_digest, load_split

    val_images = image_digest(load_split(val_split)[0])
    return {
        TAG + "dataset": dataset,
        TAG + "experiment": experiment,
        TAG + "data_sha256": digest(image_digest(load_split(train_split)[0]), val_images),
        TAG + "val_images_sha256": val_images,
        TAG + "code_fingerprint": code_fingerprint(code_files),
        TAG + "git_commit": git_commit(repository_root()),
        TAG + "config_hash": json_digest(config),
    }
