"""The CPU study's config (configs/cpu.yaml) end to end on the tiny archive, at a tiny budget and with half of its
variants: every declared question whose two variants trained is answered from the paired comparisons, the others are
marked as not in this study, in questions.csv, the notebook, the figure and the model card. (That the whole CPU study
can answer every question is checked on its config: each question names two of its variants.)"""

import json

import pandas as pd
import pytest
import yaml

from conftest import REPO, TINY_CONFIG, archive_config, copy_project, snakemake
from cifarflow.config import all_variants, deep_merge

CPU_STUDY = yaml.safe_load((REPO / "configs/cpu.yaml").read_text())
QUICK = yaml.safe_load((REPO / "config.yaml").read_text())["variants"]["quick"]
# Trained here: three of the seven questions have both variants (augmentation, L2 against none, a small L2 against none)
TRAINED = ["quick", "quick_no_augment", "quick_l2_0", "quick_l2_6.65e-5"]


def verdict_of(row: pd.Series) -> str:
    """The paired verdict on validation accuracy, from the interval of the difference (computed here, not imported)."""
    low, high = row["delta_accuracy_low"], row["delta_accuracy_high"]
    return "better" if low > 0 else "worse" if high < 0 else "tied"


@pytest.fixture(scope="module")
def cpu_study(tmp_path_factory, cifar10_archive):
    project = copy_project(tmp_path_factory.mktemp("cpu-study"))
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["variants"] = CPU_STUDY["variants"] | {"quick": deep_merge(QUICK, {"train": {"batch_size": 50, "epochs": 2}})}
    config.update(only_variants=TRAINED, questions=CPU_STUDY["questions"], robustness_images=20, bootstrap_resamples=200)
    path = project / "cpu-tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    snakemake(project, "--cores", "2", *archive_config(cifar10_archive), "--", "results/notebook/analysis.ipynb",
              "results/figures/selection/questions.png", "results/export/model_card.md", config=path)
    return project


def test_cpu_study_variants_differ_from_quick_in_one_factor():
    config = deep_merge(yaml.safe_load((REPO / "config.yaml").read_text()), CPU_STUDY)
    variants = all_variants(config)
    assert sorted(variants) == sorted(CPU_STUDY["only_variants"])
    for name, settings in variants.items():
        differs = {key for key in settings if key != "name" and settings[key] != variants["quick"][key]}
        assert len(differs - {"dropout"}) <= 1 and (name == "quick") == (not differs), (name, differs)
    for question in CPU_STUDY["questions"]:
        assert {question["variant"], question["other"]} <= set(variants)


def test_every_question_is_answered_from_the_paired_comparisons(cpu_study):
    questions = pd.read_csv(cpu_study / "results/selection/questions.csv")
    pairs = pd.read_csv(cpu_study / "results/selection/pairwise.csv")
    assert list(questions["claim"]) == [q["claim"] for q in CPU_STUDY["questions"]]
    trained = questions["variant"].isin(TRAINED) & questions["other"].isin(TRAINED)
    assert trained.sum() == 3
    untrained = questions[~trained]
    assert untrained["verdict"].isna().all() and (untrained["outcome"] == "not in this study").all()
    for question in questions[trained].to_dict("records"):
        [pair] = pairs[(pairs["variant"] == question["variant"]) & (pairs["other"] == question["other"])].to_dict("records")
        verdict = verdict_of(pair)
        assert question["verdict"] == verdict
        assert question["delta_accuracy"] == pytest.approx(pair["delta_accuracy"], abs=1e-12)
        expected = {"better": "holds", "worse": "holds", "tied": "not shown (tied)"}[verdict]
        if verdict != "tied" and verdict != question["expected"]:
            expected = "reversed"
        assert question["outcome"] == expected


def test_the_notebook_lists_every_question_with_its_verdict(cpu_study):
    questions = pd.read_csv(cpu_study / "results/selection/questions.csv")
    notebook = json.loads((cpu_study / "results/notebook/analysis.ipynb").read_text())
    texts = ["".join(output.get("data", {}).get("text/markdown", "")) for cell in notebook["cells"]
             for output in cell.get("outputs", [])]
    [section] = [text for text in texts if "Each question compares two variants" in text]
    lines = [line for line in section.splitlines() if line.startswith("- *")]
    assert len(lines) == len(questions)
    for line, question in zip(lines, questions.itertuples()):
        if pd.isna(question.verdict):
            assert line == f"- *{question.claim}* ({question.variant} against {question.other}): not tested (a variant " \
                           "of the pair is not in this study)."
            continue
        assert line.startswith(f"- *{question.claim}*: {question.variant} against {question.other}")
        outcome = question.outcome.split(" (")[0]
        assert f"**{outcome}**" in line and f"({question.verdict} on validation accuracy)" in line
    [where] = [text for text in texts if text.startswith("The findings below come from")]
    assert "whitened_cnn" in where and "2 epochs of 200 images" in where
    assert "the CPU of a machine with" in where and "1 thread per training" in where
    assert "The seed study's own LeNets at its budget need a GPU for their answers (config.yaml's 36 trainings" in where


def test_the_notebook_says_which_learning_curves_flattened(cpu_study):
    """Each variant is named as flattened or still rising by its last epoch's gain, recomputed from its history."""
    notebook = json.loads((cpu_study / "results/notebook/analysis.ipynb").read_text())
    texts = ["".join(output.get("data", {}).get("text/markdown", "")) for cell in notebook["cells"]
             for output in cell.get("outputs", [])]
    [section] = [text for text in texts if text.startswith("Each training's last epoch")]
    flattened, rising = section.split("still rising")
    for variant in TRAINED:
        history = pd.read_csv(cpu_study / f"results/variants/{variant}/seed-0/history.csv")
        gain = 100 * (history.val_accuracy.iloc[-1] - history.val_accuracy.iloc[-2])
        if gain >= 1.0:
            assert f"{variant} ({gain:+.1f} points)" in rising
        else:
            assert variant in flattened.split(" for ")[1].split(";")[0].split(", ") and f" {variant} (" not in rising


def test_the_model_card_and_the_figure_answer_the_questions(cpu_study):
    card = (cpu_study / "results/export/model_card.md").read_text()
    questions = pd.read_csv(cpu_study / "results/selection/questions.csv")
    assert "## The seed study's conclusions, tested in this study" in card
    for question in questions.itertuples():
        assert f"| {question.claim} | {question.variant} vs {question.other} |" in card
        if pd.isna(question.verdict):
            assert f"| {question.claim} | {question.variant} vs {question.other} |  | not in this study |" in card
    assert (cpu_study / "results/figures/selection/questions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_question_that_names_an_unknown_variant_is_refused(tmp_path, cifar10_archive):
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["questions"] = [{"claim": "typo", "variant": "smal", "other": "small", "expected": "better"}]
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", *archive_config(cifar10_archive), config=path, check=False)
    assert result.returncode != 0
    assert "question 'typo' names 'smal', not in variants: small, small_augmented" in result.stdout + result.stderr
