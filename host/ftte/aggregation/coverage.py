"""Where each trainable parameter sits in the flat global vector strategies work on.

The flat vector is the model's parameters in `Model.get_parameters()` order: per layer its
weights (C layout, one row of `row_length` floats per output channel), then its bias. That is
also the wire's PROVISION body order. An update spec selects, per layer, nothing / the bias /
some channels' weight rows plus the bias / everything; `ParameterIndex.indices(spec)` lists the
flat positions of that selection in arena order (per layer: the rows in channel order, then the
bias), which is exactly the order a board sends its deltas in (wire TASK/UPDATE bodies), and is
increasing, so an Update can carry these indices as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ftte.aggregation.core import frozen
from ftte.model.model import Model
from ftte.model.spec import LayerUpdate, UpdateSpec


@dataclass(frozen=True)
class LayerSlot:
    """One layer's place in the flat vector (-1 where a tensor is absent)."""

    weights: int
    bias: int
    channels: int
    row_length: int


@dataclass(frozen=True)
class ParameterIndex:
    """The flat layout of a model's parameters; pure arithmetic on shapes, no values kept."""

    slots: tuple[LayerSlot, ...]
    size: int

    @staticmethod
    def of(model: Model) -> "ParameterIndex":
        slots, offset = [], 0
        for layer in model.layers:
            weights = bias = -1
            row_length = 0
            if layer.weights is not None:
                weights, row_length = offset, layer.weights.size // layer.channels
                offset += layer.weights.size
            if layer.bias is not None:
                bias = offset
                offset += layer.bias.size
            slots.append(LayerSlot(weights, bias, layer.channels, row_length))
        return ParameterIndex(tuple(slots), offset)

    def indices(self, spec: UpdateSpec) -> np.ndarray:
        """Flat positions of the parameters `spec` trains, increasing (int64, read-only: updates
        carry this very array, and strategies keep it without a copy)."""
        if len(spec.layers) != len(self.slots):
            raise ValueError(f"update spec has {len(spec.layers)} layers, the model {len(self.slots)}")
        parts = [self._layer(i, slot, u) for i, (slot, u) in enumerate(zip(self.slots, spec.layers))]
        return frozen(np.concatenate([np.zeros(0, np.int64), *parts]))

    def mask(self, spec: UpdateSpec) -> np.ndarray:
        """The same selection as a boolean mask over the flat vector."""
        mask = np.zeros(self.size, bool)
        mask[self.indices(spec)] = True
        return mask

    def _layer(self, index: int, slot: LayerSlot, update: LayerUpdate) -> np.ndarray:
        if update.mode == "frozen":
            return np.zeros(0, np.int64)
        if slot.weights < 0:
            raise ValueError(f"layer {index} has no weights to train (mode {update.mode!r})")
        bias = np.arange(slot.bias, slot.bias + slot.channels) if slot.bias >= 0 else np.zeros(0, np.int64)
        if update.mode == "bias":
            if slot.bias < 0:
                raise ValueError(f"layer {index} has no bias (mode 'bias')")
            return bias
        rows = np.arange(slot.channels) if update.mode == "full" else self._channels(index, slot, update)
        weights = slot.weights + (rows[:, None] * slot.row_length + np.arange(slot.row_length)).ravel()
        return np.concatenate([weights.astype(np.int64), bias.astype(np.int64)])

    @staticmethod
    def _channels(index: int, slot: LayerSlot, update: LayerUpdate) -> np.ndarray:
        rows = np.unique(np.asarray(update.channels, np.int64))
        if rows.size and (rows[0] < 0 or rows[-1] >= slot.channels):
            raise ValueError(f"layer {index}: channel out of range [0, {slot.channels}) in {update.channels}")
        return rows


def flat_parameters(model: Model) -> np.ndarray:
    """The model's parameters as one float32 vector (a copy), in ParameterIndex order."""
    arrays = [np.ravel(a) for a in model.get_parameters()]
    return np.concatenate(arrays).astype(np.float32) if arrays else np.zeros(0, np.float32)


def load_flat_parameters(model: Model, vector: np.ndarray) -> None:
    """Copies a flat vector (as from a strategy) into the model's own arrays, in place."""
    vector = np.asarray(vector, np.float32)
    own = model.get_parameters()
    total = sum(a.size for a in own)
    if vector.shape != (total,):
        raise ValueError(f"flat vector has shape {vector.shape}, the model has {total} parameters")
    offset = 0
    for array in own:
        array[...] = vector[offset:offset + array.size].reshape(array.shape)
        offset += array.size
