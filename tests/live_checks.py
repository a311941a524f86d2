"""Checks of a training's live view shared by the tests: its TensorBoard events, read back with TensorBoard's own
reader, and its learning-curve PNG."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import TENSORS, EventAccumulator
from tensorboard.util import tensor_util

from cifarflow.train.live import SCALARS

FLOAT32 = float(np.finfo(np.float32).eps)  # events hold float32 copies of the history's float64 values


def read_run(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of one TensorBoard run: [(step, value), ...] in the order TensorBoard's reader gives them."""
    events = EventAccumulator(str(folder), size_guidance={TENSORS: 0}).Reload()
    return {tag: [(event.step, float(tensor_util.make_ndarray(event.tensor_proto))) for event in events.Tensors(tag)]
            for tag in events.Tags()["tensors"]}


def assert_events_match(events_dir: Path, history: list[dict]) -> None:
    """One value per epoch and tag, in every run, equal to the history's."""
    for run, tags in SCALARS.items():
        scalars = read_run(events_dir / run)
        assert set(scalars) == set(tags), run
        for tag, column in tags.items():
            assert [step for step, _ in scalars[tag]] == [row["epoch"] for row in history], (run, tag)
            assert [value for _, value in scalars[tag]] == pytest.approx([row[column] for row in history], rel=FLOAT32)


def assert_png(path: Path) -> bytes:
    data = path.read_bytes()
    with Image.open(path) as image:
        image.load()  # decodes every pixel: a truncated file fails here
        assert image.format == "PNG" and image.width > 500 and image.height > 200
    return data
