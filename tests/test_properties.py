"""Properties that hold for any input hypothesis draws: a damaged archive is unpacked exactly or refused in one line;
calibration and the paired statistics keep their invariants. Derandomized: every run draws the same examples."""

import runpy
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from archives import cifar10_members, write_tar
from cifarflow.evaluate.calibration import TEMPERATURE_RANGE, calibration_metrics, fit_temperature, scale_probabilities
from cifarflow.select.statistics import Runs, compare_all, verdict
from conftest import REPO

SCRIPTS = REPO / "workflow" / "scripts"
SPLITS = ("train", "val", "test")
BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def bounded(examples: int, **options) -> settings:
    """Fast and the same in every run: a fixed number of examples, derandomized, nothing kept between runs."""
    return settings(max_examples=examples, derandomize=True, deadline=None, database=None, **options)


class Named(dict):
    """Snakemake's named lists as a rule script reads them: ``x.name`` and ``x["name"]``."""

    __getattr__ = dict.__getitem__


def run_rule_script(name: str, **snakemake) -> int:
    """Run workflow/scripts/{name}.py as its rule does, in this process; its exit status."""
    if str(SCRIPTS) not in sys.path:  # where a rule script finds its `stage` module
        sys.path.insert(0, str(SCRIPTS))
    streams = sys.stdout, sys.stderr  # the stage's logging puts back the interpreter's own streams
    try:
        runpy.run_path(str(SCRIPTS / f"{name}.py"), init_globals={"snakemake": Named(snakemake)}, run_name="__main__")
        return 0
    except SystemExit as exit:
        return exit.code
    finally:
        sys.stdout, sys.stderr = streams


def unpack_and_split(archive: Path, folder: Path) -> int:
    """The unpack rule, then (if it succeeded) the normalize rule that makes the splits, on ``archive``."""
    raw = [folder / "raw" / f"{batch}.npz" for batch in BATCHES]
    status = run_rule_script("unpack", input=Named(archive=archive),
                             output=Named(batches=raw, classes=folder / "classes.json"), log=[str(folder / "unpack.log")],
                             params=Named(dataset="cifar10", label_mode="fine"), config={})
    if status:
        return status
    return run_rule_script("normalize", input=Named(batches=raw), log=[str(folder / "normalize.log")],
                           output=Named({split: folder / f"{split}.npz" for split in SPLITS}, stats=folder / "stats.json"),
                           params=Named(dataset="cifar10", validation_batches=["data_batch_1"], validation_size=0),
                           config={})


def outputs(folder: Path) -> dict[str, bytes]:
    """What the two rules wrote, as bytes: each split's arrays (dtype, shape, content), the class names, the stats."""
    found = {}
    for split in SPLITS:
        with np.load(folder / f"{split}.npz") as data:
            found[split] = b"".join(f"{data[key].dtype}{data[key].shape}".encode() + data[key].tobytes()
                                    for key in ("images", "labels"))
    return found | {name: (folder / name).read_bytes() for name in ("classes.json", "stats.json")}


class Pristine:
    """A valid tiny archive's bytes and what the rules make of it (shown short in a failing example)."""

    def __init__(self, data: bytes, made: dict[str, bytes]):
        self.data, self.made = data, made

    def __repr__(self) -> str:
        return f"Pristine({len(self.data):,} bytes)"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Pristine:
    folder = tmp_path_factory.mktemp("pristine")
    archive = write_tar(folder / "cifar-10-python.tar.gz", cifar10_members(per_batch=10))
    assert unpack_and_split(archive, folder) == 0
    with np.load(folder / "train.npz") as train:
        assert train["images"].shape == (40, 32, 32, 3)  # batches 2-5; batch 1 is the validation split
    return Pristine(archive.read_bytes(), outputs(folder))


def check_exact_or_refused(damaged: bytes, pristine_outputs: dict[str, bytes], capfd) -> None:
    capfd.readouterr()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        archive = folder / "cifar-10-python.tar.gz"
        archive.write_bytes(damaged)
        status = unpack_and_split(archive, folder)
        terminal = capfd.readouterr()
        event("unpacked" if status == 0 else "refused")
        if status == 0:
            assert outputs(folder) == pristine_outputs, "a damaged archive was unpacked into other images"
            return
        lines = (terminal.out + terminal.err).strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ERROR: "), lines
        assert "Traceback" not in (folder / "unpack.log").read_text()  # an anticipated refusal, not a crash
        assert sorted(path.name for path in folder.rglob("*") if path.is_file()) == [archive.name, "unpack.log"]


@bounded(60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=3))
def test_a_flipped_archive_is_unpacked_exactly_or_refused_in_one_line(pristine, capfd, flips):
    damaged = bytearray(pristine.data)
    for where, mask in flips:
        damaged[int(where * len(damaged))] ^= mask
    check_exact_or_refused(bytes(damaged), pristine.made, capfd)


@bounded(25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keep=st.floats(0, 1, exclude_max=True))
def test_a_truncated_archive_is_refused_in_one_line(pristine, capfd, keep):
    check_exact_or_refused(pristine.data[:int(keep * len(pristine.data))], pristine.made, capfd)


def probabilities(rows: int, classes: int):
    """(labels, probabilities): rows of positive logits' softmax, some very confident, labels any class."""
    logits = st.lists(st.floats(-30, 30), min_size=rows * classes, max_size=rows * classes)
    labels = st.lists(st.integers(0, classes - 1), min_size=rows, max_size=rows)

    def softmax(values):
        scaled = np.array(values).reshape(rows, classes)
        weights = np.exp(scaled - scaled.max(axis=1, keepdims=True))
        return weights / weights.sum(axis=1, keepdims=True)

    return st.tuples(labels.map(np.array), logits.map(softmax))


@st.composite
def predictions(draw):
    rows, classes = draw(st.integers(1, 40)), draw(st.integers(2, 6))
    return draw(probabilities(rows, classes))


@bounded(80)
@given(predicted=predictions(), bins=st.integers(1, 20))
def test_calibration_errors_are_bounded_and_consistent(predicted, bins):
    labels, probs = predicted
    metrics = calibration_metrics(labels, probs, bins)
    assert 0 <= metrics["ece"] <= metrics["mce"] <= 1
    # the bins' gaps add up at least to the overall gap (triangle inequality)
    assert metrics["ece"] >= abs(metrics["accuracy"] - metrics["mean_confidence"]) - 1e-12
    assert 0 <= metrics["brier"] <= 2 and metrics["nll"] >= 0
    assert 1 / probs.shape[1] - 1e-12 <= metrics["mean_confidence"] <= 1


@bounded(60)
@given(predicted=predictions(), temperature=st.floats(*TEMPERATURE_RANGE))
def test_temperature_scaling_keeps_the_predicted_class_and_the_ranking(predicted, temperature):
    _, probs = predicted
    scaled = scale_probabilities(probs, temperature)
    np.testing.assert_allclose(scaled.sum(axis=1), 1, rtol=1e-12)
    distinct = np.sort(probs, axis=1)[:, -1] - np.sort(probs, axis=1)[:, -2] > 1e-9  # no tie for the top class
    assert np.array_equal(scaled.argmax(axis=1)[distinct], probs.argmax(axis=1)[distinct])
    # softer above 1, sharper below: the top probability moves towards or away from uniform
    top, scaled_top = probs.max(axis=1), scaled.max(axis=1)
    assert np.all(scaled_top <= top + 1e-9) if temperature >= 1 else np.all(scaled_top >= top - 1e-9)


@bounded(30)
@given(predicted=predictions())
def test_the_fitted_temperature_is_in_range_and_no_worse_than_none(predicted):
    labels, probs = predicted
    temperature = fit_temperature(labels, probs)
    assert TEMPERATURE_RANGE[0] <= temperature <= TEMPERATURE_RANGE[1]
    before = calibration_metrics(labels, probs)["nll"]
    after = calibration_metrics(labels, scale_probabilities(probs, temperature))["nll"]
    assert after <= before + 1e-6 * max(1, before)


@st.composite
def two_variants(draw):
    """Two variants' runs on the same images: seeds drawn, probabilities drawn per seed."""
    rows, classes = draw(st.integers(2, 30)), draw(st.integers(2, 4))
    labels = np.array(draw(st.lists(st.integers(0, classes - 1), min_size=rows, max_size=rows)))
    runs = {}
    for variant in ("a", "b"):
        seeds = tuple(sorted(draw(st.lists(st.integers(0, 5), min_size=1, max_size=3, unique=True))))  # as seed_runs
        probs = np.stack([draw(probabilities(rows, classes))[1] for _ in seeds])
        runs[variant] = Runs(variant, seeds, labels, probs, parameters=1, training_seconds=1.0)
    return runs


@bounded(50)
@given(runs=two_variants(), level=st.sampled_from([0.05, 0.1, 0.2]), metric=st.sampled_from(["val_accuracy", "val_log_loss"]))
def test_paired_comparisons_are_antisymmetric_and_contain_their_estimate(runs, level, metric):
    summary, pairs = compare_all(runs, level, resamples=400, seed=3, metric=metric)
    ab, ba = (pairs[pairs["variant"] == name].iloc[0] for name in ("a", "b"))
    swapped = {"better": "worse", "worse": "better", "tied": "tied"}
    assert ba["verdict"] == swapped[ab["verdict"]]
    assert ba["mcnemar_p"] == ab["mcnemar_p"] and 0 <= ab["mcnemar_p_max"] <= 1
    for delta in ("delta_accuracy", "delta_log_loss"):
        assert ba[delta] == pytest.approx(-ab[delta], abs=1e-12)
        assert ba[f"{delta}_low"] == pytest.approx(-ab[f"{delta}_high"], abs=1e-9)
        assert ab[f"{delta}_low"] - 1e-9 <= ab[delta] <= ab[f"{delta}_high"] + 1e-9
    for _, row in summary.iterrows():
        for name in ("val_accuracy", "val_log_loss"):
            assert row[f"{name}_low"] - 1e-9 <= row[name] <= row[f"{name}_high"] + 1e-9
    assert 0 <= ab["p_better"] <= 1 and ab["p_better"] + ba["p_better"] <= 1 + 1e-12


@bounded(100)
@given(low=st.floats(-1, 1), width=st.floats(0, 1), metric=st.sampled_from(["val_accuracy", "val_log_loss"]))
def test_a_verdict_turns_over_with_its_interval(low, width, metric):
    high = low + width
    swapped = {"better": "worse", "worse": "better", "tied": "tied"}
    assert verdict(-high, -low, metric) == swapped[verdict(low, high, metric)]
    assert (verdict(low, high, metric) == "tied") == (low <= 0 <= high)

