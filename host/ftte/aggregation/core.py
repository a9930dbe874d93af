"""The values a strategy exchanges with the coordinator: updates in, assignments and outcomes out.

Every array a strategy hands out or keeps is read-only and never mutated afterwards: a new
global version is a new array. So an `Assignment` stays the exact parameters of its version for
as long as anyone holds it, and `state()` can share arrays instead of copying them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

BoardId = str
"""A board's stable name (the coordinator's choice, e.g. its serial number): a str, so states
persist as JSON and sort."""


def frozen(array: np.ndarray) -> np.ndarray:
    """A read-only array (a view: the caller must not write the original either)."""
    view = array.view()
    view.flags.writeable = False
    return view


def frozen_copy(array, dtype) -> np.ndarray:
    """A read-only copy: nothing the caller does to its array afterwards reaches the strategy."""
    return frozen(np.array(array, dtype=dtype, copy=True))


def kept_frozen(array, dtype) -> np.ndarray:
    """`array` itself when it already is a read-only 1-D array of `dtype` (the coordinator's own
    index arrays, `ParameterIndex.indices`: shared, never copied per update), else a frozen copy."""
    if isinstance(array, np.ndarray) and array.dtype == dtype and array.ndim == 1 and not array.flags.writeable:
        return array
    return frozen_copy(array, dtype)


class Reason(str, Enum):
    """Why an update was refused. The values are stable strings, fit for logs and a database."""

    UNKNOWN_BOARD = "unknown_board"      # not registered (or unregistered since)
    WRONG_SIZE = "wrong_size"            # delta and indices differ in length, empty, or too long
    BAD_INDICES = "bad_indices"          # not integers, out of range, or not strictly increasing
    NON_FINITE = "non_finite"            # a NaN or Inf delta (or not numbers at all)
    OUT_OF_RANGE = "out_of_range"        # a finite delta too large to be real training
    BAD_VARIANCE = "bad_variance"        # reported variance NaN, Inf or negative
    NO_SAMPLES = "no_samples"            # samples used < 1
    BAD_VERSION = "bad_version"          # base version negative or not an integer
    FUTURE_VERSION = "future_version"    # trained from a version the server has not reached
    TOO_STALE = "too_stale"              # staleness above the strategy's maximum
    DUPLICATE = "duplicate"              # same (board, task) already pending, or board reported
    NOT_IN_COHORT = "not_in_cohort"      # FedAvg: board not sampled for the current round
    WRONG_ROUND = "wrong_round"          # FedAvg: trained from another round's model


@dataclass(frozen=True, eq=False)
class Update:
    """One board's result: deltas (trained - received) of the parameters it trained.

    `indices` are positions in the flat global parameter vector (see `ParameterIndex`), strictly
    increasing: that is the order the board sends its values in (arena order), so no
    permutation is ever needed. `variance` is the board's statistic of its update (the wire's
    `delta_mean_sq`); None means "compute mean(delta**2) here".
    """

    board_id: BoardId
    base_version: int
    indices: np.ndarray
    delta: np.ndarray
    samples: int = 1
    variance: float | None = None
    task_id: int | None = None

    def normalised(self) -> "Update":
        """A validated update as the strategy keeps it: int64 / float32 read-only copies, the
        variance filled in, plain Python scalars (so state() is easy to persist)."""
        delta = kept_frozen(self.delta, np.float32)
        variance = self.variance if self.variance is not None else mean_square(delta)
        return Update(self.board_id, int(self.base_version), kept_frozen(self.indices, np.int64), delta,
                      int(self.samples), float(variance), None if self.task_id is None else int(self.task_id))


def mean_square(delta: np.ndarray) -> float:
    """The default variance statistic: mean of the squared deltas (what the firmware reports)."""
    values = np.asarray(delta, np.float64).ravel()
    return float(np.dot(values, values) / values.size) if values.size else 0.0  # one pass, no temporary


@dataclass(frozen=True, eq=False)
class Assignment:
    """Train from these parameters (read-only; the full global vector at `version`). The
    coordinator sends the board only the selected subset w* of them."""

    board_id: BoardId
    version: int
    params: np.ndarray


@dataclass(frozen=True)
class Wait:
    """Nothing for this board now. Ask again after the next update (`until="update"`), or only
    once the version or the fleet changes (`until="version"`: the strategy promises that no
    update short of a new version can end this wait, so a coordinator need not wake the board
    for every update)."""

    board_id: BoardId
    reason: str
    until: str = "update"


@dataclass(frozen=True, eq=False)
class Advance:
    """The global model moved to `version`. Per folded update (in merge order): its board,
    staleness and normalised weight, so reports can show who counted for how much."""

    version: int
    params: np.ndarray
    boards: tuple[BoardId, ...]
    staleness: tuple[int, ...]
    weights: tuple[float, ...]


@dataclass(frozen=True, eq=False)
class Outcome:
    """What became of one update. A refused update leaves the strategy exactly as it was."""

    accepted: bool
    version: int  # the global version after handling the update
    reason: Reason | None = None
    detail: str = ""
    advance: Advance | None = None

    @property
    def advanced(self) -> bool:
        return self.advance is not None


@dataclass(frozen=True, eq=False)
class StrategyState:
    """Everything needed to resume a strategy, as plain values and arrays (for SQLite).

    `config` is the strategy's config as `dataclasses.asdict` gives it; `buffer` the accepted
    updates not yet folded in; `arrays` strategy-specific vectors (server momentum, FedAsync's
    history); `extra` strategy-specific JSON-able values (FedAvg's cohort and RNG state).
    """

    strategy: str
    config: dict
    version: int
    params: np.ndarray
    boards: tuple[BoardId, ...]
    buffer: tuple[Update, ...] = ()
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
