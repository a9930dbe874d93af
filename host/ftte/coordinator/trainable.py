"""What the fleet trains right now (w*), and the hook that chooses it again when the fleet changes.

The coordinator holds one `Trainable` at a time and asks its `Selector` again whenever the fleet
changes: a board joins (with less RAM than the arena, w* must shrink) or leaves (with `grow`,
w* may grow). The selector also sees every accepted update, so its importance estimate can
follow training. docs/coordinator.md, "Reselection"; docs/selection.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ftte.aggregation.coverage import ParameterIndex
from ftte.fleet.select import Selection, choose_spec, usable_budget
from ftte.model import Model
from ftte.model.spec import UpdateSpec
from ftte.selection import Importance, needs_reselection, update_importance


@dataclass(frozen=True, eq=False)
class Trainable:
    """The update spec w*, its flat positions (ParameterIndex.indices(spec), increasing), the
    C-planned arena it needs on a board, a label for logs, and the usable budget it was sized for."""

    spec: UpdateSpec
    indices: np.ndarray
    arena_bytes: int
    label: str = ""
    budget: int = 0

    @staticmethod
    def of(model: Model, selection: Selection) -> "Trainable":
        return Trainable(selection.spec, ParameterIndex.of(model).indices(selection.spec), selection.memory.total,
                         selection.label, selection.budget)


class Selector(Protocol):
    def reselect(self, ram_budgets: Sequence[int], current: Trainable) -> Trainable | None:
        """None to keep `current` for a fleet with `ram_budgets`, else the w* to train instead
        (whose arena fits the weakest board); raises ValueError, naming the reason, when
        `current` does not fit and nothing else does."""

    def observe(self, trained: Trainable, delta: np.ndarray) -> None:
        """An accepted board update (`delta` in `trained.indices` order)."""


@dataclass
class FleetSelector:
    """The Selector of `ftte run`: fleet.select.choose_spec under the run's margin, batch,
    momentum and [budget] spec. With spec "importance", the host's calibration importance is
    folded with every accepted board update (selection.update_importance), so a reselection
    ranks groups by what the fleet has been learning, not only by the host's data."""

    model: Model
    margin: float
    batch: int
    momentum: bool
    explicit: str | Mapping[str, object] = "auto"
    importance: Importance | None = None
    gradient_scale: float = 1.0  # lr * local_steps: turns a board's delta into a gradient
    grow: float | None = None    # choose again when the usable budget grew by more than this fraction

    def reselect(self, ram_budgets: Sequence[int], current: Trainable) -> Trainable | None:
        if not needs_reselection(current.arena_bytes, current.budget, ram_budgets, self.margin, self.grow):
            return None
        chosen = choose_spec(self.model, usable_budget(ram_budgets, self.margin), self.batch, self.momentum,
                             self.explicit, self.importance)
        return None if chosen.spec == current.spec else Trainable.of(self.model, chosen)

    def observe(self, trained: Trainable, delta: np.ndarray) -> None:
        if self.importance is not None:
            self.importance = update_importance(self.importance, self.model, trained.spec, delta,
                                                self.gradient_scale)
