"""The Keras twin of an ftte Model: a Keras model computing exactly what the C kernels compute,
with the same weights. Used as the TensorFlow reference by the parity tests and by the
throughput benchmark. Importing this module imports TensorFlow (the `tensorflow` extra).

Layout conversions (ours -> Keras):
  dense      [out][in]          -> Dense kernel [in][out]
  conv2d     [out][kh][kw][in]  -> Conv2D kernel HWIO [kh][kw][in][out]
  conv1d     [out][1][kw][in]   -> Conv1D kernel [kw][in][out] (run on the height-1 tensor
                                   reshaped to [n][w][c]: the 1-D op TensorFlow really has)
  depthwise  [c][kh][kw]        -> DepthwiseConv2D kernel [kh][kw][c][1]
  pointwise  [out][in]          -> Conv2D 1x1 kernel [1][1][in][out]

Padding: our layers store only the zero rows/columns before the input (pad_top, pad_left);
the rows after are implied by the output size. The twin pads explicitly (ZeroPadding, then a
'valid' conv), with the trailing amount computed from our shapes, so asymmetric padding is
reproduced exactly, and crops when our output leaves trailing input rows unread.

Everything between layers stays a 4-D NHWC tensor (dense runs on a reshape of its flat input
and is reshaped back to [n][1][1][units]); the logits are reshaped to [n][classes] at the end.
"""

from __future__ import annotations

import numpy as np
import keras

from ftte.model import Model
from ftte.model.layers import Layer

Params = list[tuple[np.ndarray | None, np.ndarray | None]]  # per ftte layer: (weights, bias)


def to_keras_kernel(layer: Layer, weights: np.ndarray) -> np.ndarray:
    """Our weight array of `layer` in the layout of its Keras twin's kernel."""
    w = np.asarray(weights, np.float32)
    if layer.op == "dense":
        return w.T.copy()
    if layer.op == "conv2d":
        return w.transpose(1, 2, 3, 0).copy()
    if layer.op == "conv1d":
        return w[:, 0].transpose(1, 2, 0).copy()
    if layer.op == "depthwise_conv2d":
        return w.transpose(1, 2, 0)[..., None].copy()
    if layer.op == "pointwise_conv2d":
        return w.T[None, None].copy()
    raise ValueError(f"{layer.op} has no weights")


def from_keras_kernel(layer: Layer, kernel: np.ndarray) -> np.ndarray:
    """A Keras kernel (or its gradient) of `layer`'s twin in our layout, shaped like layer.weights."""
    k = np.asarray(kernel, np.float32)
    if layer.op == "dense":
        out = k.T
    elif layer.op == "conv2d":
        out = k.transpose(3, 0, 1, 2)
    elif layer.op == "conv1d":
        out = k.transpose(2, 0, 1)[:, None]
    elif layer.op == "depthwise_conv2d":
        out = k[..., 0].transpose(2, 0, 1)
    elif layer.op == "pointwise_conv2d":
        out = k[0, 0].T
    else:
        raise ValueError(f"{layer.op} has no weights")
    return np.ascontiguousarray(out).reshape(layer.weights.shape)


def _trailing(size: int, out: int, kernel: int, stride: int, before: int) -> int:
    """Zero rows after the input (negative: input rows no window reads) for our geometry."""
    return (out - 1) * stride + kernel - size - before


class KerasTwin:
    """A Keras functional model computing exactly what an ftte Model computes."""

    def __init__(self, model: Model):
        self.model = model
        self.layers: dict[int, keras.layers.Layer] = {}  # ftte layer index -> weighted twin
        inputs = keras.Input(shape=tuple(model.input_shape), dtype="float32")
        t = inputs
        for index, layer in enumerate(model.layers):
            t = self._add(index, layer, t)
            if tuple(t.shape[1:]) != tuple(layer.out_shape):
                raise AssertionError(f"twin of {layer.name}: shape {t.shape[1:]} != {layer.out_shape}")
        logits = keras.layers.Reshape((model.classes,))(t)
        self.keras = keras.Model(inputs, logits, name=f"{model.name}_twin")
        self.set_weights(model)

    def _add(self, index: int, layer: Layer, t):
        L = keras.layers
        (h, w, c), (oh, ow, oc) = layer.in_shape, layer.out_shape
        use_bias = layer.bias is not None
        if layer.op == "dense":
            twin = L.Dense(oc, use_bias=use_bias)
            t = L.Reshape((oh, ow, oc))(twin(L.Reshape((c,))(t)))
        elif layer.op in ("conv2d", "depthwise_conv2d", "pointwise_conv2d"):
            t = self._pad2d(layer, t)
            if layer.op == "conv2d":
                twin = L.Conv2D(oc, layer.kernel, strides=layer.stride, padding="valid", use_bias=use_bias)
            elif layer.op == "depthwise_conv2d":
                twin = L.DepthwiseConv2D(layer.kernel, strides=layer.stride, padding="valid",
                                         depth_multiplier=1, use_bias=use_bias)
            else:
                twin = L.Conv2D(oc, 1, strides=1, padding="valid", use_bias=use_bias)
            t = twin(t)
        elif layer.op == "conv1d":
            (kw,), (sw,), left = layer.kernel[1:], layer.stride[1:], layer.pad[1]
            right = _trailing(w, ow, kw, sw, left)
            t = L.Reshape((w, c))(t)
            if left or right > 0:
                t = L.ZeroPadding1D((left, max(right, 0)))(t)
            if right < 0:
                t = L.Cropping1D((0, -right))(t)
            twin = L.Conv1D(oc, kw, strides=sw, padding="valid", use_bias=use_bias)
            t = L.Reshape((1, ow, oc))(twin(t))
        elif layer.op == "relu":
            return L.Activation("relu")(t)
        elif layer.op == "relu6":
            return L.Activation("relu6")(t)  # tf.nn.relu6: no gradient where clipped
        elif layer.op == "max_pool2d":
            return L.MaxPooling2D(layer.kernel, strides=layer.stride, padding="valid")(t)
        elif layer.op == "avg_pool2d":
            return L.AveragePooling2D(layer.kernel, strides=layer.stride, padding="valid")(t)
        elif layer.op == "global_avg_pool":
            return L.GlobalAveragePooling2D(keepdims=True)(t)
        elif layer.op == "flatten":
            return L.Reshape((1, 1, oc))(L.Flatten()(t))
        else:
            raise ValueError(f"no Keras twin for {layer.op}")
        self.layers[index] = twin
        return t

    @staticmethod
    def _pad2d(layer: Layer, t):
        (h, w, _), (oh, ow, _) = layer.in_shape, layer.out_shape
        (kh, kw), (sh, sw), (top, left) = layer.kernel, layer.stride, layer.pad
        bottom, right = _trailing(h, oh, kh, sh, top), _trailing(w, ow, kw, sw, left)
        if top or left or bottom > 0 or right > 0:
            t = keras.layers.ZeroPadding2D(((top, max(bottom, 0)), (left, max(right, 0))))(t)
        if bottom < 0 or right < 0:
            t = keras.layers.Cropping2D(((0, max(-bottom, 0)), (0, max(-right, 0))))(t)
        return t

    # -- parameters ---------------------------------------------------------------------------

    def variables(self, index: int) -> list:
        """[kernel] or [kernel, bias] of the twin of ftte layer `index`."""
        twin = self.layers[index]
        return [twin.kernel] + ([twin.bias] if twin.use_bias else [])

    def set_weights(self, model: Model) -> None:
        """Copies `model`'s parameters (our layouts) into the twin."""
        for index, twin in self.layers.items():
            layer = model.layers[index]
            values = [to_keras_kernel(layer, layer.weights)]
            if layer.bias is not None:
                values.append(np.asarray(layer.bias, np.float32))
            twin.set_weights(values)

    def parameters(self) -> Params:
        """Every parameter of the twin in our layouts, per ftte layer ((None, None) if none)."""
        params: Params = []
        for index, layer in enumerate(self.model.layers):
            if index not in self.layers:
                params.append((None, None))
                continue
            variables = self.variables(index)
            kernel = from_keras_kernel(layer, variables[0].numpy())
            params.append((kernel, variables[1].numpy().copy() if len(variables) > 1 else None))
        return params

    def logits(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32).reshape((-1,) + tuple(self.model.input_shape))
        return self.keras(x, training=False).numpy()
