"""The update spec w* a fleet trains: explicit in the config, or the largest that fits the
weakest board.

"auto" asks ftte.selection (the sparse-update selector: top layers in full, then output channels
of the layer below, channels ranked by weight norm) for the candidate with the most trainable
parameters whose exact C-planned arena fits min(board RAM) * (1 - margin); bias-only is the
last resort. "importance" asks ftte.selection.select_by_importance instead: the groups (biases,
channel rows) of the most importance per byte, the importance measured on the host's calibration
set (`calibrate`); docs/selection.md. coordinator.trainable.FleetSelector chooses again with these
rules when the fleet changes. Pure: no I/O; the memory numbers come from the C planner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ftte.model import LayerUpdate, Model, UpdateSpec
from ftte.selection import (
    Importance, calibration_importance, select_by_importance, select_sparse_update,
)
from ftte.selection.revisit import usable as usable_budget  # noqa: F401 - re-exported: min(RAM) * (1 - margin)
from ftte.train import MemoryPlan, plan_memory


@dataclass(frozen=True)
class Selection:
    spec: UpdateSpec
    label: str
    memory: MemoryPlan
    budget: int  # the bytes it had to fit in


def choose_spec(model: Model, budget: int, batch: int, momentum: bool,
                explicit: str | Mapping[str, object] = "auto", importance: Importance | None = None) -> Selection:
    """The spec to train. `explicit`: "auto", "importance" (needs `importance`), "full", "bias",
    or {layer name: "full" | "bias" | [channels]} (other layers frozen). An explicit spec that
    does not fit is an error."""
    auto = explicit in ("auto", "importance")
    if explicit == "importance":
        if importance is None:
            raise ValueError("spec 'importance' needs the importance of the model's parameters: calibration data "
                             "on the host ([data] server_share > 0)")
        chosen = select_by_importance(model, importance, budget, batch, momentum)
        if chosen is not None:
            return Selection(chosen.spec, chosen.label, chosen.memory, budget)
        explicit = "bias"
    if explicit == "auto":
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


def calibrate(model: Model, x, y, limit: int = 256) -> Importance | None:
    """The importance of the model's parameter groups on (at most `limit` of) the host's samples:
    the mean squared per-sample gradient ("power"), through the C kernels; None with fewer than
    2 samples."""
    if len(x) < 2:
        return None
    return calibration_importance(model, x[:limit], y[:limit], batch=1)


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
