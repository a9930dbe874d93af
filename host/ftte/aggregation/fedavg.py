"""FedAvg (McMahan et al., 2017): the synchronous baseline, expressed in the same event interface.

A round starts when the first registered board asks for work: a fraction C of the registered
boards is sampled with the Generator the strategy was given. Only those boards get the round's
model; the rest wait. The round closes when every sampled board has reported (or was
abandoned by the coordinator), and the updates are averaged weighted by the samples each used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ftte.aggregation.base import Strategy
from ftte.aggregation.core import Advance, Assignment, BoardId, Outcome, Reason, Update, Wait
from ftte.aggregation.merge import merge
from ftte.aggregation.server import ServerStep, restore_velocity
from ftte.aggregation.validate import Problem


@dataclass(frozen=True)
class FedAvgConfig:
    """Cohort size m = min(N, max(min_cohort, floor(fraction * N))) of N registered boards; a
    round is not started before `min_available` boards are registered."""

    fraction: float = 1.0
    min_cohort: int = 1
    min_available: int = 1
    server_lr: float = 1.0
    server_momentum: float = 0.0

    def __post_init__(self):
        if not (np.isfinite(self.fraction) and 0 < self.fraction <= 1):
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")
        if self.min_cohort < 1 or self.min_available < 1:
            raise ValueError(f"min_cohort and min_available must be >= 1, got {self.min_cohort}, {self.min_available}")

    @staticmethod
    def from_dict(data: dict) -> "FedAvgConfig":
        return FedAvgConfig(**data)

    def cohort_size(self, available: int) -> int:
        # the epsilon keeps 0.3 * 10 = 3.0000000000000004 at 3, as the user meant
        return min(available, max(self.min_cohort, math.floor(self.fraction * available + 1e-9)))


class FedAvg(Strategy):
    """theta_j += lr * sum_{i covers j} n_i d_ij / sum_{i covers j} n_i over the round's cohort."""

    name = "fedavg"
    config_type = FedAvgConfig

    def __init__(self, params, config=None, *, rng: np.random.Generator | None = None, **kwargs):
        super().__init__(params, config, **kwargs)
        self._rng = rng if rng is not None else np.random.default_rng(0)
        self._cohort: tuple[BoardId, ...] | None = None
        self._members: frozenset[BoardId] = frozenset()  # the cohort as a set: most boards ask and are not in it
        self._reported: dict[BoardId, Update] = {}  # this round's updates by board, in arrival order
        self._step = ServerStep(self.config.server_lr, self.config.server_momentum)
        self._velocity: np.ndarray | None = None

    @property
    def cohort(self) -> tuple[BoardId, ...] | None:
        """The boards of the current round (None: not sampled yet)."""
        return self._cohort

    @property
    def pending(self) -> tuple[Update, ...]:
        return tuple(self._reported.values())

    # ---------------------------------------------------------------- events

    def _assign(self, board_id: BoardId) -> Assignment | Wait:
        if self._cohort is None:
            if len(self._boards) < self.config.min_available:
                return Wait(board_id, f"{len(self._boards)} of {self.config.min_available} boards registered",
                            "version")
            self._sample()
        if board_id not in self._members:
            return Wait(board_id, f"not sampled for round {self._version}", "version")
        if board_id in self._reported:
            return Wait(board_id, f"already reported for round {self._version}", "version")
        return Assignment(board_id, self._version, self._params)

    def wakes(self, waiting: Sequence[BoardId]) -> Sequence[BoardId]:
        """The round's cohort members that have not reported (the round is sampled here if it
        was not yet, as `assign` would); everyone while too few boards are registered."""
        if self._cohort is None:
            if len(self._boards) < self.config.min_available:
                return waiting
            self._sample()
        return [b for b in waiting if b in self._members and b not in self._reported]

    def _sample(self) -> None:
        """Draw the round's cohort from the registered boards, in sorted order (so the draw
        depends only on the seed and the set of boards, not on registration order)."""
        pool = sorted(self._boards)
        chosen = self._rng.choice(len(pool), size=self.config.cohort_size(len(pool)), replace=False)
        self._set_cohort(tuple(sorted(pool[i] for i in chosen)))

    def _set_cohort(self, cohort: tuple[BoardId, ...] | None) -> None:
        self._cohort, self._members = cohort, frozenset(cohort or ())

    def _check(self, update: Update) -> Problem | None:
        if self._cohort is None or update.board_id not in self._cohort:
            return Reason.NOT_IN_COHORT, f"board {update.board_id!r} is not in the cohort of round {self._version}"
        if update.base_version != self._version:
            return Reason.WRONG_ROUND, f"trained from round {update.base_version}, the round is {self._version}"
        if update.board_id in self._reported:
            return Reason.DUPLICATE, f"board {update.board_id!r} already reported for round {self._version}"
        return None

    def _accept(self, update: Update) -> Outcome:
        self._reported[update.board_id] = update
        advance = self._fold() if self._complete() else None
        return Outcome(True, self._version, advance=advance)

    def abandon(self, board_id: BoardId) -> Advance | None:
        """Stop waiting for a sampled board; the round closes if everyone left has reported."""
        if self._cohort is None or board_id not in self._cohort or board_id in self._reported:
            return None
        self._set_cohort(tuple(b for b in self._cohort if b != board_id) or None)  # None: nobody left, sample again
        if self._cohort is None:
            return None
        return self._fold() if self._complete() else None

    def flush(self) -> Advance | None:
        """Close the round now with the updates reported so far."""
        return self._fold() if self._reported else None

    # ---------------------------------------------------------------- aggregation

    def _complete(self) -> bool:
        cohort = self._cohort
        return cohort is not None and len(self._reported) >= len(cohort) and all(b in self._reported for b in cohort)

    def _fold(self) -> Advance:
        used = sorted(self._reported.values(), key=lambda u: u.board_id)  # arrival order must not matter
        samples = np.array([u.samples for u in used], np.float64)
        params, velocity = self._step.apply(self._params, merge(used, samples, self.size, "weight"), self._velocity)
        advance = self._advance(params, used, samples / samples.sum())
        self._velocity, self._reported = velocity, {}
        self._set_cohort(None)
        return advance

    # ---------------------------------------------------------------- persistence

    def _arrays(self) -> dict[str, np.ndarray]:
        return {} if self._velocity is None else {"velocity": self._velocity}

    def _extra(self) -> dict:
        return {"cohort": None if self._cohort is None else list(self._cohort),
                "rng": self._rng.bit_generator.state}

    def _restore(self, buffer, arrays, extra) -> None:
        self._set_cohort(None if extra.get("cohort") is None else tuple(extra["cohort"]))
        self._reported = {u.board_id: u for u in buffer}
        self._velocity = restore_velocity(arrays, self.size)
        if "rng" in extra:
            self._rng = _generator(extra["rng"])


BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")


def _generator(state: dict) -> np.random.Generator:
    """A Generator in exactly the saved state, with the same bit generator type."""
    if state.get("bit_generator") not in BIT_GENERATORS:
        raise ValueError(f"unknown bit generator {state.get('bit_generator')!r} in the saved state")
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)
