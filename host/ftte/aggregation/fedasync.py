"""FedAsync (Xie et al., 2019): every update is mixed into the global model the moment it arrives.

The asynchronous baseline: no buffer, one version per update, the mixing weight shrinks with
staleness. The paper mixes in the board's trained model x = theta_base + d, which needs the
global parameters of the version the board started from: `reference="base"` keeps the last
`max_staleness` versions for that. `reference="current"` (default) applies the delta to the
current model instead, theta += alpha_t * d, which needs no history and equals the paper's rule
whenever the update is fresh.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ftte.aggregation.base import Strategy
from ftte.aggregation.buffered import staleness_problem
from ftte.aggregation.core import Outcome, Reason, Update, frozen, frozen_copy
from ftte.aggregation.validate import Problem
from ftte.aggregation.weighting import AgeWeight

REFERENCES = ("current", "base")


@dataclass(frozen=True)
class FedAsyncConfig:
    """alpha_t = alpha * age(staleness); the paper's polynomial (a=0.5) by default, its hinge
    as AgeWeight("hinge", a, b)."""

    alpha: float = 0.6
    age: AgeWeight = field(default_factory=AgeWeight)
    max_staleness: int | None = None
    reference: str = "current"

    def __post_init__(self):
        if not (np.isfinite(self.alpha) and 0 < self.alpha <= 1):
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha}")
        if self.reference not in REFERENCES:
            raise ValueError(f"reference must be one of {REFERENCES}, got {self.reference!r}")
        if self.max_staleness is not None and self.max_staleness < 0:
            raise ValueError(f"max staleness must be >= 0 or None, got {self.max_staleness}")
        if self.reference == "base" and self.max_staleness is None:
            raise ValueError("reference='base' keeps max_staleness past versions: give max_staleness")

    @staticmethod
    def from_dict(data: dict) -> "FedAsyncConfig":
        return FedAsyncConfig(**{**data, "age": AgeWeight(**data["age"])})


class FedAsync(Strategy):
    """current: theta_j += alpha_t d_j;  base: theta_j = (1 - alpha_t) theta_j + alpha_t (base_j + d_j),
    for the covered j only."""

    name = "fedasync"
    config_type = FedAsyncConfig

    def __init__(self, params, config=None, **kwargs):
        super().__init__(params, config, **kwargs)
        self._history: dict[int, np.ndarray] = {self._version: self._params} if self._uses_history else {}

    @property
    def _uses_history(self) -> bool:
        return self.config.reference == "base"

    def _check(self, update: Update) -> Problem | None:
        problem = staleness_problem(update, self._version, self.config.max_staleness)
        if problem is None and self._uses_history and update.base_version not in self._history:
            problem = Reason.TOO_STALE, f"version {update.base_version} is no longer kept"
        return problem

    def mixing(self, staleness: int) -> float:
        """alpha_t = alpha * s(staleness)."""
        return float(self.config.alpha * self.config.age(staleness))

    def _accept(self, update: Update) -> Outcome:
        alpha_t = self.mixing(self._version - update.base_version)
        index, delta = update.indices, update.delta.astype(np.float64)
        theta = self._params.astype(np.float64)
        if self._uses_history:
            local = self._history[update.base_version][index].astype(np.float64) + delta
            theta[index] = (1.0 - alpha_t) * theta[index] + alpha_t * local
        else:
            theta[index] += alpha_t * delta
        advance = self._advance(frozen(theta.astype(np.float32)), [update], [alpha_t])
        self._remember()
        return Outcome(True, self._version, advance=advance)

    def _remember(self) -> None:
        """Keep the versions an acceptable update may still start from."""
        if self._uses_history:
            self._history[self._version] = self._params
            oldest = self._version - self.config.max_staleness
            self._history = {v: p for v, p in self._history.items() if v >= oldest}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {f"history/{v}": p for v, p in self._history.items() if v != self._version}

    def _restore(self, buffer, arrays, extra) -> None:
        super()._restore(buffer, arrays, extra)
        for key, array in arrays.items():
            if key.startswith("history/") and self._uses_history:
                past = frozen_copy(array, np.float32)
                if past.shape != self._params.shape:
                    raise ValueError(f"saved {key} has shape {past.shape}, the model {self._params.shape}")
                self._history[int(key.split("/", 1)[1])] = past
