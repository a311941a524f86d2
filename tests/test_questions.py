"""The seed's questions answered from a paired-comparison table: every outcome, the config's order, a question whose
pair was not trained, and the names checked before any job runs."""

import pandas as pd
import pytest

from cifarflow.errors import UserError
from cifarflow.select.questions import COLUMNS, answer_questions, check_questions

VARIANTS = {"base": {}, "augmented": {}, "deeper": {}, "heavy_l2": {}}


def pair(variant, other, verdict, delta):
    return {"variant": variant, "other": other, "verdict": verdict, "delta_accuracy": delta,
            "delta_accuracy_low": delta - 0.01, "delta_accuracy_high": delta + 0.01, "delta_log_loss": -delta,
            "delta_log_loss_low": -delta - 0.02, "delta_log_loss_high": -delta + 0.02, "mcnemar_p_max": 0.5,
            "metric": "val_accuracy", "level": 0.05}


PAIRS = pd.DataFrame([
    pair("augmented", "base", "better", 0.05), pair("base", "augmented", "worse", -0.05),
    pair("deeper", "base", "worse", -0.03), pair("base", "deeper", "better", 0.03),
    pair("heavy_l2", "base", "worse", -0.60), pair("base", "heavy_l2", "better", 0.60),
    pair("heavy_l2", "deeper", "tied", 0.001),
])


def question(claim, variant, other, expected, seed=""):
    return {"claim": claim, "variant": variant, "other": other, "expected": expected, "seed": seed}


def test_each_verdict_gives_its_outcome_in_the_configs_order():
    questions = [
        question("augmentation helps", "augmented", "base", "better", "78.5 % against 73.9 %"),
        question("depth helps", "deeper", "base", "better"),
        question("too much weight decay under-fits", "heavy_l2", "base", "worse"),
        question("depth beats weight decay", "heavy_l2", "deeper", "worse"),
        question("the other way round", "base", "augmented", "better"),
    ]
    answers = answer_questions(questions, PAIRS)
    assert list(answers.columns) == COLUMNS
    assert list(answers["claim"]) == [q["claim"] for q in questions]
    for column in ("variant", "other", "expected"):
        assert list(answers[column]) == [q[column] for q in questions]
    assert list(answers["verdict"]) == ["better", "worse", "worse", "tied", "worse"]
    assert list(answers["outcome"]) == ["holds", "reversed", "holds", "not shown (tied)", "reversed"]
    assert answers.loc[0, "seed_finding"] == "78.5 % against 73.9 %"
    assert answers.loc[1, "seed_finding"] == ""
    # the figures of the ordered pair the question names, not of its reverse
    assert list(answers["delta_accuracy"]) == pytest.approx([0.05, -0.03, -0.60, 0.001, -0.05])
    assert answers.loc[2, "delta_log_loss_high"] == pytest.approx(0.62)
    assert set(answers["metric"]) == {"val_accuracy"} and set(answers["level"]) == {0.05}


def test_a_question_whose_pair_was_not_trained_is_kept_and_said_so():
    without_seed = {"claim": "augmentation helps", "variant": "augmented", "other": "base", "expected": "better"}
    answers = answer_questions([question("dropout helps", "dropout", "base", "better"), without_seed], PAIRS)
    assert list(answers["outcome"]) == ["not in this study", "holds"]
    assert answers.loc[1, "seed_finding"] == ""  # a question need not quote the seed
    assert answers.loc[0, ["verdict", "delta_accuracy", "metric"]].isna().all()


def test_no_questions_give_an_empty_table_with_every_column():
    answers = answer_questions([], PAIRS)
    assert answers.empty and list(answers.columns) == COLUMNS


def test_a_question_must_name_two_different_variants_of_the_config():
    check_questions([question("fine", "augmented", "base", "better")], VARIANTS)
    with pytest.raises(UserError, match=r"question 'typo' names 'agumented', not in variants: augmented, base, deeper"):
        check_questions([question("typo", "agumented", "base", "better")], VARIANTS)
    with pytest.raises(UserError, match=r"names 'x', 'y', not in variants"):
        check_questions([question("both", "x", "y", "better")], VARIANTS)
    with pytest.raises(UserError, match="question 'self' compares base with itself"):
        check_questions([question("self", "base", "base", "better")], VARIANTS)
