"""The trainable subset w* that buys the most expected gain per byte of on-device training memory.

A selection is a state: per weighted layer, frozen, its bias, or its bias plus the weight rows of
its k most important output channels (k = all is `full`). The C planner's arena for a spec
depends on how many rows each layer trains, never on which (tests/test_selection.py checks it),
so within a layer the rows go in decreasing importance and the state is a vector of counts.

The cost is not additive: the saved activations and the backward pass reach down to the lowest
trainable layer, and the gradient and scratch regions hold the largest single layer. So every
candidate is planned by the C planner (`ftte_plan_train`, cached per state), and the greedy step
uses the marginal arena bytes of a move from the current state:

    repeat: among the moves that fit the budget, take the one with the highest
            (gain(s') - gain(s)) / max(arena(s') - arena(s), 1)      (a move that costs nothing
            and gains something goes first)
    moves of layer l: frozen -> bias; k rows -> k + 1, k + 2, k + 4, ..., all rows with a
                      positive score (a row that gains nothing never trains)

The bundles (k + 2, k + 4, ...) let the greedy pay a fixed cost once, e.g. the activations a
new lowest layer needs, when one row alone would not be worth it. Greedy by ratio can be poor
when one large item beats many small ones, so it also runs from each structured candidate of
ftte.selection.budget (top k layers full, plus channels of the layer below, channels ranked by
the same importance) and from every single move that fits; the best final state wins. The
selection is therefore never worse, by the importance measure, than the structured heuristic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ftte.model import LayerUpdate, Model, UpdateSpec
from ftte.native import check, ffi, lib
from ftte.selection.importance import Importance
from ftte.train import MemoryPlan
from ftte.train.table import LayerTable

State = tuple[int, ...]  # per layer: -1 frozen, 0 bias only, k > 0 the top k rows (and the bias)


@dataclass(frozen=True)
class SparseSelection:
    """The chosen w*: its spec, the C planner's arena for it, the expected gain (sum of the
    importance of the groups it trains), the budget it had to fit, and a label."""

    spec: UpdateSpec
    memory: MemoryPlan
    gain: float
    budget: int
    label: str
    total_gain: float = 0.0  # the gain of training everything (for fractions)
    state: State = field(default=(), repr=False, compare=False)

    @property
    def gain_fraction(self) -> float:
        return self.gain / self.total_gain if self.total_gain > 0 else 0.0


class _CPlanner:
    """`ftte_plan_train` over one C layer table, the update records rewritten per state (the
    same planner plan_memory calls, without rebuilding the table each time)."""

    def __init__(self, model: Model, order: list[np.ndarray | None], batch: int, momentum: bool):
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        self.table = LayerTable(model)
        self.updates = ffi.new("ftte_layer_update[]", len(model.layers))
        self.modes = {m: getattr(lib, f"FTTE_UPDATE_{m.upper()}") for m in ("frozen", "bias", "channels", "full")}
        self.masks: list[list | None] = []  # per layer, the bitmask of its top k rows, k = 0..channels
        for layer, rows in zip(model.layers, order):
            if rows is None:
                self.masks.append(None)
                continue
            bits = np.zeros(layer.channels, np.uint8)
            masks = [ffi.new("uint8_t[]", np.packbits(bits, bitorder="little").tobytes())]
            for row in rows:
                bits[row] = 1
                masks.append(ffi.new("uint8_t[]", np.packbits(bits, bitorder="little").tobytes()))
            self.masks.append(masks)
        self.config = ffi.new("ftte_train_config *", {"model": self.table.c_model, "updates": self.updates,
                                                      "batch": batch, "momentum": int(momentum)})
        self.plan = ffi.new("ftte_plan *")
        self.model = model

    def __call__(self, state: "State") -> MemoryPlan:
        for index, count in enumerate(state):
            record = self.updates[index]
            record.channel_mask = ffi.NULL
            if count < 0:
                record.mode = self.modes["frozen"]
            elif count == 0:
                record.mode = self.modes["bias"]
            elif count >= self.model.layers[index].channels:
                record.mode = self.modes["full"]
            else:
                record.mode = self.modes["channels"]
                record.channel_mask = self.masks[index][count]
        check(lib.ftte_plan_train(self.config, self.plan), f"plan for {self.model.name} (state {state})")
        return MemoryPlan.from_c(self.plan.memory)


class Planner:
    """States -> specs and exact C plans (cached) for one (model, importance, batch, momentum)."""

    def __init__(self, model: Model, importance: Importance, batch: int = 1, momentum: bool = False):
        self.model, self.importance, self.batch, self.momentum = model, importance, batch, momentum
        self.weighted = model.weighted_layers()
        self.order: list[np.ndarray | None] = []
        self.prefix: list[np.ndarray | None] = []
        self.useful: list[int] = []  # per layer, how many rows have a positive score
        for layer, rows in zip(model.layers, importance.rows):
            if not layer.has_weights:
                self.order.append(None)
                self.prefix.append(None)
                self.useful.append(0)
                continue
            score = np.zeros(layer.channels) if rows is None else np.asarray(rows, np.float64)
            if score.shape != (layer.channels,):
                raise ValueError(f"{layer.name}: importance has {score.shape} rows, the layer {layer.channels}")
            order = np.argsort(-score, kind="stable")
            self.order.append(order)
            self.useful.append(int(np.count_nonzero(score > 0)))
            self.prefix.append(np.concatenate([[0.0], np.cumsum(score[order])]))
        self._plans: dict[State, MemoryPlan] = {}
        self._planner = _CPlanner(model, self.order, batch, momentum)
        self.empty: State = tuple(-1 for _ in model.layers)

    # -- states ----------------------------------------------------------------------------

    def spec(self, state: State) -> UpdateSpec:
        updates: dict[int, LayerUpdate] = {}
        for index, count in enumerate(state):
            layer = self.model.layers[index]
            if count < 0:
                continue
            if count == 0:
                updates[index] = LayerUpdate("bias")
            elif count >= layer.channels:
                updates[index] = LayerUpdate("full")
            else:
                updates[index] = LayerUpdate("channels", tuple(int(c) for c in np.sort(self.order[index][:count])))
        return UpdateSpec.of(self.model, updates)

    def state_of(self, spec: UpdateSpec) -> State:
        """The state of a spec whose channel subsets are importance prefixes (else: the counts,
        which cost the same; the gain is then that of the prefix)."""
        state = []
        for layer, update in zip(self.model.layers, spec.layers):
            state.append({"frozen": -1, "bias": 0, "full": layer.channels}.get(update.mode, len(update.channels)))
        return tuple(state)

    def trim(self, state: State) -> State:
        """`state` without what gains nothing: rows of no score, and a bias of no score alone."""
        trimmed = []
        for index, count in enumerate(state):
            if count > 0:
                count = min(count, self.useful[index])
            if count == 0 and self.importance.bias[index] <= 0:
                count = -1
            trimmed.append(count)
        return tuple(trimmed)

    def plan(self, state: State) -> MemoryPlan:
        found = self._plans.get(state)
        if found is None:
            found = self._plans[state] = self._planner(state)
        return found

    def gain(self, state: State) -> float:
        total = 0.0
        for index, count in enumerate(state):
            if count < 0:
                continue
            total += self.importance.bias[index] + self.prefix[index][min(count, self.model.layers[index].channels)]
        return total

    def moves(self, state: State) -> Iterable[State]:
        for index in self.weighted:
            layer, count = self.model.layers[index], state[index]
            if count < 0 and layer.bias is not None:
                yield state[:index] + (0,) + state[index + 1:]
            have, step, limit = max(count, 0), 1, self.useful[index]  # rows that gain nothing never train
            while have < limit:
                target = min(have + step, limit)
                yield state[:index] + (target,) + state[index + 1:]
                if target == limit:
                    break
                step *= 2

    def label(self, state: State) -> str:
        return describe(self.model, self.spec(state))

    # -- search ----------------------------------------------------------------------------

    def greedy(self, start: State, budget: int) -> State:
        """Best-ratio moves that fit, from `start` (which must fit), until none gains."""
        state, cost, value = start, self.plan(start).total, self.gain(start)
        while True:
            best, best_key = None, None
            for move in self.moves(state):
                plan = self.plan(move)
                if plan.total > budget:
                    continue
                gained, spent = self.gain(move) - value, plan.total - cost
                if gained <= 0:
                    continue
                key = (1, gained, -spent) if spent <= 0 else (0, gained / spent, -spent)
                if best_key is None or key > best_key:
                    best, best_key = move, key
            if best is None:
                return state
            state, cost, value = best, self.plan(best).total, self.gain(best)

    def select(self, budget: int, starts: Sequence[State] = ()) -> State | None:
        """The best greedy end state within `budget` over the starts (the empty state, the
        given ones and each single move that fits), or None when nothing with a gain fits."""
        seeds = [self.empty, *starts, *self.moves(self.empty)]
        best, best_key = None, None
        seen: set[State] = set()
        for seed in seeds:
            if seed in seen or self.plan(seed).total > budget:
                continue
            seen.add(seed)
            end = self.greedy(seed, budget)
            key = (self.gain(end), -self.plan(end).total)
            if best_key is None or key > best_key:
                best, best_key = end, key
        if best is None or best == self.empty or best_key[0] <= 0:
            return None
        return best


def describe(model: Model, spec: UpdateSpec) -> str:
    """A label in the words of the structured candidates when it is one ("top 2 layers full",
    "top 1 full + 9/32 channels of dense_3"), else the spec's own description."""
    weighted = model.weighted_layers()
    modes = [spec.layers[i].mode for i in weighted]
    if spec == UpdateSpec.bias_only(model):
        return "bias only"
    k = 0
    while k < len(weighted) and modes[len(weighted) - 1 - k] == "full":
        k += 1
    rest = modes[:len(weighted) - k]
    if k and all(m == "frozen" for m in rest):
        return f"top {k} layer{'s' if k > 1 else ''} full"
    if rest and rest[-1] == "channels" and all(m == "frozen" for m in rest[:-1]):
        index = weighted[len(weighted) - k - 1]
        layer = model.layers[index]
        prefix = f"top {k} full + " if k else ""
        return f"{prefix}{len(spec.layers[index].channels)}/{layer.channels} channels of {layer.name}"
    return spec.describe(model)


def select_by_importance(model: Model, importance: Importance, budget: int, batch: int = 1,
                         momentum: bool = False, margin: float = 0.0,
                         planner: Planner | None = None) -> SparseSelection | None:
    """The w* of the most expected gain whose exact C-planned training arena (at `batch`,
    `momentum`) fits `budget * (1 - margin)` bytes; None when nothing with a gain fits. Pass a
    `planner` of the same (model, importance, batch, momentum) to share its plan cache."""
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"margin must be in [0, 1), got {margin}")
    usable = int(budget * (1.0 - margin))
    planner = planner or Planner(model, importance, batch, momentum)
    if (planner.model, planner.importance, planner.batch, planner.momentum) != (model, importance, batch, momentum):
        raise ValueError("the planner was built for another model, importance, batch or momentum")
    from ftte.selection.budget import sparse_candidates

    structured = [planner.trim(planner.state_of(c.spec)) for c in sparse_candidates(
        model, usable, batch, momentum, importance.channel_scores())]
    state = planner.select(usable, structured)
    if state is None:
        return None
    return _result(planner, state, usable)


def _result(planner: Planner, state: State, budget: int) -> SparseSelection:
    spec = planner.spec(state)
    return SparseSelection(spec, planner.plan(state), planner.gain(state), budget,
                           describe(planner.model, spec), planner.importance.total(), state)


def nested_tiers(model: Model, importance: Importance, budgets: Sequence[int], batch: int = 1,
                 momentum: bool = False, margin: float = 0.0) -> list[SparseSelection | None]:
    """One selection per budget (in the order given), nested: each tier trains a superset of
    every smaller budget's tier, so boards with more memory train more of the same w*. The
    smallest tier is `select_by_importance` of the smallest budget; each larger tier continues
    the greedy from the tier below. None for a budget where nothing fits (and the tiers above
    start from scratch)."""
    planner = Planner(model, importance, batch, momentum)
    tiers: dict[int, SparseSelection | None] = {}
    below: State | None = None
    for budget in sorted(set(int(b) for b in budgets)):
        usable = int(budget * (1.0 - margin))
        if below is None:
            chosen = select_by_importance(model, importance, budget, batch, momentum, margin, planner)
            tiers[budget] = chosen
            below = chosen.state if chosen is not None else None
            continue
        state = planner.greedy(below, usable)
        tiers[budget] = _result(planner, state, usable)
        below = state
    return [tiers[int(b)] for b in budgets]


def is_superset(model: Model, big: UpdateSpec, small: UpdateSpec) -> bool:
    """Does `big` train every parameter `small` trains?"""
    for layer, b, s in zip(model.layers, big.layers, small.layers):
        if s.mode == "frozen":
            continue
        if b.mode == "frozen":
            return False
        if s.mode == "bias":
            continue
        if b.mode == "bias":
            return False
        if b.mode == "full":
            continue
        if s.mode == "full" and len(b.channels) < layer.channels:
            return False
        if s.mode == "channels" and not set(s.channels) <= set(b.channels):
            return False
    return True


def union(model: Model, a: UpdateSpec, b: UpdateSpec) -> UpdateSpec:
    """The spec that trains everything `a` or `b` trains (per layer: the larger mode, the union of
    channel subsets)."""
    rank = {"frozen": 0, "bias": 1, "channels": 2, "full": 3}
    layers = []
    for layer, x, y in zip(model.layers, a.layers, b.layers):
        if x.mode == y.mode == "channels":
            rows = tuple(sorted(set(x.channels) | set(y.channels)))
            layers.append(LayerUpdate("full") if len(rows) >= layer.channels else LayerUpdate("channels", rows))
        else:
            layers.append(max(x, y, key=lambda u: rank[u.mode]))
    return UpdateSpec(tuple(layers))
