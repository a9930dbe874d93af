"""Per-coordinate merge of updates that each cover only part of the parameters.

With selective training every board sends deltas for its subset w* only. Averaging the deltas
as if the missing ones were zero would shrink every partly covered coordinate by the fraction
of updates that skipped it; so each coordinate is averaged only over the updates that cover it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ftte.aggregation.core import Update


@dataclass(frozen=True, eq=False)
class Merged:
    """The merged delta (float64, 0 where nothing covers) and which coordinates were covered."""

    delta: np.ndarray
    covered: np.ndarray  # bool


def merge(updates: Sequence[Update], weights: Sequence[float], size: int, divide_by: str = "weight") -> Merged:
    """For each coordinate j with covering updates C_j:

    divide_by="weight": delta_j = sum_{i in C_j} w_i d_ij / sum_{i in C_j} w_i   (weighted mean;
                        0 when every covering weight is 0)
    divide_by="count":  delta_j = sum_{i in C_j} w_i d_ij / |C_j|                (FedBuff: the
                        weights scale the step, they are not renormalised)

    Sums run in float64, in the order given (so the same order gives the same bits).
    """
    if divide_by not in ("weight", "count"):
        raise ValueError(f"divide_by must be 'weight' or 'count', got {divide_by!r}")
    if len(updates) > 1 and _same_indices(updates):
        return _merge_shared(updates, weights, size, divide_by)
    total = np.zeros(size, np.float64)
    norm = np.zeros(size, np.float64)
    count = np.zeros(size, np.int64)
    for update, weight in zip(updates, weights, strict=True):
        index = update.indices  # strictly increasing, so fancy-index += adds each once
        total[index] += float(weight) * update.delta.astype(np.float64)
        norm[index] += float(weight) if divide_by == "weight" else 1.0
        count[index] += 1
    delta = np.divide(total, norm, out=np.zeros(size, np.float64), where=norm > 0)
    return Merged(delta, count > 0)


def _same_indices(updates: Sequence[Update]) -> bool:
    first = updates[0].indices
    return all(u.indices is first or np.array_equal(u.indices, first) for u in updates[1:])


def _merge_shared(updates: Sequence[Update], weights: Sequence[float], size: int, divide_by: str) -> Merged:
    """The same sums when every update covers the same coordinates (one w*: the usual case),
    accumulated on the dense subset and scattered once; each coordinate adds the same terms in
    the same order, so the bits are those of the general path."""
    index = updates[0].indices
    total, term = np.zeros(len(index), np.float64), np.empty(len(index), np.float64)
    norm = 0.0
    for update, weight in zip(updates, weights, strict=True):
        np.multiply(update.delta, float(weight), out=term, dtype=np.float64)  # float64(w) * float64(d), as below
        total += term
        norm += float(weight) if divide_by == "weight" else 1.0
    delta = np.zeros(size, np.float64)
    if norm > 0:
        delta[index] = total / norm
    covered = np.zeros(size, bool)
    covered[index] = True
    return Merged(delta, covered)
