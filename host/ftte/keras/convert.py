"""A Keras model (Sequential, or functional as a linear chain) -> an FTTE Model.

Walks the Keras graph from the output back to the input, refusing branches, and maps each layer
onto FTTE layer records (kernels/include/ftte_types.h) with the weights in FTTE's layouts:

- Dense, Conv1D/2D, DepthwiseConv1D/2D (depth multiplier 1), SeparableConv1D/2D (depthwise +
  pointwise); a 1x1 stride-1 Conv2D (and a Dense on a spatial tensor) becomes pointwise_conv2d.
- `activation=` relu / relu6 becomes a separate FTTE layer; ReLU / ReLU6 / Activation layers.
- Pooling (max, average, global average), Flatten; Reshape is free (NHWC memory is unchanged).
- ZeroPadding / Cropping and 'same' / 'causal' padding are folded into the next window.
- BatchNormalization right after a conv / dense is folded into its weights and bias.
- Dropout-like layers are identities at inference and dropped; a final softmax is dropped
  (FTTE outputs logits and trains with softmax cross-entropy on them).

Anything else raises UnsupportedModelError naming the layer. TensorFlow is imported only by
load_keras(); convert_keras() takes an already loaded model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ftte.keras.geometry import Axis, GeometryError, cropped, padded, window
from ftte.keras.layouts import BatchNorm, conv_weights, dense_weights, depthwise_weights, fold_batchnorm
from ftte.model.layers import Layer, Shape
from ftte.model.model import Model


class UnsupportedModelError(ValueError):
    """A Keras model or layer FTTE cannot run; the message names the layer and the reason."""


@dataclass(frozen=True)
class Step:
    """One Keras layer and what it became."""

    keras_name: str
    keras_class: str
    ftte_layers: tuple[str, ...] = ()
    note: str = ""


@dataclass
class Conversion:
    """The converted model, what each Keras layer became, and the softmax dropped (if any)."""

    model: Model
    steps: list[Step]
    dropped_softmax: bool = False

    @property
    def notes(self) -> list[str]:
        return [f"{s.keras_name} ({s.keras_class}): {s.note}" for s in self.steps if s.note]

    def source_of(self, ftte_name: str) -> str:
        """The Keras layer an FTTE layer came from."""
        return next(s.keras_name for s in self.steps if ftte_name in s.ftte_layers)


# ------------------------------------------------------------------------------------------
# Loading and the graph walk
# ------------------------------------------------------------------------------------------

def load_keras(path: str | Path):
    """Loads a .keras or .h5 model (no compile, safe mode) with TensorFlow imported lazily."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no Keras model at {path}")
    if path.suffix not in (".keras", ".h5", ".hdf5"):
        raise UnsupportedModelError(f"{path}: expected a .keras or .h5 file")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: PLC0415 (optional dependency)

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a bad or foreign file
        raise UnsupportedModelError(f"cannot load {path}: {error}") from error


@dataclass(frozen=True)
class _Call:
    """One layer call of the chain, with per-sample Keras shapes."""

    layer: Any
    input: tuple[int, ...]
    output: tuple[int, ...]

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def kind(self) -> str:
        return type(self.layer).__name__


def _sample_shape(tensor) -> tuple[int, ...]:
    return tuple(int(d) for d in tensor.shape[1:])


def _chain(model) -> list[_Call]:
    """The model's layer calls from input to output; refuses anything but a single chain."""
    import keras  # noqa: PLC0415

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedModelError(f"model {model.name!r}: needs one input and one output, has "
                                    f"{len(model.inputs)} and {len(model.outputs)}")
    calls: list[_Call] = []
    tensor = model.outputs[0]
    while True:
        history = tensor._keras_history
        layer = history.operation
        if isinstance(layer, keras.layers.InputLayer):
            return calls[::-1]
        node = layer._inbound_nodes[history.node_index]
        inputs = keras.tree.flatten(node.input_tensors)
        if len(inputs) != 1:
            raise UnsupportedModelError(f"layer {layer.name!r} ({type(layer).__name__}): takes {len(inputs)} "
                                        "inputs; branches (Add, Concatenate, ...) are not supported")
        if isinstance(layer, keras.Model):
            calls.extend(_chain(layer)[::-1])
        else:
            calls.append(_Call(layer, _sample_shape(inputs[0]), _sample_shape(node.output_tensors[0])))
        tensor = inputs[0]


def _ftte_shape(shape: tuple[int, ...], what: str) -> Shape:
    """Keras per-sample shape -> (h, w, c): (f,) -> (1, 1, f), (w, c) -> (1, w, c)."""
    if not 1 <= len(shape) <= 3 or any(d is None or d <= 0 for d in shape):
        raise UnsupportedModelError(f"{what}: shape {shape} is not [features], [width, channels] "
                                    "or [height, width, channels]")
    return (1,) * (3 - len(shape)) + tuple(shape)  # type: ignore[return-value]


# ------------------------------------------------------------------------------------------
# The builder: FTTE layers so far, pending padding, what BatchNorm may fold into
# ------------------------------------------------------------------------------------------

@dataclass
class _Builder:
    shape: Shape  # FTTE shape of the current tensor
    layers: list[Layer] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    pending: tuple[Axis, Axis] | None = None  # padding/cropping not yet folded into a window
    pending_from: str = ""  # the Keras layer that started it
    source: Shape | None = None  # the real tensor before the pending padding
    foldable: bool = False  # the last FTTE layer has weights and nothing came after it
    softmax: str = ""  # the Keras layer whose softmax was dropped

    def emit(self, call: _Call, layer: Layer) -> None:
        if self.softmax:
            raise _refuse(call, f"comes after the softmax of {self.softmax!r}; softmax is only "
                                "supported as the model's last operation")
        names = {existing.name for existing in self.layers}
        layer.name = layer.name if layer.name not in names else f"{layer.name}_{len(self.layers)}"
        self.layers.append(layer)
        self.shape = layer.out_shape
        self.foldable = layer.has_weights

    def axes(self) -> tuple[tuple[Axis, Axis], Shape]:
        """The spatial axes a window reads (with pending padding folded in) and its input shape."""
        if self.pending is None:
            return (Axis.of(self.shape[0]), Axis.of(self.shape[1])), self.shape
        axes, source = self.pending, self.source
        self.pending, self.source = None, None
        assert source is not None
        return axes, source

    def require_plain(self, call: _Call) -> None:
        if self.pending is not None:
            raise _refuse(call, f"follows the padding/cropping of {self.pending_from!r}, which can only be "
                                "folded into a directly following convolution or pooling")


def _refuse(call: _Call, reason: str) -> UnsupportedModelError:
    return UnsupportedModelError(f"layer {call.name!r} ({call.kind}): {reason}")


def _config(call: _Call) -> dict:
    config = call.layer.get_config()
    if config.get("data_format", "channels_last") != "channels_last":
        raise _refuse(call, f"data_format {config['data_format']!r} (only channels_last)")
    if any(d != 1 for d in np.atleast_1d(config.get("dilation_rate", 1))):
        raise _refuse(call, f"dilation_rate {config['dilation_rate']} (only 1)")
    if config.get("groups", 1) != 1:
        raise _refuse(call, f"groups={config['groups']} (only 1)")
    if config.get("depth_multiplier", 1) != 1:
        raise _refuse(call, f"depth_multiplier={config['depth_multiplier']} (only 1)")
    return config


# ------------------------------------------------------------------------------------------
# Activations
# ------------------------------------------------------------------------------------------

_SOFTMAX_NOTE = ("softmax dropped: FTTE outputs logits and trains with softmax cross-entropy on "
                 "them (apply softmax to the outputs for probabilities)")


def _activation(b: _Builder, call: _Call, name: str, suffix: bool) -> tuple[tuple[str, ...], str]:
    """Emits the FTTE layer of a named activation; returns (layers emitted, note)."""
    if not isinstance(name, str):
        raise _refuse(call, f"custom activation {name!r} is not supported")
    if name == "linear":
        return (), ""
    if name == "softmax":
        b.softmax = call.name
        return (), _SOFTMAX_NOTE
    if name not in ("relu", "relu6"):
        raise _refuse(call, f"activation {name!r} is not supported (only relu, relu6, linear, "
                            "and softmax as the last operation)")
    b.require_plain(call)
    layer = Layer(name, b.shape, b.shape, name=f"{call.name}_{name}" if suffix else call.name)
    b.emit(call, layer)
    return (layer.name,), ""


def _activation_layer(b: _Builder, call: _Call) -> Step:
    config = call.layer.get_config()
    if call.kind == "Softmax":
        if config.get("axis", -1) not in (-1, len(call.input)):
            raise _refuse(call, f"softmax over axis {config['axis']} (only the last)")
        name = "softmax"
    elif call.kind == "ReLU":
        name = _relu_kind(call, config)
    else:
        name = config["activation"]
    emitted, note = _activation(b, call, name, suffix=False)
    return Step(call.name, call.kind, emitted, note)


def _relu_kind(call: _Call, config: dict) -> str:
    if config.get("negative_slope") or config.get("threshold"):
        raise _refuse(call, "negative_slope / threshold are not supported (only plain ReLU and ReLU6)")
    if config.get("max_value") is None:
        return "relu"
    if float(config["max_value"]) == 6.0:
        return "relu6"
    raise _refuse(call, f"max_value={config['max_value']} (only None or 6)")


# ------------------------------------------------------------------------------------------
# Weighted layers
# ------------------------------------------------------------------------------------------

def _weighted(b: _Builder, call: _Call, layers: list[Layer], activation: str, note: str = "") -> Step:
    for layer in layers:
        b.emit(call, layer)
    emitted, activation_note = _activation(b, call, activation, suffix=True)
    return Step(call.name, call.kind, tuple(layer.name for layer in layers) + emitted,
                "; ".join(n for n in (note, activation_note) if n))


def _dense(b: _Builder, call: _Call) -> Step:
    config = _config(call)
    b.require_plain(call)
    kernel, *bias = call.layer.get_weights()
    units, shape = config["units"], b.shape
    if shape[:2] == (1, 1):
        layer = Layer("dense", shape, (1, 1, units), weights=dense_weights(kernel), name=call.name)
        note = ""
    else:
        layer = Layer("pointwise_conv2d", shape, (shape[0], shape[1], units), (1, 1), (1, 1), (0, 0),
                      dense_weights(kernel), name=call.name)
        note = "Dense on a spatial tensor (per position) runs as pointwise_conv2d"
    layer.bias = np.asarray(bias[0], np.float32).copy() if bias else None
    return _weighted(b, call, [layer], config["activation"], note)


def _rank(call: _Call) -> int:
    return 1 if call.kind.endswith("1D") else 2


def _geometry(b: _Builder, call: _Call, config: dict, pooling: bool = False):
    """(input shape, kernel, stride, pad, output h and w) of a 1-D or 2-D window layer."""
    rank = _rank(call)
    kernel = tuple(config["pool_size" if pooling else "kernel_size"])
    stride = tuple(config["strides"] or kernel)
    if rank == 1:
        kernel, stride = (1,) + kernel, (1,) + stride
    (axis_h, axis_w), source = b.axes()
    try:
        wh = window(axis_h, kernel[0], stride[0], config["padding"], not pooling)
        ww = window(axis_w, kernel[1], stride[1], config["padding"], not pooling)
    except GeometryError as error:
        raise _refuse(call, str(error)) from None
    expected = _ftte_shape(call.output, call.name)[:2]
    if (wh.out, ww.out) != expected:
        raise RuntimeError(f"{call.name}: computed output {(wh.out, ww.out)} != Keras {expected}")
    return source, kernel, stride, (wh.pad, ww.pad), (wh.out, ww.out)


def _conv(b: _Builder, call: _Call) -> Step:
    config = _config(call)
    kernel, *bias = call.layer.get_weights()
    source, k, s, pad, (oh, ow) = _geometry(b, call, config)
    filters = config["filters"]
    bias_array = np.asarray(bias[0], np.float32).copy() if bias else None
    if call.kind == "Conv2D" and k == (1, 1) and s == (1, 1) and pad == (0, 0):
        layer = Layer("pointwise_conv2d", source, (oh, ow, filters), k, s, pad, dense_weights(kernel),
                      bias_array, call.name)
    else:
        op = "conv1d" if _rank(call) == 1 else "conv2d"
        layer = Layer(op, source, (oh, ow, filters), k, s, pad, conv_weights(kernel), bias_array, call.name)
    return _weighted(b, call, [layer], config["activation"])


def _depthwise(b: _Builder, call: _Call) -> Step:
    config = _config(call)
    kernel, *bias = call.layer.get_weights()
    source, k, s, pad, (oh, ow) = _geometry(b, call, config)
    layer = Layer("depthwise_conv2d", source, (oh, ow, source[2]), k, s, pad, depthwise_weights(kernel),
                  np.asarray(bias[0], np.float32).copy() if bias else None, call.name)
    return _weighted(b, call, [layer], config["activation"])


def _separable(b: _Builder, call: _Call) -> Step:
    config = _config(call)
    depthwise, pointwise, *bias = call.layer.get_weights()
    source, k, s, pad, (oh, ow) = _geometry(b, call, config)
    first = Layer("depthwise_conv2d", source, (oh, ow, source[2]), k, s, pad, depthwise_weights(depthwise),
                  None, f"{call.name}_depthwise")
    second = Layer("pointwise_conv2d", (oh, ow, source[2]), (oh, ow, config["filters"]), (1, 1), (1, 1),
                   (0, 0), dense_weights(pointwise), np.asarray(bias[0], np.float32).copy() if bias else None,
                   f"{call.name}_pointwise")
    return _weighted(b, call, [first, second], config["activation"],
                     "split into depthwise_conv2d (no bias) + pointwise_conv2d")


def _batchnorm(b: _Builder, call: _Call) -> Step:
    layer = b.layers[-1] if b.layers else None
    if not b.foldable or layer is None or b.softmax or b.pending is not None:
        raise _refuse(call, "can only be folded into a directly preceding Conv/Dense layer with a linear "
                            "activation (standalone BatchNormalization is not supported)")
    axis = np.atleast_1d(call.layer.get_config()["axis"])
    if len(axis) != 1 or int(axis[0]) not in (-1, len(call.input)) or call.input[-1] != layer.channels:
        raise _refuse(call, f"normalizes axis {call.layer.get_config()['axis']}, not the {layer.channels} "
                            f"output channels of {layer.name!r}")
    bn = call.layer
    ones, zeros = np.ones(layer.channels), np.zeros(layer.channels)
    stats = BatchNorm(bn.gamma.numpy() if bn.scale else ones, bn.beta.numpy() if bn.center else zeros,
                      bn.moving_mean.numpy(), bn.moving_variance.numpy(), float(bn.epsilon))
    assert layer.weights is not None
    layer.weights, layer.bias = fold_batchnorm(layer.weights, layer.bias, stats)
    return Step(call.name, call.kind, (), f"folded into {layer.name!r} (inference statistics; on the "
                                          "device it trains as that layer's plain weights and bias)")


# ------------------------------------------------------------------------------------------
# Layers without weights
# ------------------------------------------------------------------------------------------

def _pool(b: _Builder, call: _Call) -> Step:
    config = _config(call)
    source, k, s, _, (oh, ow) = _geometry(b, call, config, pooling=True)
    op = "max_pool2d" if call.kind.startswith("Max") else "avg_pool2d"
    layer = Layer(op, source, (oh, ow, source[2]), k, s, (0, 0), name=call.name)
    b.emit(call, layer)
    return Step(call.name, call.kind, (layer.name,))


def _global_pool(b: _Builder, call: _Call) -> Step:
    _config(call)
    b.require_plain(call)
    layer = Layer("global_avg_pool", b.shape, (1, 1, b.shape[2]), name=call.name)
    b.emit(call, layer)
    return Step(call.name, call.kind, (layer.name,))


def _flatten(b: _Builder, call: _Call) -> Step:
    b.require_plain(call)
    if b.shape[:2] == (1, 1):
        return Step(call.name, call.kind, (), "")
    layer = Layer("flatten", b.shape, (1, 1, int(np.prod(b.shape))), name=call.name)
    b.emit(call, layer)
    return Step(call.name, call.kind, (layer.name,))


def _reshape(b: _Builder, call: _Call) -> Step:
    b.require_plain(call)
    _ftte_shape(call.output, f"layer {call.name!r} (Reshape)")
    return Step(call.name, call.kind)


def _identity(b: _Builder, call: _Call) -> Step:
    note = "" if call.kind == "Identity" else "ignored (an identity at inference; FTTE trains without it)"
    return Step(call.name, call.kind, (), note)


def _padding(b: _Builder, call: _Call) -> Step:
    config = _config(call)
    amounts = config["padding" if call.kind.startswith("Zero") else "cropping"]
    pairs = (((0, 0), tuple(amounts)) if _rank(call) == 1 else tuple(tuple(p) for p in amounts))
    if b.pending is None:
        b.pending, b.source, b.pending_from = (Axis.of(b.shape[0]), Axis.of(b.shape[1])), b.shape, call.name
    change = padded if call.kind.startswith("Zero") else cropped
    try:
        b.pending = (change(b.pending[0], *pairs[0]), change(b.pending[1], *pairs[1]))
    except GeometryError as error:
        raise _refuse(call, str(error)) from None
    return Step(call.name, call.kind, (), "folded into the next window layer's padding")


_HANDLERS: dict[str, Callable[[_Builder, _Call], Step]] = {
    "Dense": _dense,
    "Conv1D": _conv, "Conv2D": _conv,
    "DepthwiseConv1D": _depthwise, "DepthwiseConv2D": _depthwise,
    "SeparableConv1D": _separable, "SeparableConv2D": _separable,
    "BatchNormalization": _batchnorm,
    "ReLU": _activation_layer, "Activation": _activation_layer, "Softmax": _activation_layer,
    "MaxPooling1D": _pool, "MaxPooling2D": _pool, "AveragePooling1D": _pool, "AveragePooling2D": _pool,
    "GlobalAveragePooling1D": _global_pool, "GlobalAveragePooling2D": _global_pool,
    "Flatten": _flatten, "Reshape": _reshape,
    "Dropout": _identity, "SpatialDropout1D": _identity, "SpatialDropout2D": _identity,
    "GaussianDropout": _identity, "GaussianNoise": _identity, "AlphaDropout": _identity,
    "ActivityRegularization": _identity, "Identity": _identity,
    "ZeroPadding1D": _padding, "ZeroPadding2D": _padding, "Cropping1D": _padding, "Cropping2D": _padding,
}


def _handler(call: _Call) -> Callable[[_Builder, _Call], Step]:
    handler = _HANDLERS.get(call.kind)
    if handler is None or not type(call.layer).__module__.startswith("keras."):
        raise _refuse(call, "this layer type is not supported by the FTTE kernels")
    dtype = getattr(call.layer, "compute_dtype", "float32")
    if dtype != "float32":
        raise _refuse(call, f"dtype {dtype} (only float32)")
    return handler


# ------------------------------------------------------------------------------------------
# Conversion
# ------------------------------------------------------------------------------------------

def convert_keras(keras_model, name: str | None = None, source: str = "") -> Conversion:
    """Converts a loaded Keras model; raises UnsupportedModelError naming what is not supported."""
    inputs = keras_model.inputs
    if len(inputs) != 1:
        raise UnsupportedModelError(f"model {keras_model.name!r}: needs exactly one input, has {len(inputs)}")
    if str(inputs[0].dtype) != "float32":
        raise UnsupportedModelError(f"model {keras_model.name!r}: input dtype {inputs[0].dtype} (only float32)")
    input_shape = _ftte_shape(_sample_shape(inputs[0]), f"model {keras_model.name!r} input")
    b = _Builder(input_shape)
    for call in _chain(keras_model):
        b.steps.append(_handler(call)(b, call))
        b.shape = _ftte_shape(call.output, f"layer {call.name!r} output")
    return Conversion(_finish(b, keras_model, name or keras_model.name, source), b.steps, bool(b.softmax))


def _finish(b: _Builder, keras_model, name: str, source: str) -> Model:
    from ftte.native import FtteError, lib  # noqa: PLC0415
    from ftte.train.table import LayerTable  # noqa: PLC0415

    if b.pending is not None:
        raise UnsupportedModelError(f"layer {b.pending_from!r}: padding/cropping at the end of the model")
    if not any(layer.has_weights for layer in b.layers):
        raise UnsupportedModelError(f"model {keras_model.name!r}: no layer with weights to train")
    if b.shape[:2] != (1, 1) or b.layers[-1].out_shape[:2] != (1, 1):
        raise UnsupportedModelError(f"model {keras_model.name!r}: the output must be flat logits "
                                    f"[classes], got {b.shape}")
    if len(b.layers) > lib.FTTE_MAX_LAYERS:
        raise UnsupportedModelError(f"model {keras_model.name!r}: {len(b.layers)} FTTE layers, the C "
                                    f"planner holds at most FTTE_MAX_LAYERS = {lib.FTTE_MAX_LAYERS}")
    import keras  # noqa: PLC0415

    model = Model(_input_shape(keras_model), b.layers, name,
                  {"source": {"format": "keras", "file": source, "keras": keras.__version__,
                              "keras_model": keras_model.name}})
    try:
        LayerTable(model)
    except FtteError as error:
        raise UnsupportedModelError(f"the C kernels refuse the converted model: {error}") from None
    return model


def _input_shape(keras_model) -> Shape:
    return _ftte_shape(_sample_shape(keras_model.inputs[0]), "input")


def compare_outputs(conversion: Conversion, keras_model, samples: int = 8, seed: int = 0) -> float:
    """Largest difference between the C forward pass and Keras predict on random inputs, relative
    to the largest Keras output (probabilities when the final softmax was dropped)."""
    from ftte.model.spec import UpdateSpec  # noqa: PLC0415
    from ftte.train.trainer import Trainer  # noqa: PLC0415

    model = conversion.model
    x = np.random.default_rng(seed).normal(size=(samples,) + _sample_shape(keras_model.inputs[0]))
    x = x.astype(np.float32)
    expected = np.asarray(keras_model(x, training=False)).reshape(samples, -1)
    ours = Trainer(model, UpdateSpec.frozen(model), batch=samples).forward(x)
    if conversion.dropped_softmax:
        ours = np.exp(ours - ours.max(axis=1, keepdims=True))
        ours /= ours.sum(axis=1, keepdims=True)
    return float(np.abs(ours - expected).max() / max(np.abs(expected).max(), 1e-30))
