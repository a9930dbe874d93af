"""A sequential model: its layers with their parameters, built from Keras-like builders."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ftte.model.layers import Layer, LayerBuilder, Shape


@dataclass
class Model:
    """Layers in order; the last one outputs the logits {1, 1, classes}."""

    input_shape: Shape
    layers: list[Layer]
    name: str = "model"
    metadata: dict = field(default_factory=dict)

    @property
    def classes(self) -> int:
        return self.layers[-1].out_shape[2]

    def parameter_count(self) -> int:
        return sum(a.size for layer in self.layers for a in (layer.weights, layer.bias) if a is not None)

    def copy(self) -> "Model":
        return Model(self.input_shape, [layer.copy() for layer in self.layers], self.name, dict(self.metadata))

    def weighted_layers(self) -> list[int]:
        return [i for i, layer in enumerate(self.layers) if layer.has_weights]

    def get_parameters(self) -> list[np.ndarray]:
        """Every parameter array, weights then bias per layer, in layer order (views)."""
        return [a for layer in self.layers for a in (layer.weights, layer.bias) if a is not None]

    def set_parameters(self, arrays: list[np.ndarray]) -> None:
        """Copies arrays (as from get_parameters) into the model's own arrays, in place."""
        own = self.get_parameters()
        if len(own) != len(arrays):
            raise ValueError(f"expected {len(own)} arrays, got {len(arrays)}")
        for target, source in zip(own, arrays):
            if target.shape != np.shape(source):
                raise ValueError(f"parameter shape {np.shape(source)} != {target.shape}")
            target[...] = source


def sequential(input_shape: Shape | tuple[int, ...], builders: list[LayerBuilder], seed: int = 0,
               name: str = "model") -> Model:
    """Builds a model layer by layer, inferring shapes; weights get Glorot-uniform values."""
    shape = _as_shape(input_shape)
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    for index, build in enumerate(builders):
        layer = build(shape, rng)
        if not layer.name:
            layer.name = f"{layer.op}_{index}"
        layers.append(layer)
        shape = layer.out_shape
    if shape[0] != 1 or shape[1] != 1:
        raise ValueError(f"the last layer must output flat logits, got {shape}")
    return Model(_as_shape(input_shape), layers, name)


def _as_shape(shape: tuple[int, ...]) -> Shape:
    """(features,) -> (1, 1, f); (width, channels) -> (1, w, c); (h, w, c) as is."""
    dims = tuple(int(d) for d in shape)
    if len(dims) == 1:
        return (1, 1, dims[0])
    if len(dims) == 2:
        return (1, dims[0], dims[1])
    if len(dims) == 3:
        return dims  # type: ignore[return-value]
    raise ValueError(f"input shape must have 1 to 3 dimensions, got {shape}")
