"""The sparse update to train under a board's memory budget.

Candidates, in the spirit of ftte.bench.memory: the top k weighted layers in full (k = 1..n),
and the top k in full plus as many output channels of the next layer down as fit (k = 0: a
channel subset of the last layer alone). The number of channels is the largest that fits
(binary search: the arena grows with every trainable row). Which channels: the most important
first, by default the weight rows of largest L2 norm (data-free); pass `importance` (per layer,
one score per output channel, e.g. gradient norms on calibration data) to choose otherwise.
The selected update is the fitting candidate with the most trainable parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ftte.model import LayerUpdate, Model, UpdateSpec
from ftte.train import MemoryPlan, plan_memory


@dataclass(frozen=True)
class Candidate:
    """An update spec, a label saying what it trains, and its exact arena plan."""

    label: str
    spec: UpdateSpec
    memory: MemoryPlan


def channel_order(model: Model, importance: Sequence[np.ndarray | None] | None = None
                  ) -> list[np.ndarray | None]:
    """Per layer, its output channels from most to least important (None without weights)."""
    order: list[np.ndarray | None] = []
    for index, layer in enumerate(model.layers):
        if not layer.has_weights:
            order.append(None)
            continue
        score = importance[index] if importance is not None else None
        if score is None:
            score = np.linalg.norm(layer.weight_rows(), axis=1)
        order.append(np.argsort(-np.asarray(score), kind="stable"))
    return order


def _largest(fits, high: int) -> int:
    """The largest n in [1, high] with fits(n), 0 if none (fits is true up to some n)."""
    low = 0
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return low


def sparse_candidates(model: Model, budget: int, batch: int = 1, momentum: bool = False,
                      importance: Sequence[np.ndarray | None] | None = None) -> list[Candidate]:
    """Every candidate (see the module doc) whose training arena fits in `budget` bytes."""
    weighted, order = model.weighted_layers(), channel_order(model, importance)
    found: list[Candidate] = []

    def plan(label: str, updates: dict[int, LayerUpdate]) -> Candidate:
        spec = UpdateSpec.of(model, updates)
        return Candidate(label, spec, plan_memory(model, spec, batch, momentum))

    for k in range(len(weighted) + 1):
        top = {i: LayerUpdate("full") for i in weighted[len(weighted) - k:]} if k else {}
        if top:
            whole = plan(f"top {k} layer{'s' if k > 1 else ''} full", top)
            if whole.memory.total <= budget:
                found.append(whole)
        if k == len(weighted):
            break
        below = weighted[len(weighted) - k - 1]
        layer, rows = model.layers[below], order[below]
        assert rows is not None

        def with_channels(count: int) -> Candidate:
            chosen = tuple(int(c) for c in np.sort(rows[:count]))
            prefix = f"top {k} full + " if k else ""
            return plan(f"{prefix}{count}/{layer.channels} channels of {layer.name}",
                        {**top, below: LayerUpdate("channels", chosen)})

        count = _largest(lambda n: with_channels(n).memory.total <= budget, layer.channels - 1)
        if count:
            found.append(with_channels(count))
    return found


def select_sparse_update(model: Model, budget: int, batch: int = 1, momentum: bool = False,
                         importance: Sequence[np.ndarray | None] | None = None) -> Candidate | None:
    """The fitting candidate with the most trainable parameters (ties: the smaller arena),
    or None when not even one channel of the last layer fits."""
    found = sparse_candidates(model, budget, batch, momentum, importance)
    return max(found, key=lambda c: (c.memory.trainable_params, -c.memory.total), default=None)
