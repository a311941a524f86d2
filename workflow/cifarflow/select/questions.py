"""The seed study's questions, as data: each claim names two variants that differ in one factor and the direction
the seed found (``variant`` better or worse than ``other``). Its answer here is the paired verdict of the two on the
validation images (``pairwise.csv``), on the study's selection metric: the seed's finding holds, is not shown
(tied), or is reversed."""

import pandas as pd

from ..errors import UserError

DELTAS = ["delta_accuracy", "delta_accuracy_low", "delta_accuracy_high", "delta_log_loss", "delta_log_loss_low",
          "delta_log_loss_high", "mcnemar_p_max"]
COLUMNS = ["claim", "variant", "other", "expected", "verdict", "outcome", *DELTAS, "metric", "level", "seed_finding"]


def check_questions(questions: list[dict], variants: dict) -> None:
    """Every question names two different variants of the config (before any job runs)."""
    for question in questions:
        named = [question["variant"], question["other"]]
        unknown = [name for name in named if name not in variants]
        if unknown:
            raise UserError(f"question {question['claim']!r} names {', '.join(map(repr, unknown))}, not in variants: "
                            f"{', '.join(sorted(variants))}")
        if named[0] == named[1]:
            raise UserError(f"question {question['claim']!r} compares {named[0]} with itself")


def outcome(expected: str, verdict: str | None) -> str:
    if verdict is None:
        return "not in this study"
    if verdict == "tied":
        return "not shown (tied)"
    return "holds" if verdict == expected else "reversed"


def answer_questions(questions: list[dict], pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per question, in the config's order: the paired comparison of its two variants and the outcome. A
    question whose variants were not both trained (``only_variants``) is kept, marked "not in this study"."""
    rows = []
    for question in questions:
        found = pairs[(pairs["variant"] == question["variant"]) & (pairs["other"] == question["other"])]
        pair = found.iloc[0] if len(found) else None
        verdict = None if pair is None else pair["verdict"]
        row = {"claim": question["claim"], "variant": question["variant"], "other": question["other"],
               "expected": question["expected"], "verdict": verdict, "outcome": outcome(question["expected"], verdict),
               "seed_finding": question.get("seed", "")}
        for column in DELTAS + ["metric", "level"]:
            row[column] = None if pair is None else pair[column]
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)
