"""The one small base every strategy shares: global model, fleet, validation, persistence.

Unlike a round-loop base class (Flower's), this one only reacts to events: the coordinator
asks `assign(board)` whenever a board is free and calls `on_update(update)` whenever one
arrives; the strategy alone decides when the global version advances. It is pure: no I/O, no
clock, no transport, randomness only from a Generator it is given, so the simulator and the
real coordinator drive the very same code, and replaying the same events gives the same bits.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any, ClassVar

import numpy as np

from ftte.aggregation.core import (
    Advance, Assignment, BoardId, Outcome, Reason, StrategyState, Update, Wait, frozen_copy,
)
from ftte.aggregation.validate import Problem, check_update


class Strategy(ABC):
    """Global parameters (flat float32, read-only) and their version, the registered boards,
    and the two events. Subclasses implement `_accept` and, when they need to, `_assign`,
    `_check`, `abandon`, `flush`, `pending` and the three persistence hooks."""

    name: ClassVar[str]
    config_type: ClassVar[Any]

    def __init__(self, params: np.ndarray, config: Any = None, *, version: int = 0,
                 boards: Iterable[BoardId] = ()):
        self.config = config if config is not None else self.config_type()
        if not isinstance(self.config, self.config_type):
            raise TypeError(f"{self.name} needs a {self.config_type.__name__}, got {type(self.config).__name__}")
        self._params = frozen_copy(np.ravel(params), np.float32)
        if self._params.size == 0 or not np.all(np.isfinite(self._params)):
            raise ValueError("the initial global parameters must be a non-empty finite vector")
        if version < 0:
            raise ValueError(f"version must be >= 0, got {version}")
        self._version = int(version)
        self._boards: set[BoardId] = set(boards)
        self._checked: np.ndarray | None = None  # the last index array that passed validation

    # ---------------------------------------------------------------- what anyone may read

    @property
    def version(self) -> int:
        return self._version

    @property
    def params(self) -> np.ndarray:
        """The current global parameters (read-only; a new array at every version)."""
        return self._params

    @property
    def size(self) -> int:
        return self._params.size

    @property
    def boards(self) -> tuple[BoardId, ...]:
        return tuple(sorted(self._boards))

    @property
    def pending(self) -> tuple[Update, ...]:
        """Accepted updates not yet folded into the global model (in arrival order)."""
        return ()

    # ---------------------------------------------------------------- the fleet

    def register(self, board_id: BoardId) -> None:
        """A board joined: from now on it may be assigned work and its updates are accepted."""
        self._boards.add(board_id)

    def unregister(self, board_id: BoardId) -> Advance | None:
        """A board left for good. Updates it already sent stay (nothing accepted is lost)."""
        self._boards.discard(board_id)
        return self.abandon(board_id)

    def abandon(self, board_id: BoardId) -> Advance | None:
        """The coordinator gave up on this board's current task (timeout, disconnect). Only a
        strategy that waits for specific boards (FedAvg) has anything to do; it may advance."""
        return None

    def flush(self) -> Advance | None:
        """Fold whatever is pending into the global model now (end of a run); None if nothing."""
        return None

    # ---------------------------------------------------------------- the two events

    def assign(self, board_id: BoardId) -> Assignment | Wait:
        """What a free board should train now."""
        if board_id not in self._boards:
            return Wait(board_id, f"board {board_id!r} is not registered")
        return self._assign(board_id)

    def wakes(self, waiting: Sequence[BoardId]) -> Sequence[BoardId]:
        """Of `waiting` (boards whose last answer was a Wait until="version", in the order they
        got it), those `assign` may now give work, in that order; the coordinator asks only
        these after a new version, join or drop. It must leave out no board that would get an
        Assignment. Default: all of them."""
        return waiting

    def on_update(self, update: Update) -> Outcome:
        """Validate, then accept (maybe advancing the version) or refuse without side effects."""
        problem = check_update(update, self.size, self._boards, self._version, self._checked) or self._check(update)
        if problem is not None:
            return Outcome(False, self._version, problem[0], problem[1])
        update = update.normalised()
        self._checked = update.indices  # the next update of the same w* carries this array again
        return self._accept(update)

    def _assign(self, board_id: BoardId) -> Assignment | Wait:
        """Asynchronous default: always the current global model."""
        return Assignment(board_id, self._version, self._params)

    def _check(self, update: Update) -> Problem | None:
        """Strategy-specific refusals after the common checks. Default: a replayed task."""
        if update.task_id is not None:
            for held in self.pending:
                if held.board_id == update.board_id and held.task_id == update.task_id:
                    return Reason.DUPLICATE, f"task {update.task_id} of board {update.board_id!r} is already pending"
        return None

    @abstractmethod
    def _accept(self, update: Update) -> Outcome:
        """Take a validated, normalised update."""

    def _advance(self, params: np.ndarray, used: Sequence[Update], weights: Sequence[float]) -> Advance:
        """Install the next global version. A non-finite result can only come from a broken
        configuration (validation bounds every delta), so it is an error, never installed."""
        if not np.all(np.isfinite(params)):
            raise FloatingPointError(f"{self.name}: the aggregated parameters are not finite; "
                                     "check the server learning rate")
        base = self._version
        self._params, self._version = params, self._version + 1
        return Advance(self._version, params, tuple(u.board_id for u in used),
                       tuple(base - u.base_version for u in used), tuple(float(w) for w in weights))

    # ---------------------------------------------------------------- persistence

    def state(self) -> StrategyState:
        """Plain values and (shared, read-only) arrays: enough to resume exactly."""
        return StrategyState(self.name, asdict(self.config), self._version, self._params, self.boards,
                             self.pending, self._arrays(), self._extra())

    @classmethod
    def from_state(cls, state: StrategyState) -> "Strategy":
        """The strategy `state()` described; behaves bit-for-bit as the original would."""
        if state.strategy != cls.name:
            raise ValueError(f"state of strategy {state.strategy!r}, not {cls.name!r}")
        strategy = cls(state.params, cls.config_type.from_dict(state.config), version=state.version,
                       boards=state.boards)
        strategy._restore([u.normalised() for u in state.buffer], state.arrays, state.extra)
        return strategy

    def _arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _extra(self) -> dict:
        return {}

    def _restore(self, buffer: list[Update], arrays: dict[str, np.ndarray], extra: dict) -> None:
        if buffer:
            raise ValueError(f"{self.name} keeps no buffer, the state holds {len(buffer)} updates")
