"""Semi-asynchronous buffering, shared by FTTE and FedBuff.

Boards are never made to wait: every free board gets the current global model. Accepted
updates collect in a buffer of capacity K; the K-th one triggers the merge and a new version.
Because the buffer is emptied at every version change, an update's staleness is the same on
arrival and when it is merged, so dropping over-stale updates on arrival is enough and an
accepted update is never dropped later.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

import numpy as np

from ftte.aggregation.base import Strategy
from ftte.aggregation.core import Advance, Outcome, Reason, Update
from ftte.aggregation.merge import merge
from ftte.aggregation.server import ServerStep, restore_velocity
from ftte.aggregation.validate import Problem


def staleness_problem(update: Update, version: int, max_staleness: int | None) -> Problem | None:
    """Refuse an update trained from more than `max_staleness` versions ago (None: never)."""
    staleness = version - update.base_version
    if max_staleness is not None and staleness > max_staleness:
        return Reason.TOO_STALE, f"staleness {staleness} > max {max_staleness} (trained from {update.base_version})"
    return None


def check_buffer_config(buffer_size: int, max_staleness: int | None) -> None:
    if buffer_size < 1:
        raise ValueError(f"buffer size must be >= 1, got {buffer_size}")
    if max_staleness is not None and max_staleness < 0:
        raise ValueError(f"max staleness must be >= 0 or None, got {max_staleness}")


class BufferedStrategy(Strategy):
    """Buffer of capacity `config.buffer_size`, `config.max_staleness`, a server step with
    `config.server_lr` and `config.server_momentum`. Subclasses give the weights and how the
    merge divides (`divide_by`)."""

    divide_by = "weight"

    def __init__(self, params, config=None, **kwargs):
        super().__init__(params, config, **kwargs)
        self._buffer: list[Update] = []
        self._step = ServerStep(self.config.server_lr, self.config.server_momentum)
        self._velocity: np.ndarray | None = None

    @property
    def pending(self) -> tuple[Update, ...]:
        return tuple(self._buffer)

    @abstractmethod
    def weights(self, updates: Sequence[Update], version: int) -> np.ndarray:
        """One weight per update, for merging `updates` into the model at `version`."""

    def _check(self, update: Update) -> Problem | None:
        return staleness_problem(update, self._version, self.config.max_staleness) or super()._check(update)

    def _accept(self, update: Update) -> Outcome:
        self._buffer.append(update)
        advance = self._fold() if len(self._buffer) >= self.config.buffer_size else None
        return Outcome(True, self._version, advance=advance)

    def flush(self) -> Advance | None:
        return self._fold() if self._buffer else None

    def _fold(self) -> Advance:
        """Merge the whole buffer into the next version, then empty it."""
        used = list(self._buffer)
        weights = self.weights(used, self._version)
        merged = merge(used, weights, self.size, self.divide_by)
        params, velocity = self._step.apply(self._params, merged, self._velocity)
        advance = self._advance(params, used, weights)
        self._velocity, self._buffer = velocity, []
        return advance

    def _arrays(self) -> dict[str, np.ndarray]:
        return {} if self._velocity is None else {"velocity": self._velocity}

    def _restore(self, buffer, arrays, extra) -> None:
        if len(buffer) >= self.config.buffer_size:
            raise ValueError(f"state holds {len(buffer)} buffered updates, capacity is {self.config.buffer_size}")
        self._buffer = list(buffer)
        self._velocity = restore_velocity(arrays, self.size)
