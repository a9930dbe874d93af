"""What the fleet trains right now (w*), and the hook that chooses it again when the fleet changes.

The coordinator holds one w* at a time (a `Trainable`, sized for the weakest board) and asks its
`Selector` again whenever the fleet changes: a board joins (with less RAM than the arena, w*
must shrink) or leaves (with `grow`, w* may grow). With nested tiers, the selector also gives
each board the larger superset of w* that its own RAM fits. The selector sees every accepted
update, so its importance estimate can follow training. docs/coordinator.md, "Reselection" and
"Nested tiers"; docs/selection.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ftte.aggregation.core import frozen
from ftte.aggregation.coverage import ParameterIndex
from ftte.fleet.select import Selection, choose_spec, usable_budget
from ftte.model import Model
from ftte.model.spec import UpdateSpec
from ftte.selection import Importance, describe, is_superset, needs_reselection, union, update_importance
from ftte.train import plan_memory


@dataclass(frozen=True, eq=False)
class Trainable:
    """The update spec w*, its flat positions (ParameterIndex.indices(spec), increasing), the
    C-planned arena it needs on a board, a label for logs, and the usable budget it was sized for."""

    spec: UpdateSpec
    indices: np.ndarray
    arena_bytes: int
    label: str = ""
    budget: int = 0
    _span: slice | None = field(init=False, repr=False, default=None)  # indices as a slice, when contiguous

    def __post_init__(self):
        i = self.indices
        if i.size and i[-1] - i[0] + 1 == i.size and bool(np.all(np.diff(i) == 1)):
            object.__setattr__(self, "_span", slice(int(i[0]), int(i[-1]) + 1))

    def take(self, params: np.ndarray) -> np.ndarray:
        """The values of `params` (a strategy's read-only vector) this w* trains, read-only: a
        view when the indices are contiguous (the full model), else a copy."""
        if self._span is not None and not params.flags.writeable:
            return params[self._span]
        return frozen(np.array(params[self.indices], np.float32))

    @staticmethod
    def of(model: Model, selection: Selection) -> "Trainable":
        return Trainable(selection.spec, ParameterIndex.of(model).indices(selection.spec), selection.memory.total,
                         selection.label, selection.budget)


class Selector(Protocol):
    def reselect(self, ram_budgets: Sequence[int], current: Trainable) -> Trainable | None:
        """None to keep `current` for a fleet with `ram_budgets`, else the w* to train instead
        (whose arena fits the weakest board); raises ValueError, naming the reason, when
        `current` does not fit and nothing else does."""

    def tier(self, ram_budget: int, base: Trainable) -> Trainable:
        """What a board of `ram_budget` bytes trains while the fleet trains `base`: `base`, or
        (nested tiers) a superset of it that the board's RAM fits."""

    def observe(self, trained: Trainable, delta: np.ndarray) -> None:
        """An accepted board update (`delta` in `trained.indices` order)."""

    def rotate(self, ram_budgets: Sequence[int], params: np.ndarray, current: Trainable) -> Trainable | None:
        """Periodic reselection (the coordinator's `reselect_every`): None to keep `current`, else
        the w* chosen again for the global model `params` under the budget of `ram_budgets`."""


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
    tiers: bool = False          # boards with more RAM train a superset of w*
    recalibrate: Callable[[Model], Importance] | None = None  # importance measured at a given model (the host's share)
    _tier_cache: dict = field(default_factory=dict, repr=False)  # (budget, base spec) -> Trainable

    def reselect(self, ram_budgets: Sequence[int], current: Trainable) -> Trainable | None:
        if not needs_reselection(current.arena_bytes, current.budget, ram_budgets, self.margin, self.grow):
            return None
        chosen = choose_spec(self.model, usable_budget(ram_budgets, self.margin), self.batch, self.momentum,
                             self.explicit, self.importance)
        return None if chosen.spec == current.spec else Trainable.of(self.model, chosen)

    def tier(self, ram_budget: int, base: Trainable) -> Trainable:
        """The w* the same rules choose for this board's own RAM, joined with `base` (so it trains
        everything `base` trains) if that still fits; `base` when tiers are off or nothing
        larger fits."""
        budget = usable_budget([ram_budget], self.margin)
        if not self.tiers or budget <= base.budget:
            return base
        key = (budget, base.spec)
        if key not in self._tier_cache:  # a fleet has few distinct budgets
            self._tier_cache[key] = self._superset(budget, base)
        return self._tier_cache[key]

    def _superset(self, budget: int, base: Trainable) -> Trainable:
        own = choose_spec(self.model, budget, self.batch, self.momentum, self.explicit, self.importance).spec
        spec = own if is_superset(self.model, own, base.spec) else union(self.model, own, base.spec)
        memory = plan_memory(self.model, spec, self.batch, self.momentum)
        if spec == base.spec or memory.total > budget:
            return base
        return Trainable.of(self.model, Selection(spec, describe(self.model, spec), memory, budget))

    def rotate(self, ram_budgets: Sequence[int], params: np.ndarray, current: Trainable) -> Trainable | None:
        """w* chosen again by the same rules under the fleet's budget, at the current global model
        `params`: with "importance", the importance is measured again there (`recalibrate`, the
        host's share), so the groups training has fitted lose importance and the ones left frozen
        gain it, and w* moves over the model, block-coordinate style; with "auto", the channels
        are ranked by their current weight norms. None when the same w* comes out."""
        from ftte.aggregation.coverage import load_flat_parameters

        model = self.model.copy()
        load_flat_parameters(model, params)
        if self.recalibrate is not None:
            self.importance = self.recalibrate(model)
            self._tier_cache.clear()
        chosen = choose_spec(model, usable_budget(ram_budgets, self.margin), self.batch, self.momentum,
                             self.explicit, self.importance)
        return None if chosen.spec == current.spec else Trainable.of(self.model, chosen)

    def observe(self, trained: Trainable, delta: np.ndarray) -> None:
        if self.importance is not None:
            self.importance = update_importance(self.importance, self.model, trained.spec, delta,
                                                self.gradient_scale)
