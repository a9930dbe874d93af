"""The exact on-device training memory of a (model, update spec, batch), from the C planner."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ftte.model.model import Model
from ftte.model.spec import UpdateSpec


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes; `total` is the training arena (RAM). Frozen parameters stay in flash."""

    params_ram: int
    optimizer_state: int
    saved_activations: int
    working_activations: int
    gradients: int
    scratch: int
    total: int
    params_flash: int
    trainable_params: int

    @staticmethod
    def from_c(memory) -> "MemoryPlan":
        return MemoryPlan(**{name: int(getattr(memory, name)) for name in MemoryPlan.__dataclass_fields__})

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def plan_memory(model: Model, spec: UpdateSpec | None = None, batch: int = 1,
                momentum: bool = False, training: bool = True) -> MemoryPlan:
    """The arena a training step (or, with training=False, inference) needs on a board."""
    from ftte.train.trainer import NativeConfig

    return NativeConfig(model, spec, batch, momentum, training).memory
