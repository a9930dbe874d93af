"""A labelled data set split into train and test parts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray  # [n][h][w][c] float32
    y_train: np.ndarray  # [n] int32
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int
    source: str  # where the data comes from, for reports

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


def split(name: str, x: np.ndarray, y: np.ndarray, classes: int, source: str,
          test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """A stratified random split with a fixed seed."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for label in range(classes):
        members = rng.permutation(np.flatnonzero(y == label))
        test[members[: int(round(len(members) * test_fraction))]] = True
    x, y = x.astype(np.float32), y.astype(np.int32)
    return Dataset(name, x[~test], y[~test], x[test], y[test], classes, source)
