"""Selection over seeds: every training's validation results gathered per variant, the statistics of
``statistics.py`` on them, and which seed of the selected variant is exported."""

import numpy as np
import pandas as pd

from .statistics import Runs, compare_all, select_with_ties

# What the exported model is: among the selected variant's seeds, the best on the selection metric (then the lowest
# seed). Its test figures are reported beside the mean and spread of all seeds, so the choice inflates nothing.
EXPORT_RULE = "the seed with the best {metric} (ties: the lowest seed)"


def trainings_table(metrics: list[dict]) -> pd.DataFrame:
    """One row per training (variant, seed) with its validation metrics and training record."""
    table = pd.DataFrame(metrics)
    columns = ["variant", "seed"] + [column for column in table.columns if column not in ("variant", "seed")]
    return table[columns].sort_values(["variant", "seed"]).reset_index(drop=True)


def seed_runs(metrics: list[dict], predictions: list[dict]) -> dict[str, Runs]:
    """Each variant's validation predictions over its seeds (``predictions[i]``: labels, probabilities and the images'
    digest of the training of ``metrics[i]``)."""
    grouped: dict[str, list[tuple[int, dict, dict]]] = {}
    for record, stored in zip(metrics, predictions):
        grouped.setdefault(record["variant"], []).append((record["seed"], record, stored))
    runs = {}
    for variant, items in sorted(grouped.items()):
        items.sort(key=lambda item: item[0])
        labels, images = items[0][2]["labels"], str(items[0][2]["images_sha256"])
        if any(not np.array_equal(stored["labels"], labels) or str(stored["images_sha256"]) != images
               for _, _, stored in items):
            raise ValueError(f"{variant}: its seeds were validated on different images; rerun its validate jobs")
        runs[variant] = Runs(
            variant=variant,
            seeds=tuple(seed for seed, _, _ in items),
            labels=labels,
            probabilities=np.stack([stored["probabilities"] for _, _, stored in items]),
            parameters=int(items[0][1]["parameters"]),
            training_seconds=float(np.mean([record["training_seconds"] for _, record, _ in items])),
            images=images,
        )
    return runs


def export_seed(trainings: pd.DataFrame, variant: str, metric: str) -> int:
    rows = trainings[trainings["variant"] == variant]
    ascending = metric == "val_log_loss"
    return int(rows.sort_values([metric, "seed"], ascending=[ascending, True]).iloc[0]["seed"])


def variants_table(ranked: pd.DataFrame, trainings: pd.DataFrame) -> pd.DataFrame:
    """The ranked summary, plus the mean over seeds of every other per-training figure (gaps, epochs, speed)."""
    means = trainings.drop(columns=["seed"]).groupby("variant").mean(numeric_only=True)
    extra = [column for column in means.columns if column not in ranked.columns]
    return ranked.merge(means[extra], left_on="variant", right_index=True, how="left")


def select(metrics: list[dict], predictions: list[dict], metric: str, level: float, resamples: int, seed: int,
           tie_rule: str) -> dict:
    """Everything selection decides: the tables (variants, trainings, pairs of variants) and the selection record,
    with the exported seed."""
    trainings = trainings_table(metrics)
    summary, pairs = compare_all(seed_runs(metrics, predictions), level, resamples, seed, metric)
    ranked, selection = select_with_ties(summary, pairs, metric, tie_rule)
    chosen = selection["variant"]
    exported = export_seed(trainings, chosen, metric)
    selection |= {
        "level": level,  # the intervals' level, also when one variant leaves no pair to compare
        "seeds": [int(value) for value in trainings.loc[trainings["variant"] == chosen, "seed"]],
        "exported_seed": exported,
        "export_rule": EXPORT_RULE.format(metric=metric),
    }
    return {
        "variants": variants_table(ranked, trainings),
        "trainings": trainings,
        "pairs": pairs,
        "comparisons": pairs[pairs["variant"] == chosen].reset_index(drop=True),
        "selection": selection,
    }
