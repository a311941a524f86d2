"""MLflow tracking and `cifarflow compare`: the tiny study's store holds every training and the study with its model
registered; a rerun logs nothing new, a retrained training a new run beside the old; tracking: false plans no
tracking job; a tracking server that is down fails the tracking rule alone, in one line; `mlflow server` shows the
trainings in headless Chromium; and a second run of the study with one variant changed is found by `compare`, that
variant alone."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cifarflow import cli
from cifarflow.track import compare, tracking
from conftest import REPO, TINY_CONFIG, archive_config, copy_of_study, dry_run_of_repo, edited_config, planned_jobs, snakemake

TRAININGS = [("small", 0), ("small_augmented", 0), ("small_augmented", 1)]  # configs/tiny.yaml
EXPERIMENT = "cifarflow cifar10"
MLFLOW = str(Path(sys.executable).with_name("mlflow"))


def store_of(study: Path) -> str:
    return f"sqlite:///{study / 'results/mlflow/mlflow.db'}"


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def all_runs(mlflow_client, experiment: str = EXPERIMENT):
    found = mlflow_client.get_experiment_by_name(experiment)
    return mlflow_client.search_runs([found.experiment_id], max_results=1000) if found else []


def artifact_files(mlflow_client, run_id: str, path: str = "") -> list[str]:
    files = []
    for item in mlflow_client.list_artifacts(run_id, path or None):
        files += artifact_files(mlflow_client, run_id, item.path) if item.is_dir else [item.path]
    return files


def test_the_store_holds_every_training_and_the_study_with_its_registered_model(tiny_study):
    store = client(store_of(tiny_study))
    runs = all_runs(store)
    trainings = {(r.data.tags["cifarflow.variant"], int(r.data.tags["cifarflow.seed"])): r for r in runs
                 if r.data.tags.get("cifarflow.kind") == "training"}
    studies = [r for r in runs if r.data.tags.get("cifarflow.kind") == "study"]
    assert sorted(trainings) == TRAININGS and len(studies) == 1 and len(runs) == 4
    study = studies[0]
    assert study.info.status == "FINISHED" and study.data.tags["cifarflow.selected_variant"] in dict(TRAININGS)
    counts = {"runs": len(runs), "params": 0, "metric values": 0, "artifacts": 0}
    for (variant, seed), run in trainings.items():
        folder = tiny_study / f"results/variants/{variant}/seed-{seed}"
        validation = json.loads((folder / "validation.json").read_text())
        settings = json.loads((folder / "training.json").read_text())["settings"]
        assert run.info.status == "FINISHED" and run.info.run_name == f"{variant} seed {seed}"
        assert run.data.params["train.lr"] == json.dumps(settings["train"]["lr"]) and run.data.params["arch"] == "lenet2"
        assert run.data.params["seed"] == str(seed) and run.data.params["augment.flip"] == json.dumps(settings["augment"]["flip"])
        assert run.data.metrics["final.val_accuracy"] == validation["val_accuracy"]
        assert run.data.metrics["final.val_log_loss"] == pytest.approx(validation["val_log_loss"], rel=1e-12)
        assert {"calibration.calibrated.ece", "calibration.temperature", "training_seconds"} <= set(run.data.metrics)
        history = pd.read_csv(folder / "history.csv")
        curve = store.get_metric_history(run.info.run_id, "val_accuracy")
        assert sorted((m.step, m.value) for m in curve) == list(zip(history["epoch"], history["val_accuracy"]))
        assert [m.step for m in store.get_metric_history(run.info.run_id, "train_loss")] == list(history["epoch"])
        tags = run.data.tags
        assert tags["cifarflow.dataset"] == "cifar10" and tags["mlflow.parentRunId"] == study.info.run_id
        with np.load(folder / "val_predictions.npz") as stored:
            assert tags["cifarflow.val_images_sha256"] == str(stored["images_sha256"])
        for key in ("data_sha256", "code_fingerprint", "config_hash"):
            assert re.fullmatch(r"[0-9a-f]{64}", tags[f"cifarflow.{key}"]), key
        assert tags["cifarflow.git_commit"] == "unknown"  # the study's copy of the project is no git checkout
        files = artifact_files(store, run.info.run_id)
        assert sorted(files) == sorted(["history.csv", "learning_curves.png", "val_predictions.npz", "training.json",
                                        "validation.json", "calibration.json"])
        counts["params"] += len(run.data.params)
        counts["metric values"] += sum(len(store.get_metric_history(run.info.run_id, key)) for key in run.data.metrics)
        counts["artifacts"] += len(files)
    files = artifact_files(store, study.info.run_id)
    assert {"selection/selection.json", "test/metrics.json", "test/predictions.csv", "robustness/summary.json",
            "report/analysis.html", "report/model_card.md", "report/model_card.html", "trainings.csv"} <= set(files)
    test = json.loads((tiny_study / "results/test/metrics.json").read_text())
    assert study.data.metrics["test.accuracy"] == test["accuracy"]
    assert "robustness.mean_corruption_accuracy" in study.data.metrics

    version = store.get_model_version("cifarflow-cifar10", "1")
    assert version.run_id == study.info.run_id and study.data.tags["cifarflow.model_version"] == "1"
    import mlflow

    mlflow.set_tracking_uri(store_of(tiny_study))
    info = mlflow.models.get_model_info("models:/cifarflow-cifar10/1")
    assert "keras" in info.flavors and info.signature is not None
    spec = info.signature.inputs.to_dict()[0]["tensor-spec"]
    assert spec["dtype"] == "uint8" and list(spec["shape"]) == [-1, 32, 32, 3]  # raw images, any batch size
    assert info.saved_input_example_info is not None
    counts["params"] += len(study.data.params)
    counts["metric values"] += len(study.data.metrics)
    counts["artifacts"] += len(files)
    record = json.loads((tiny_study / "results/tracking/study.json").read_text())
    assert record["study_run"] == study.info.run_id and record["model_version"] == "1"
    print(f"\nthe tiny study's MLflow store: {counts}")


def test_a_rerun_with_nothing_changed_plans_and_logs_nothing(own_tiny_study, cifar10_archive):
    assert planned_jobs(snakemake(own_tiny_study, "-n", *archive_config(cifar10_archive))) == []
    store = client(store_of(own_tiny_study))
    before = sorted(run.info.run_id for run in all_runs(store))
    log = own_tiny_study / "logs/track_trainings.log"
    with ThreadPoolExecutor(1) as background, tracking.one_writer(store_of(own_tiny_study)):
        # another job (another study sharing this store) is writing it: the tracking job waits its turn
        rerun = background.submit(snakemake, own_tiny_study, "--cores", "1", *archive_config(cifar10_archive),
                                  "--forcerun", "track_trainings", "track_study", "--", "results/tracking/study.json")
        deadline = time.monotonic() + 240
        while not (log.exists() and "another job is writing this store" in log.read_text()):
            assert time.monotonic() < deadline and not rerun.done(), "the tracking job did not wait for the store's lock"
            time.sleep(0.5)
        time.sleep(2)
        assert not rerun.done() and "already tracked" not in log.read_text()
        # the lock is let go here, then the executor waits for the job
    rerun.result()
    assert sorted(run.info.run_id for run in all_runs(store)) == before
    assert [str(v.version) for v in store.search_model_versions("name = 'cifarflow-cifar10'")] == ["1"]
    assert "0 new run(s), 3 already tracked" in (own_tiny_study / "logs/track_trainings.log").read_text()
    assert json.loads((own_tiny_study / "results/tracking/study.json").read_text())["logged"] == "already tracked"


def test_a_retrained_training_logs_a_new_run_and_keeps_the_old(tiny_study, tmp_path):
    """The tracking functions on a store of their own: the same results twice log once; a training whose results
    changed (as a retraining changes its timing) gets a second run, and the first stays."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store = tracking.client_for(uri)
    experiment = tracking.experiment_id(store, "retrained", (tmp_path / "artifacts").as_uri())
    folders = {}
    for variant, seed in TRAININGS:
        folders[variant, seed] = tmp_path / variant / str(seed)
        shutil.copytree(tiny_study / f"results/variants/{variant}/seed-{seed}", folders[variant, seed])

    def log_all():
        return {key: tracking.log_training(store, experiment, tracking.training_run(folder, {}))
                for key, folder in folders.items()}

    first = log_all()
    assert all(new for _, new in first.values())
    again = log_all()
    assert again == {key: (run_id, False) for key, (run_id, _) in first.items()}
    summary = folders["small", 0] / "training.json"
    record = json.loads(summary.read_text())
    summary.write_text(json.dumps(record | {"training_seconds": record["training_seconds"] + 1.0}))
    third = log_all()
    assert third["small", 0][1] and third["small", 0][0] != first["small", 0][0]
    assert {key: value for key, value in third.items() if key != ("small", 0)} == {
        key: (run_id, False) for key, (run_id, _) in first.items() if key != ("small", 0)}
    runs = {run.info.run_id: run for run in all_runs(store, "retrained")}
    assert len(runs) == 4 and first["small", 0][0] in runs
    assert runs[third["small", 0][0]].data.metrics["training_seconds"] == record["training_seconds"] + 1.0


def test_tracking_false_plans_no_tracking_job(tmp_path):
    def planned_rules(folder: str, *configs: Path) -> set[str]:
        (tmp_path / folder).mkdir()
        return {job.split(":")[0] for job in planned_jobs(dry_run_of_repo(tmp_path / folder, *FAKE_ARCHIVE, configs=configs))}

    assert {"track_trainings", "track_study"} <= planned_rules("on", REPO / "config.yaml", TINY_CONFIG)
    off = edited_config(tmp_path, lambda config: config.update(tracking=False))
    planned = planned_rules("off", REPO / "config.yaml", off)
    assert "train" in planned and not {rule for rule in planned if rule.startswith("track_")}


FAKE_ARCHIVE = ["--config", "archive=/nonexistent/cifar-10-python.tar.gz", f"archive_sha256={'a' * 64}"]  # a dry run reads none


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 that refuses connections: bound, never listening, for as long as the test runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_an_unreachable_tracking_server_fails_the_tracking_rule_alone_in_one_line(own_tiny_study, cifar10_archive,
                                                                                   closed_port):
    uri = f"http://127.0.0.1:{closed_port}"
    # the study's results; the rule graph, which is drawn from the whole config, is redrawn for any config change
    results = {path: path.stat().st_mtime_ns for path in (own_tiny_study / "results").rglob("*")
               if path.is_file() and not {"tracking", "mlflow", "pipeline"} & set(path.parts)}
    started = time.monotonic()
    failed = snakemake(own_tiny_study, "--cores", "2", "--config", f"tracking_uri={uri}",
                       *archive_config(cifar10_archive)[1:], check=False)
    assert failed.returncode != 0 and time.monotonic() - started < 120
    output = failed.stdout + failed.stderr
    said = [line for line in output.splitlines() if "cannot be reached" in line]
    assert said and said[0] == (f"ERROR: the tracking server {uri} cannot be reached ([Errno 111] Connection refused): "
                                "nothing was logged; the study's results are intact (start the server, set "
                                "tracking_uri, or tracking: false)")
    assert "Traceback" not in output and "Error in rule track_trainings" in output
    assert {path: path.stat().st_mtime_ns for path in results} == results  # nothing else reran or changed
    intact = snakemake(own_tiny_study, "-n", "--config", "tracking=False", *archive_config(cifar10_archive)[1:])
    assert set(planned_jobs(intact)) <= {"rule_graph", "plot_job_costs", "all"}  # the config drawn, as above


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chromium() -> str:
    return shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"


def rendered_text(url: str, profile: Path) -> str:
    """The text of the page at ``url`` as headless Chromium renders it (scripts run), tags and scripts removed."""
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--window-size=1600,1000", "--virtual-time-budget=30000", "--dump-dom", url]
    page = subprocess.run(command, capture_output=True, text=True, timeout=180).stdout
    page = re.sub(r"<script.*?</script>|<style.*?</style>", " ", page, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


def as_javascript(value: float) -> str:
    """A number as JavaScript writes it (1 for 1.0, otherwise the shortest repr, as Python's)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@pytest.fixture
def mlflow_server(tiny_study, tmp_path):
    """`mlflow server` on 127.0.0.1 (a free port) on a copy of the tiny study's store; yields its address."""
    shutil.copy(tiny_study / "results/mlflow/mlflow.db", tmp_path / "mlflow.db")
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen([MLFLOW, "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
                               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(address + "/health", timeout=2):
                    break
            except OSError:
                assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
                time.sleep(0.5)
        else:
            raise AssertionError("mlflow server did not answer within 120 s")
        yield address
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        log.close()


@pytest.mark.timeout(1800)
def test_mlflow_server_shows_every_training_with_its_metrics_in_chromium(tiny_study, mlflow_server, tmp_path):
    store = client(mlflow_server)
    experiment = store.get_experiment_by_name(EXPERIMENT)
    assert experiment.tags.get("mlflow.experimentKind") == "custom_model_development"
    trainings = pd.read_csv(tiny_study / "results/tracking/trainings.csv")
    runs = ",".join(f'"{run_id}"' for run_id in trainings["run_id"])
    page = rendered_text(f"{mlflow_server}/#/compare-runs?runs=[{runs}]&experiments=[\"{experiment.experiment_id}\"]",
                         tmp_path / "profile")
    assert f"Comparing {len(trainings)} Runs from 1 Experiment" in page, page[:2000]
    for row in trainings.itertuples():
        assert f"{row.variant} seed {row.seed}" in page
    assert "calibration.calibrated.ece" in page and "train.lr" in page and "learning_curves.png" in page
    for row in trainings.itertuples():  # each training's own page: all of its metrics with their values
        validation = json.loads((tiny_study / f"results/variants/{row.variant}/seed-{row.seed}/validation.json").read_text())
        history = pd.read_csv(tiny_study / f"results/variants/{row.variant}/seed-{row.seed}/history.csv")
        run_page = rendered_text(f"{mlflow_server}/#/experiments/{experiment.experiment_id}/runs/{row.run_id}",
                                 tmp_path / "profile")
        assert f"{row.variant} seed {row.seed}" in run_page and "Parent run study" in run_page
        for name, value in (("final.val_accuracy", validation["val_accuracy"]),
                            ("final.val_log_loss", validation["val_log_loss"]),
                            ("val_accuracy", history["val_accuracy"].iloc[-1]), ("train_loss", history["loss"].iloc[-1])):
            assert f" {name} {as_javascript(value)} " in run_page, (name, run_page[:3000])
    listing = rendered_text(f"{mlflow_server}/#/experiments/{experiment.experiment_id}/runs", tmp_path / "profile")
    assert "Training runs" in listing and "study" in listing
    assert f"{len(trainings) + 1} matching runs" in listing  # every training, nested under the study run


# --- two runs of the study, one variant changed --------------------------------------------------------------------


@pytest.fixture(scope="module")
def changed_study(tiny_study, cifar10_archive, tmp_path_factory):
    """The tiny study run again in a copy with one variant changed (small learns 1,000 times slower) and the first
    run as `compare_with`: only that variant retrains. Tracking is off here: its own tests are above."""
    folder = tmp_path_factory.mktemp("changed")
    study = copy_of_study(tiny_study, folder / "study")
    shutil.rmtree(study / "results/mlflow")
    shutil.rmtree(study / "results/tracking")
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["variants"]["small"]["train"] = {"lr": 1.0e-6}
    config.update(tracking=False, compare_with=str(tiny_study))
    path = folder / "changed.yaml"
    path.write_text(yaml.safe_dump(config))
    planned = planned_jobs(snakemake(study, "-n", *archive_config(cifar10_archive), "--",
                                     "results/figures/selection/study_comparison.png", config=path))
    snakemake(study, "--cores", "2", *archive_config(cifar10_archive), "--", "results/figures/selection/study_comparison.png",
              "results/figures/selection/study_comparison.html", config=path)
    return study, planned


def test_the_changed_variant_alone_retrains(changed_study):
    _, planned = changed_study
    assert [job for job in planned if job.startswith(("train:", "validate:"))] == [
        "train:variant=small, seed=0", "validate:variant=small, seed=0"]


@pytest.mark.timeout(1800)
def test_compare_finds_exactly_the_changed_variant(tiny_study, changed_study, tmp_path, capsys):
    study, _ = changed_study
    assert cli.main(["compare", str(tiny_study), str(study), "--out", str(tmp_path), "--resamples", "500"]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(tmp_path / "comparison.csv")
    validation = table[table["split"] == "validation"].set_index("variant")
    assert list(validation.index) == ["small", "small_augmented"]
    changed = validation[validation["recipe_changed"] | validation["predictions_changed"]]
    assert list(changed.index) == ["small"]
    small = validation.loc["small"]
    assert small["verdict"] == "worse" and small["delta_accuracy_high"] < 0 and small["delta_log_loss_low"] > 0
    same = validation.loc["small_augmented"]
    assert same["verdict"] == "tied" and same["delta_accuracy"] == 0 and same["mcnemar_p"] == "1 1"
    test = table[table["split"] == "test"]
    assert len(test) == 1 and test.iloc[0]["verdict"] in ("better", "worse", "tied")
    assert "small " in printed and "worse" in printed and (tmp_path / "comparison.png").stat().st_size > 5000
    # the report's comparison (compare_with) says the same
    report = pd.read_csv(study / "results/comparison/comparison.csv")
    assert list(report["verdict"]) == list(pd.read_csv(tmp_path / "comparison.csv")["verdict"])
    # and shows it as a table too: one row per compared pair, the changed variant's row highlighted
    page = (study / "results/figures/selection/study_comparison.html").read_text()
    assert page.count("<tr class=\"highlight\">") == (report["verdict"] != "tied").sum() >= 1
    assert page.count("<tr") == len(report) + 1 and "<td>small</td>" in page and "<td>worse</td>" in page
    assert (tmp_path / "comparison.html").read_text().count("<tr") == len(report) + 1
    # and the first study read back from its MLflow study run gives the same validation rows
    record = json.loads((tiny_study / "results/tracking/study.json").read_text())
    assert cli.main(["compare", f"runs:/{record['study_run']}", str(study), "--tracking-uri", store_of(tiny_study),
                     "--resamples", "500", "--out", str(tmp_path / "from_mlflow")]) == 0
    from_mlflow = pd.read_csv(tmp_path / "from_mlflow/comparison.csv")
    pd.testing.assert_frame_equal(from_mlflow.drop(columns=["a"]), table.drop(columns=["a"]))


def test_compare_refuses_studies_on_other_images(tiny_study, tmp_path, capsys):
    other = tmp_path / "other"
    for variant, seed in TRAININGS:
        source = tiny_study / f"results/variants/{variant}/seed-{seed}"
        target = other / f"results/variants/{variant}/seed-{seed}"
        target.mkdir(parents=True)
        for name in ("validation.json", "training.json"):
            shutil.copy(source / name, target / name)
        with np.load(source / "val_predictions.npz") as stored:
            arrays = dict(stored)
        arrays["images_sha256"] = np.array("f" * 64)  # other images, same labels
        np.savez(target / "val_predictions.npz", **arrays)
    assert cli.main(["compare", str(tiny_study), str(other)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("cifarflow compare: ") and "not evaluated on the same validation images" in error
    assert len(error.splitlines()) == 1
    with pytest.raises(compare.CompareError, match="nothing was compared"):
        compare.run(str(tiny_study), str(other))


def test_a_tracking_server_is_checked_with_one_request_before_anything_is_logged(closed_port, http_server):
    started = time.monotonic()
    with pytest.raises(tracking.TrackingError, match=rf"^the tracking server http://127.0.0.1:{closed_port} cannot be "
                                                      r"reached \(\[Errno 111\] Connection refused\): nothing was logged"):
        tracking.client_for(f"http://127.0.0.1:{closed_port}")
    assert time.monotonic() - started < 5  # no retries with back-off
    with pytest.raises(tracking.TrackingError, match=r"answered HTTP 404 to /health: nothing was compared"):
        tracking.check_reachable(http_server.url("/").rstrip("/"), consequence="nothing was compared")
    assert [request["path"] for request in http_server.requests] == ["/health"]
    tracking.check_reachable("sqlite:///nowhere/mlflow.db")  # a local store needs no check
