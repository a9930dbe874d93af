"""The update spec w* a fleet trains: explicit in the config, or the largest that fits the
weakest board.

"auto" asks ftte.selection (the sparse-update selector: top layers in full, then output channels
of the layer below, channels ranked by weight norm) for the candidate with the most trainable
parameters whose exact C-planned arena fits min(board RAM) * (1 - margin); bias-only is the
last resort. Pure: no I/O; the memory numbers come from the C planner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ftte.model import LayerUpdate, Model, UpdateSpec
from ftte.selection import select_sparse_update
from ftte.train import MemoryPlan, plan_memory


@dataclass(frozen=True)
class Selection:
    spec: UpdateSpec
    label: str
    memory: MemoryPlan
    budget: int  # the bytes it had to fit in


def usable_budget(ram_budgets: Sequence[int], margin: float) -> int:
    """What the weakest board can give training, minus a safety margin (a fraction)."""
    if not ram_budgets:
        raise ValueError("no boards: nothing to size the update for")
    return int(min(ram_budgets) * (1.0 - margin))


def choose_spec(model: Model, budget: int, batch: int, momentum: bool,
                explicit: str | Mapping[str, object] = "auto") -> Selection:
    """The spec to train. `explicit`: "auto", "full", "bias", or {layer name: "full" | "bias" |
    [channels]} (other layers frozen). An explicit spec that does not fit is an error."""
    auto = explicit == "auto"
    if auto:
        found = select_sparse_update(model, budget, batch, momentum)
        if found is not None:
            return Selection(found.spec, found.label, found.memory, budget)
        explicit = "bias"
    spec, label = spec_from_config(model, explicit)
    memory = plan_memory(model, spec, batch, momentum)
    if memory.total > budget and auto:
        raise ValueError(f"nothing of {model.name} can train in {budget:,} B (the weakest board after the margin) "
                         f"at batch {batch}: not one channel of the last layer, nor the biases ({memory.total:,} B)")
    if memory.total > budget:
        raise ValueError(f"update spec {label!r} needs a {memory.total:,} B training arena (batch {batch}), "
                         f"the weakest board gives {budget:,} B after the margin")
    return Selection(spec, label, memory, budget)


def spec_from_config(model: Model, value: str | Mapping[str, object]) -> tuple[UpdateSpec, str]:
    """An UpdateSpec from the config's [budget] spec value, and a label for it."""
    if value == "full":
        return UpdateSpec.full(model), "full"
    if value == "bias":
        return UpdateSpec.bias_only(model), "bias only"
    if not isinstance(value, Mapping):
        raise ValueError(f"spec must be 'auto', 'full', 'bias' or a table of layer names, got {value!r}")
    names = {layer.name: i for i, layer in enumerate(model.layers)}
    updates: dict[int, LayerUpdate] = {}
    for name, mode in value.items():
        if name not in names:
            raise ValueError(f"spec: no layer {name!r} in {model.name} (layers: {', '.join(names)})")
        if isinstance(mode, str):
            updates[names[name]] = LayerUpdate(mode)
        else:
            updates[names[name]] = LayerUpdate("channels", tuple(int(c) for c in mode))  # type: ignore[union-attr]
    spec = UpdateSpec.of(model, updates)
    return spec, spec.describe(model)


def spec_to_json(spec: UpdateSpec) -> list[dict]:
    return [{"mode": u.mode, "channels": list(u.channels)} for u in spec.layers]


def spec_from_json(data: list[dict]) -> UpdateSpec:
    return UpdateSpec(tuple(LayerUpdate(d["mode"], tuple(d["channels"])) for d in data))
