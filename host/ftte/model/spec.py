"""Update specs: what each layer trains (frozen, bias only, a subset of channels, or all)."""

from __future__ import annotations

from dataclasses import dataclass

from ftte.model.model import Model

MODES = ("frozen", "bias", "channels", "full")


@dataclass(frozen=True)
class LayerUpdate:
    mode: str = "frozen"
    channels: tuple[int, ...] = ()  # output channels whose weight rows train, for 'channels'

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"update mode must be one of {MODES}, got {self.mode!r}")
        if self.mode != "channels" and self.channels:
            raise ValueError(f"channels given for mode {self.mode!r}; use mode 'channels'")


@dataclass(frozen=True)
class UpdateSpec:
    """One LayerUpdate per layer of the model."""

    layers: tuple[LayerUpdate, ...]

    @staticmethod
    def uniform(model: Model, mode: str) -> "UpdateSpec":
        """`mode` for every layer with weights ('bias' skips layers without a bias)."""
        updates = []
        for layer in model.layers:
            ok = layer.has_weights and (mode != "bias" or layer.bias is not None)
            updates.append(LayerUpdate(mode if ok else "frozen"))
        return UpdateSpec(tuple(updates))

    @staticmethod
    def full(model: Model) -> "UpdateSpec":
        return UpdateSpec.uniform(model, "full")

    @staticmethod
    def bias_only(model: Model) -> "UpdateSpec":
        return UpdateSpec.uniform(model, "bias")

    @staticmethod
    def frozen(model: Model) -> "UpdateSpec":
        return UpdateSpec(tuple(LayerUpdate() for _ in model.layers))

    @staticmethod
    def of(model: Model, updates: dict[int, LayerUpdate]) -> "UpdateSpec":
        """Frozen everywhere except the given layer indices."""
        for index in updates:
            if not 0 <= index < len(model.layers):
                raise IndexError(f"layer {index} out of range (model has {len(model.layers)})")
        return UpdateSpec(tuple(updates.get(i, LayerUpdate()) for i in range(len(model.layers))))

    def to_json(self) -> list[dict]:
        """Plain values (what run.sqlite stores)."""
        return [{"mode": u.mode, "channels": list(u.channels)} for u in self.layers]

    @staticmethod
    def from_json(data: list[dict]) -> "UpdateSpec":
        return UpdateSpec(tuple(LayerUpdate(d["mode"], tuple(d["channels"])) for d in data))

    def describe(self, model: Model) -> str:
        parts = []
        for layer, u in zip(model.layers, self.layers):
            if u.mode == "channels":
                parts.append(f"{layer.name}:{len(u.channels)}/{layer.channels}ch")
            elif u.mode != "frozen":
                parts.append(f"{layer.name}:{u.mode}")
        return ", ".join(parts) or "nothing trainable"
