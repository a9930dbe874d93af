"""Checks every strategy applies before an update may touch anything.

A board is untrusted input: its update may be truncated, garbled, computed from a diverged
model, or replayed. `check_update` is a pure function returning the first problem it finds
(or None), so a refused update never reaches a buffer or the global parameters.
"""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np

from ftte.aggregation.core import BoardId, Reason, Update

Problem = tuple[Reason, str]

MAX_ABS_DELTA = 1e6
"""Largest |delta| accepted. A parameter of a small network never moves this far in one task;
a board that sends such values has diverged, and a finite but huge value could still overflow
float32 once scaled by the server step."""


def check_update(update: Update, size: int, boards: Collection[BoardId], version: int,
                 checked: np.ndarray | None = None) -> Problem | None:
    """The first problem of `update` against a global model of `size` parameters at `version`
    shared by the registered `boards`; None when it is well formed. `checked`: a read-only index
    array that already passed for this `size`; an update carrying that very array (the
    coordinator's w*, shared by every update) skips the index scan."""
    trusted = checked is not None and update.indices is checked and not checked.flags.writeable
    for check in _CHECKS:
        if trusted and check is _indices:
            continue
        problem = check(update, size, boards, version)
        if problem is not None:
            return problem
    return None


def _board(update: Update, size: int, boards: Collection[BoardId], version: int) -> Problem | None:
    if update.board_id not in boards:
        return Reason.UNKNOWN_BOARD, f"board {update.board_id!r} is not registered"
    return None


def _shape(update: Update, size: int, boards, version) -> Problem | None:
    indices, delta = np.asarray(update.indices), np.asarray(update.delta)
    if indices.ndim != 1 or delta.ndim != 1:
        return Reason.WRONG_SIZE, f"indices and delta must be 1-D, got {indices.shape} and {delta.shape}"
    if len(indices) != len(delta):
        return Reason.WRONG_SIZE, f"{len(delta)} deltas for {len(indices)} indices"
    if not 0 < len(delta) <= size:
        return Reason.WRONG_SIZE, f"{len(delta)} deltas; the model has {size} parameters (need 1..{size})"
    return None


def _indices(update: Update, size: int, boards, version) -> Problem | None:
    indices = np.asarray(update.indices)
    if indices.dtype.kind not in "iu":
        return Reason.BAD_INDICES, f"indices must be integers, got {indices.dtype}"
    increasing = len(indices) < 2 or bool(np.all(np.diff(indices.astype(np.int64, copy=False)) > 0))
    low, high = (indices[0], indices[-1]) if increasing else (indices.min(), indices.max())  # ends: no scan
    if low < 0 or high >= size:
        return Reason.BAD_INDICES, f"indices span [{low}, {high}], the model has [0, {size})"
    if not increasing:
        return Reason.BAD_INDICES, "indices must be strictly increasing (arena order, no repeats)"
    return None


def _values(update: Update, size, boards, version) -> Problem | None:
    delta = np.asarray(update.delta)
    # float32 (what boards send), all well: one BLAS pass, no temporary. NaN / inf fail the
    # test, and below the bound every |delta| <= MAX_ABS_DELTA / 2.
    if delta.dtype == np.float32 and delta.ndim == 1 and float(np.dot(delta, delta)) <= _SAFE_SQUARES:
        return None
    if delta.dtype.kind not in "fiu":
        return Reason.NON_FINITE, f"deltas must be numbers, got {delta.dtype}"
    with np.errstate(over="ignore", invalid="ignore"):  # a finite float64 may overflow float32: that is the check
        as32 = delta.astype(np.float32, copy=False)
    largest = float(np.max(np.abs(as32)))
    if not np.isfinite(largest):
        bad = np.flatnonzero(~np.isfinite(as32))
        return Reason.NON_FINITE, f"{bad.size} non-finite deltas (first at position {bad[0]})"
    if delta.dtype != np.float32:  # the check is on the values as sent (|int| may overflow its type)
        largest = float(np.max(np.abs(delta if delta.dtype.kind == "f" else delta.astype(np.float64))))
    if largest > MAX_ABS_DELTA:
        return Reason.OUT_OF_RANGE, f"a delta of magnitude {largest:g} (limit {MAX_ABS_DELTA:g}): diverged board"
    return None


_SAFE_SQUARES = (MAX_ABS_DELTA / 2) ** 2  # half the limit: float32 rounding of the sum cannot hide a value over it


def _variance(update: Update, size, boards, version) -> Problem | None:
    v = update.variance
    if v is not None and not (_is_number(v) and math.isfinite(v) and v >= 0):
        return Reason.BAD_VARIANCE, f"variance must be finite and >= 0, got {v!r}"
    return None


def _samples(update: Update, size, boards, version) -> Problem | None:
    if not _is_integer(update.samples) or update.samples < 1:
        return Reason.NO_SAMPLES, f"samples used must be an integer >= 1, got {update.samples!r}"
    return None


def _version(update: Update, size, boards, version: int) -> Problem | None:
    base = update.base_version
    if not _is_integer(base) or base < 0:
        return Reason.BAD_VERSION, f"base version must be an integer >= 0, got {base!r}"
    if base > version:
        return Reason.FUTURE_VERSION, f"trained from version {base}, the global model is at {version}"
    return None


_CHECKS = (_board, _shape, _indices, _values, _variance, _samples, _version)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _is_integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
