"""Layer records of a sequential model, and Keras-like builders that infer their shapes.

A `Layer` mirrors one `ftte_layer` record of the C layer table. Weight arrays use the C
layouts (see kernels/include/ftte_types.h): dense [out][in], conv [out][kh][kw][in],
depthwise [c][kh][kw], pointwise [out][in]; activations are NHWC, a 1-D signal has height 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

Shape = tuple[int, int, int]  # one sample: height, width, channels

WEIGHTED_OPS = ("dense", "conv2d", "conv1d", "depthwise_conv2d", "pointwise_conv2d")


@dataclass
class Layer:
    """One layer: operator, per-sample shapes, window geometry and parameters."""

    op: str
    in_shape: Shape
    out_shape: Shape
    kernel: tuple[int, int] = (0, 0)
    stride: tuple[int, int] = (0, 0)
    pad: tuple[int, int] = (0, 0)  # zero rows above, zero columns left; the rest is implied
    weights: np.ndarray | None = None
    bias: np.ndarray | None = None
    name: str = ""

    @property
    def has_weights(self) -> bool:
        return self.op in WEIGHTED_OPS

    @property
    def channels(self) -> int:
        """Output channels: the unit a channel-subset update selects."""
        return self.out_shape[2]

    def weight_rows(self) -> np.ndarray:
        """The weights as [out channels][row] (a view)."""
        assert self.weights is not None
        return self.weights.reshape(self.channels, -1)

    def copy(self) -> "Layer":
        return replace(
            self,
            weights=None if self.weights is None else self.weights.copy(),
            bias=None if self.bias is None else self.bias.copy(),
        )


LayerBuilder = Callable[[Shape, np.random.Generator], Layer]


def _window(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int]:
    """Output size and leading padding along one axis, as TensorFlow defines them."""
    if padding == "valid":
        if size < kernel:
            raise ValueError(f"window {kernel} larger than input {size} with 'valid' padding")
        return (size - kernel) // stride + 1, 0
    if padding == "same":
        out = math.ceil(size / stride)
        total = max((out - 1) * stride + kernel - size, 0)
        return out, total // 2
    raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _glorot(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int) -> np.ndarray:
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def dense(units: int, use_bias: bool = True, name: str = "") -> LayerBuilder:
    def build(shape: Shape, rng: np.random.Generator) -> Layer:
        if shape[0] != 1 or shape[1] != 1:
            raise ValueError(f"dense needs a flat input, got {shape}: add flatten() before it")
        w = _glorot(rng, (units, shape[2]), shape[2], units)
        b = np.zeros(units, np.float32) if use_bias else None
        return Layer("dense", shape, (1, 1, units), weights=w, bias=b, name=name)

    return build


def _conv(op: str, filters: int, kernel, strides, padding: str, use_bias: bool, name: str) -> LayerBuilder:
    kh, kw = _pair(kernel)
    sh, sw = _pair(strides)

    def build(shape: Shape, rng: np.random.Generator) -> Layer:
        out_h, pad_top = _window(shape[0], kh, sh, padding)
        out_w, pad_left = _window(shape[1], kw, sw, padding)
        out_c = shape[2] if op == "depthwise_conv2d" else filters
        if op == "depthwise_conv2d":
            w = _glorot(rng, (out_c, kh, kw), kh * kw, kh * kw)
        else:
            w = _glorot(rng, (out_c, kh, kw, shape[2]), kh * kw * shape[2], kh * kw * out_c)
            if op == "pointwise_conv2d":
                w = w.reshape(out_c, shape[2])
        b = np.zeros(out_c, np.float32) if use_bias else None
        return Layer(op, shape, (out_h, out_w, out_c), (kh, kw), (sh, sw), (pad_top, pad_left), w, b, name)

    return build


def conv2d(filters: int, kernel_size, strides=1, padding: str = "valid", use_bias: bool = True,
           name: str = "") -> LayerBuilder:
    return _conv("conv2d", filters, kernel_size, strides, padding, use_bias, name)


def conv1d(filters: int, kernel_size: int, strides: int = 1, padding: str = "valid",
           use_bias: bool = True, name: str = "") -> LayerBuilder:
    """A 1-D convolution over [width][channels] signals (height 1)."""
    return _conv("conv1d", filters, (1, kernel_size), (1, strides), padding, use_bias, name)


def depthwise_conv2d(kernel_size, strides=1, padding: str = "valid", use_bias: bool = True,
                     name: str = "") -> LayerBuilder:
    return _conv("depthwise_conv2d", 0, kernel_size, strides, padding, use_bias, name)


def pointwise_conv2d(filters: int, use_bias: bool = True, name: str = "") -> LayerBuilder:
    return _conv("pointwise_conv2d", filters, 1, 1, "valid", use_bias, name)


def _same_shape(op: str, name: str) -> LayerBuilder:
    return lambda shape, rng: Layer(op, shape, shape, name=name)


def relu(name: str = "") -> LayerBuilder:
    return _same_shape("relu", name)


def relu6(name: str = "") -> LayerBuilder:
    return _same_shape("relu6", name)


def _pool(op: str, pool, strides, name: str) -> LayerBuilder:
    ph, pw = _pair(pool)
    sh, sw = _pair(strides if strides is not None else pool)

    def build(shape: Shape, rng: np.random.Generator) -> Layer:
        out_h, _ = _window(shape[0], ph, sh, "valid")
        out_w, _ = _window(shape[1], pw, sw, "valid")
        return Layer(op, shape, (out_h, out_w, shape[2]), (ph, pw), (sh, sw), name=name)

    return build


def max_pool2d(pool_size=2, strides=None, name: str = "") -> LayerBuilder:
    return _pool("max_pool2d", pool_size, strides, name)


def avg_pool2d(pool_size=2, strides=None, name: str = "") -> LayerBuilder:
    return _pool("avg_pool2d", pool_size, strides, name)


def max_pool1d(pool_size: int = 2, strides: int | None = None, name: str = "") -> LayerBuilder:
    return _pool("max_pool2d", (1, pool_size), (1, strides or pool_size), name)


def avg_pool1d(pool_size: int = 2, strides: int | None = None, name: str = "") -> LayerBuilder:
    return _pool("avg_pool2d", (1, pool_size), (1, strides or pool_size), name)


def global_avg_pool(name: str = "") -> LayerBuilder:
    return lambda shape, rng: Layer("global_avg_pool", shape, (1, 1, shape[2]), name=name)


def flatten(name: str = "") -> LayerBuilder:
    return lambda shape, rng: Layer("flatten", shape, (1, 1, shape[0] * shape[1] * shape[2]), name=name)
