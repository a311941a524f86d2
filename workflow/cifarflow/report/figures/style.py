"""The report's look, shared by every figure module: colours, matplotlib's settings, saving, and the registry of the
figure functions.

Nothing in the figure modules knows about Snakemake: inputs are arrays, tables and dicts. A figure function registers
itself with one line, ``@registered("Title", ...)``, and Snakemake makes a report rule for it (``rules/report.smk``):
the function takes results and settings by argument name and returns its figure (and tables), which ``figureio``
writes. ``learning_curves`` is also drawn while a variant trains, and ``rule_graph`` saves to the path its script gives.
Figures are deterministic (fixed seeds, no timestamps), so an unchanged input redraws an identical file.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..catalog import described  # noqa: E402

TRAIN = "#1f77b4"
VAL = "#ff7f0e"
TEST = "#2ca02c"
SELECTED = "#d62728"
OTHER = "#8c8c8c"
CORRECT = "#1a7f37"
WRONG = "#cf222e"
DPI = 110

# Colours for variants: tab10 without its red, which marks the selected variant.
PALETTE = [color for i, color in enumerate(plt.get_cmap("tab10").colors) if i != 3]

plt.rcParams.update({
    "figure.dpi": DPI,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "font.size": 9,
    "axes.titlesize": 10,
})

# Every registered figure function: name -> function.
FIGURES = {}


def registered(title: str, *, subcategory: str | None = None, table: str | None = None, csv: bool = False):
    """Registers a figure function under its own name, with what the report shows of it: its figure's ``title``, the
    ``subcategory`` it is listed under in its module's category, and the title of the HTML ``table`` and whether the
    ``csv`` table it also returns (as a dict by output name: ``figure``, ``table``, ``csv``). Snakemake reads these
    literals from the source (``catalog``) and makes the function's report rule (``rules/report.smk``)."""

    def register(function):
        category = function.__module__.rsplit(".", 1)[-1]
        function.figure = described(function, category, title, subcategory=subcategory, table=table, csv=csv)
        FIGURES[function.__name__] = function
        return function

    return register


def save(fig, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None} if path.suffix == ".png" else None)
    plt.close(fig)


def tiled(images: list[np.ndarray], rows: int, cols: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """Tile uint8 HxWx3 images (at least one) into one array (missing tiles left blank), so a grid is one imshow call."""
    height, width = images[0].shape[:2]
    out = np.full((rows * (height + pad) + pad, cols * (width + pad) + pad, 3), fill, dtype=np.uint8)
    for i, image in enumerate(images[: rows * cols]):
        r, c = divmod(i, cols)
        top, left = pad + r * (height + pad), pad + c * (width + pad)
        out[top:top + height, left:left + width] = image
    return out


def spread_band(ax, history: pd.DataFrame, column: str, color, alpha: float = 0.18) -> None:
    """The spread over seeds of ``column`` as a shaded band, where ``history`` holds one (``tables.seed_band``)."""
    if f"{column}_low" in history:
        ax.fill_between(history["epoch"], history[f"{column}_low"], history[f"{column}_high"], color=color, alpha=alpha, lw=0)
