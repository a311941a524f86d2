"""The report's figures of its *2. Data* category: what the splits hold."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .style import TEST, TRAIN, VAL, registered, tiled


@registered("Images per class")
def class_counts(classes: list[str], train: dict[str, np.ndarray], val: dict[str, np.ndarray],
                 test: dict[str, np.ndarray]) -> Figure:
    """Images per class in each split (its arrays), as grouped bars."""
    n = len(classes)
    splits = {"train": train, "val": val, "test": test}
    counts = pd.DataFrame(
        {split: np.bincount(np.asarray(arrays["labels"], dtype=np.int64), minlength=n)[:n] for split, arrays in splits.items()},
        index=pd.Index(classes, name="class"),
    )
    colors = {"train": TRAIN, "val": VAL, "test": TEST}
    fig, ax = plt.subplots(figsize=(max(8.0, 0.28 * n * len(splits) / 3 + 2), 3.8))
    x = np.arange(n)
    width = 0.8 / len(splits)
    for i, split in enumerate(counts.columns):
        ax.bar(x + (i - (len(splits) - 1) / 2) * width, counts[split], width, color=colors.get(split),
               label=f"{split} ({counts[split].sum():,} images)")
    ax.set_xticks(x, classes, rotation=90 if n > 20 else 45, ha="center" if n > 20 else "right",
                  fontsize=6 if n > 20 else 9)
    ax.set_ylabel("images")
    ax.set_title("Images per class in each split")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.32 if n <= 20 else -0.45), ncol=len(splits), frameon=False)
    ax.grid(axis="x", visible=False)
    return fig


@registered("Sample images per class")
def sample_images(train: dict[str, np.ndarray], classes: list[str], per_class: int, seed: int = 0) -> Figure:
    """A grid of training images: one row per class, ``per_class`` random images of that class (seeded)."""
    images, labels = train["images"], train["labels"]
    rng = np.random.default_rng(seed)
    tiles = []
    for k in range(len(classes)):
        members = np.flatnonzero(labels == k)
        chosen = np.sort(rng.choice(members, size=min(per_class, len(members)), replace=False)) if len(members) else []
        row = [images[i] for i in chosen]
        tiles += row + [np.full_like(images[0], 255)] * (per_class - len(row))
    grid = tiled(tiles, len(classes), per_class)
    cell = 0.55
    fig, ax = plt.subplots(figsize=(per_class * cell + 1.6, len(classes) * cell + 0.6))
    ax.imshow(grid, interpolation="nearest")
    step = grid.shape[0] / len(classes)
    ax.set_yticks((np.arange(len(classes)) + 0.5) * step, classes)
    ax.set_xticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(f"{per_class} random training images per class")
    return fig
