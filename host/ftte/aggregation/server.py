"""The server step: apply a merged delta with a server learning rate and optional momentum.

Pure: returns new arrays, never writes the old ones (assignments and saved states hold them).
Only covered coordinates move, and only their momentum changes: a parameter no update trained
this time keeps its value and its velocity, instead of drifting on an old velocity while
nobody trains it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ftte.aggregation.core import frozen, frozen_copy
from ftte.aggregation.merge import Merged


@dataclass(frozen=True)
class ServerStep:
    """theta_j += lr * delta_j (momentum 0), or, with momentum mu, for covered j:
    m_j = mu * m_j + delta_j;  theta_j += lr * m_j."""

    lr: float = 1.0
    momentum: float = 0.0

    def __post_init__(self):
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"server learning rate must be finite and > 0, got {self.lr}")
        if not (np.isfinite(self.momentum) and 0 <= self.momentum < 1):
            raise ValueError(f"server momentum must be in [0, 1), got {self.momentum}")

    def apply(self, params: np.ndarray, merged: Merged, velocity: np.ndarray | None
              ) -> tuple[np.ndarray, np.ndarray | None]:
        """(new params float32, new velocity float64 or None when momentum is 0)."""
        covered = merged.covered
        step = merged.delta
        if self.momentum > 0:
            old = velocity if velocity is not None else np.zeros(len(params), np.float64)
            velocity = np.where(covered, self.momentum * old + merged.delta, old)
            step = np.where(covered, velocity, 0.0)
            velocity = frozen(velocity)
        new = params.astype(np.float64)
        new[covered] += self.lr * step[covered]
        with np.errstate(over="ignore"):  # an overflow shows as inf; the strategy refuses it
            return frozen(new.astype(np.float32)), velocity


def restore_velocity(arrays: dict[str, np.ndarray], size: int) -> np.ndarray | None:
    """The saved server momentum ("velocity"), checked against the model size."""
    if "velocity" not in arrays:
        return None
    velocity = frozen_copy(arrays["velocity"], np.float64)
    if velocity.shape != (size,):
        raise ValueError(f"saved velocity has shape {velocity.shape}, the model {size} parameters")
    return velocity
