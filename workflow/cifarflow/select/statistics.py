"""How sure a comparison of variants is: every variant is trained with several seeds and validated on the same images.

Per variant: the mean over seeds of validation accuracy and log-loss, their standard deviation and a (1 - level)
interval, Student's t over seeds (with a single seed: the percentile bootstrap over images). Per ordered pair of
variants, on the same images: a paired percentile bootstrap of Δaccuracy and Δlog-loss (per image, a's mean over its
seeds minus b's; images resampled), the exact McNemar test per pair of seeds, and a verdict: better or worse when the
interval of the selection metric's Δ excludes 0, tied otherwise. Selection then knows about ties.

Every bootstrap shares one matrix of multinomial resampling weights (resamples × images, counts / n): a resampled
mean is a row of that matrix times the per-image values, so all of them are one matrix product.
"""

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from ..evaluate.calibration import log_loss_per_image

METRICS = ("val_accuracy", "val_log_loss")  # higher accuracy, lower log-loss is better
TIE_RULES = {"best_mean": "kept the best mean", "fewest_parameters": "fewest parameters among the tied",
             "least_training_time": "least training time among the tied"}
WEIGHT_CELLS_PER_CHUNK = 2**19  # images drawn at once: their counts stay in the CPU's cache


@dataclass(frozen=True)
class Runs:
    """One variant's validation predictions, every seed on the same images."""

    variant: str
    seeds: tuple[int, ...]
    labels: np.ndarray  # (n,) int
    probabilities: np.ndarray  # (seeds, n, classes)
    parameters: int
    training_seconds: float  # mean over seeds
    images: str = ""  # the validation images' digest (``splits.image_digest``): which images, in which order

    def __post_init__(self):
        if self.probabilities.ndim != 3 or self.probabilities.shape[:2] != (len(self.seeds), len(self.labels)):
            raise ValueError(f"{self.variant}: probabilities of shape {self.probabilities.shape} do not hold "
                             f"{len(self.seeds)} seed(s) × {len(self.labels)} images × classes")

    @cached_property
    def correct(self) -> np.ndarray:
        """(seeds, n) bool: the top class is the true one."""
        return self.probabilities.argmax(axis=2) == self.labels

    @cached_property
    def log_loss(self) -> np.ndarray:
        """(seeds, n) float64: -log p(true class), the study's log-loss per image (``log_loss_per_image``)."""
        return log_loss_per_image(self.labels, self.probabilities)

    def pooled(self) -> np.ndarray:
        """(n, 2): per image, accuracy and log-loss averaged over the seeds."""
        return np.stack([self.correct.mean(axis=0), self.log_loss.mean(axis=0)], axis=1)


def bootstrap_weights(n_images: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n_images): how often each image is drawn in each resample (n draws with replacement), over n."""
    rng = np.random.default_rng(seed)
    weights = np.empty((resamples, n_images))
    rows_per_chunk = max(1, WEIGHT_CELLS_PER_CHUNK // n_images)
    for start in range(0, resamples, rows_per_chunk):
        rows = min(rows_per_chunk, resamples - start)
        drawn = rng.integers(0, n_images, size=(rows, n_images)) + n_images * np.arange(rows)[:, None]
        weights[start:start + rows] = np.bincount(drawn.ravel(), minlength=rows * n_images).reshape(rows, n_images)
    weights /= n_images
    return weights


def resampled_means(runs: Runs, weights: np.ndarray) -> np.ndarray:
    """(resamples, 2): the pooled accuracy and log-loss of each bootstrap resample of the images."""
    return resample(weights, runs.pooled())


def resample(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bootstrap means of ``values`` (images × columns), one row per resample; kept within the values' range, which
    the rounding of a sum of n weights of 1/n could otherwise leave (an accuracy of 1.0000000000000002)."""
    return np.clip(weights @ values, values.min(axis=0), values.max(axis=0))


def percentile_interval(values: np.ndarray, level: float) -> np.ndarray:
    """The (1 - level) percentile interval of ``values`` along axis 0: rows low, high."""
    return np.quantile(values, [level / 2, 1 - level / 2], axis=0)


def t_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    """The (1 - level) Student's t interval of the mean of ``values`` (at least two)."""
    mean, sem = float(np.mean(values)), float(np.std(values, ddof=1)) / np.sqrt(len(values))
    half = float(stats.t.ppf(1 - level / 2, df=len(values) - 1)) * sem
    return mean - half, mean + half


def summarize(runs: Runs, weights: np.ndarray, level: float) -> dict:
    """Mean over seeds, standard deviation and (1 - level) interval of validation accuracy and log-loss."""
    return _summary(runs, lambda: resampled_means(runs, weights), level)


def _summary(runs: Runs, resampled, level: float) -> dict:
    """``resampled()`` gives the (resamples, 2) bootstrap means; called for one seed only."""
    per_seed = {"val_accuracy": runs.correct.mean(axis=1), "val_log_loss": runs.log_loss.mean(axis=1)}
    one_seed = len(runs.seeds) == 1
    bootstrap = percentile_interval(resampled(), level) if one_seed else None
    row = {"variant": runs.variant, "seeds": " ".join(map(str, runs.seeds)), "n_seeds": len(runs.seeds)}
    for column, (name, values) in enumerate(per_seed.items()):
        low, high = bootstrap[:, column] if one_seed else t_interval(values, level)
        row |= {name: float(values.mean()), f"{name}_std": float(values.std(ddof=1)) if not one_seed else float("nan"),
                f"{name}_low": float(low), f"{name}_high": float(high)}
    return row | {"interval": "bootstrap over images" if one_seed else "t over seeds", "parameters": int(runs.parameters),
                  "training_seconds": float(runs.training_seconds)}


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"unknown selection metric {metric!r}; use {' or '.join(METRICS)}")


def verdict(low: float, high: float, metric: str) -> str:
    """a against b from the (1 - level) interval of a - b on ``metric``: better or worse when it excludes 0."""
    check_metric(metric)
    sign = 1 if metric == "val_accuracy" else -1  # lower log-loss is better
    low, high = sorted((sign * low, sign * high))
    return "better" if low > 0 else "worse" if high < 0 else "tied"


def seed_pairs(a_seeds: tuple[int, ...], b_seeds: tuple[int, ...]) -> list[tuple[int, int]]:
    """(index in a, index in b) of the seeds McNemar pairs: equal seed values first, then the rest in order."""
    common = [seed for seed in a_seeds if seed in b_seeds]
    pairs = [(a_seeds.index(seed), b_seeds.index(seed)) for seed in common]
    rest_a = [i for i, seed in enumerate(a_seeds) if seed not in common]
    rest_b = [j for j, seed in enumerate(b_seeds) if seed not in common]
    return pairs + list(zip(rest_a, rest_b))


def mcnemar_table(correct_a: np.ndarray, correct_b: np.ndarray) -> np.ndarray:
    """2×2 counts: rows a correct / wrong, columns b correct / wrong."""
    a, b = correct_a.astype(bool), correct_b.astype(bool)
    return np.array([[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]])


def check_same_images(a: Runs, b: Runs) -> None:
    """Paired statistics need the very same images in the same order: equal image digests and labels."""
    if a.images != b.images or not np.array_equal(a.labels, b.labels):
        raise ValueError(f"{a.variant} and {b.variant} were not validated on the same images")


def compare(a: Runs, b: Runs, weights: np.ndarray, level: float, metric: str) -> dict:
    """a against b on the same images: paired bootstrap intervals of the pooled Δ, McNemar per seed pair, verdict."""
    check_same_images(a, b)
    return _comparison(a, b, resample(weights, a.pooled() - b.pooled()), level, metric)


def _comparison(a: Runs, b: Runs, resampled_delta: np.ndarray, level: float, metric: str) -> dict:
    check_metric(metric)
    delta = {"accuracy": a.correct.mean() - b.correct.mean(), "log_loss": a.log_loss.mean() - b.log_loss.mean()}
    interval = percentile_interval(resampled_delta, level)
    row = {"variant": a.variant, "other": b.variant}
    for column, name in enumerate(delta):
        row |= {f"delta_{name}": float(delta[name]), f"delta_{name}_low": float(interval[0, column]),
                f"delta_{name}_high": float(interval[1, column])}
    column = METRICS.index(metric)
    better = resampled_delta[:, column] > 0 if metric == "val_accuracy" else resampled_delta[:, column] < 0
    pairs = seed_pairs(a.seeds, b.seeds)
    p_values = [mcnemar(mcnemar_table(a.correct[i], b.correct[j]), exact=True).pvalue for i, j in pairs]
    return row | {
        "p_better": float(better.mean()),
        "seed_pairs": " ".join(f"{a.seeds[i]}-{b.seeds[j]}" for i, j in pairs),
        "mcnemar_p": " ".join(f"{p:.4g}" for p in p_values),
        "mcnemar_p_max": float(max(p_values)),
        "verdict": verdict(*interval[:, column], metric),
        "metric": metric,
        "level": float(level),
    }


COMPARISON_COLUMNS = ["variant", "other", "delta_accuracy", "delta_accuracy_low", "delta_accuracy_high", "delta_log_loss",
                      "delta_log_loss_low", "delta_log_loss_high", "p_better", "seed_pairs", "mcnemar_p", "mcnemar_p_max",
                      "verdict", "metric", "level"]


def compare_all(runs: dict[str, Runs], level: float, resamples: int, seed: int, metric: str
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one summary row per variant, one comparison row per ordered pair a != b), all from one weights matrix."""
    check_metric(metric)
    variants = list(runs.values())
    for other in variants[1:]:
        check_same_images(variants[0], other)
    weights = bootstrap_weights(len(variants[0].labels), resamples, seed)
    pooled = np.concatenate([variant.pooled() for variant in variants], axis=1)
    resampled = resample(weights, pooled).reshape(resamples, len(variants), 2)  # one product for every bootstrap
    summary = pd.DataFrame([_summary(variant, lambda k=k: resampled[:, k], level) for k, variant in enumerate(variants)])
    pairs = [_comparison(a, b, resampled[:, i] - resampled[:, j], level, metric)
             for i, a in enumerate(variants) for j, b in enumerate(variants) if i != j]
    return summary, pd.DataFrame(pairs, columns=COMPARISON_COLUMNS)



def rank(summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Best mean ``metric`` first, then the other metric, then the name; a rank column in front."""
    check_metric(metric)
    other = METRICS[1 - METRICS.index(metric)]
    ascending = {"val_accuracy": False, "val_log_loss": True}
    ranked = summary.sort_values([metric, other, "variant"], ascending=[ascending[metric], ascending[other], True])
    ranked = ranked.reset_index(drop=True)
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
    return ranked


def verdicts_against(pairs: pd.DataFrame, variant: str, metric: str) -> dict[str, str]:
    """other -> the verdict of ``variant`` against it on ``metric``, from the pairs' intervals of that metric's Δ."""
    delta = "delta_accuracy" if metric == "val_accuracy" else "delta_log_loss"
    rows = pairs[pairs["variant"] == variant]
    return {row["other"]: verdict(row[f"{delta}_low"], row[f"{delta}_high"], metric) for _, row in rows.iterrows()}


def select_with_ties(summary: pd.DataFrame, pairs: pd.DataFrame, metric: str, tie_rule: str) -> tuple[pd.DataFrame, dict]:
    """Rank the variants, find those tied with the leader, and pick one of them by ``tie_rule``."""
    if tie_rule not in TIE_RULES:
        raise ValueError(f"unknown tie rule {tie_rule!r}; use {', '.join(TIE_RULES)}")
    ranked = rank(summary, metric)
    leader = ranked.iloc[0]["variant"]
    against_leader = verdicts_against(pairs, leader, metric)
    ranked["tied"] = [variant == leader or against_leader.get(variant) == "tied" for variant in ranked["variant"]]
    candidates = ranked[ranked["tied"]]
    if tie_rule != "best_mean":
        candidates = candidates.sort_values(["parameters" if tie_rule == "fewest_parameters" else "training_seconds", "rank"])
    selected = candidates.iloc[0]
    against_selected = verdicts_against(pairs, selected["variant"], metric)
    ranked["verdict"] = ["selected" if variant == selected["variant"] else against_selected.get(variant)
                         for variant in ranked["variant"]]
    tied = [variant for variant in ranked.loc[ranked["tied"], "variant"] if variant != leader]
    level = float(pairs["level"].iloc[0]) if len(pairs) else None
    others = ranked[ranked["variant"] != selected["variant"]]
    runner_up = others.iloc[0] if len(others) else None
    return ranked, {
        "variant": selected["variant"],
        "leader": leader,
        "metric": metric,
        "tie_rule": tie_rule,
        "tied": tied,
        "rule": selection_rule(ranked.iloc[0], selected, metric, tie_rule, tied, level),
        "level": level,
        "val_accuracy": float(selected["val_accuracy"]),
        "val_log_loss": float(selected["val_log_loss"]),
        "n_seeds": int(selected["n_seeds"]),
        "runner_up": None if runner_up is None else runner_up["variant"],
        "margin": None if runner_up is None else float(abs(selected[metric] - runner_up[metric])),
    }


def selection_rule(leader: pd.Series, selected: pd.Series, metric: str, tie_rule: str, tied: list[str],
                   level: float | None) -> str:
    """One sentence: how the selected variant was chosen."""
    best = f"best mean {metric}: {leader['variant']} ({leader[metric]:.4f})"
    if level is None:
        return f"{best}; the only variant"
    if not tied:
        return f"{best}; no variant tied with it at level {level:g}"
    how = TIE_RULES[tie_rule]
    if tie_rule == "fewest_parameters":
        how += f": {selected['variant']} ({int(selected['parameters']):,} parameters)"
    elif tie_rule == "least_training_time":
        how += f": {selected['variant']} ({float(selected['training_seconds']):.1f} s)"
    return f"{best}; tied with {', '.join(tied)} at level {level:g}: {how}"
