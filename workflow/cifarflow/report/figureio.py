"""The files of a figure function's report rule (``plot_<name>``, made by ``rules/report.smk``): its inputs read by
file type, the function called, what it returns written to the outputs.

A figure function of ``figures`` (``@registered``) takes the rule's named inputs and its params as keyword arguments
and returns what the outputs hold: one value for a rule with one output, else a dict by output name. A matplotlib
figure is saved as PNG, a DataFrame is written as CSV without its index, text is written as it is.

Inputs are read by file type: ``.csv`` a DataFrame, ``.json`` what it holds, ``.npz`` a dict of its arrays; a list
of paths, a list of those. A result that needs another reader names one of ``READERS`` (its ``RESULTS`` entry in
``rules/report.smk``, ``read="indexed_csv"``); that reader gets the input as the rule has it, one path or the list.
"""

from functools import partial
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from ..fileio import load_json, load_npz
from .figures.style import FIGURES, save
from .tables import histories_by_variant, read_benchmarks


READERS = {
    "csv": pd.read_csv,
    "json": load_json,
    "npz": load_npz,
    "indexed_csv": partial(pd.read_csv, index_col=0),  # the first column is the index (row labels)
    "benchmarks": read_benchmarks,  # benchmark files, one table row each
    "histories_by_variant": histories_by_variant,  # every training's history.csv, each variant's seeds as one band
}


def read_input(value, reader: str | None = None):
    if reader:
        return READERS[reader](value)
    if isinstance(value, (str, Path)):
        return READERS[Path(value).suffix.lstrip(".")](value)
    return [read_input(path) for path in value]


def write_output(value, path) -> None:
    if isinstance(value, Figure):
        save(value, path)
    elif isinstance(value, pd.DataFrame):
        value.to_csv(path, index=False)
        print(value.to_string(index=False))
    elif isinstance(value, str):
        Path(path).write_text(value)
    else:
        raise TypeError(f"{path}: a figure function returns figures, DataFrames or text, not {type(value).__name__}")


def draw(plot: str, inputs: dict, outputs: dict, params: dict, read: dict[str, str]) -> None:
    """Calls the figure function registered as ``plot`` with the inputs, read, and the params, and writes what it returns
    to the outputs."""
    drawn = FIGURES[plot](**{name: read_input(value, read.get(name)) for name, value in inputs.items()}, **params)
    write_outputs(plot, drawn, outputs)


def write_outputs(plot: str, drawn, outputs: dict) -> None:
    """Writes what the figure function ``plot`` returned (``drawn``) to the outputs, by output name."""
    if not isinstance(drawn, dict) and len(outputs) == 1:
        drawn = {name: drawn for name in outputs}
    if not isinstance(drawn, dict) or set(drawn) != set(outputs):
        raise ValueError(f"{plot} returns one value per output, by output name: {sorted(outputs)}")
    for name, path in outputs.items():
        write_output(drawn[name], path)
