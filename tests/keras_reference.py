"""TensorFlow reference steps for the parity tests, on the Keras twin (ftte.keras.twin).

This module imports TensorFlow: a test importing it must first call
``pytest.importorskip("tensorflow", reason=...)``.

The twin itself and the layout conversions live in ftte.keras.twin.
"""

from __future__ import annotations

import os

# Plain Eigen float32 kernels (no oneDNN re-association), quiet logs. Only effective when this
# module is the first to import TensorFlow in the process.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

from ftte.model import UpdateSpec  # noqa: E402
from ftte.model.layers import Layer  # noqa: E402

try:  # must happen before the TF runtime starts; harmless to skip if it already has
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
except RuntimeError:
    pass
keras.backend.set_floatx("float32")

from ftte.keras.twin import KerasTwin, Params, from_keras_kernel, to_keras_kernel  # noqa: E402,F401


def trainable_rows(layer: Layer, mode: str, channels: tuple[int, ...]) -> np.ndarray | None:
    """Output channels whose weight rows train (the Trainer's packing order), None for none."""
    if not layer.has_weights or mode in ("frozen", "bias"):
        return None
    if mode == "full":
        return np.arange(layer.channels)
    return np.asarray(sorted(channels), np.int64)


@dataclass
class KerasStep:
    """One SGD step of the twin, everything in our layouts."""

    loss: float  # batch-mean cross-entropy before the update
    grads: Params  # per ftte layer, trainable parts only: (rows in Trainer order, bias), None if frozen
    full_grads: Params  # per ftte layer, the whole gradient whatever the spec
    params: Params  # per ftte layer, all parameters after the update


def keras_sgd_steps(twin: KerasTwin, batches: list[tuple[np.ndarray, np.ndarray]], lr: float,
                    momentum: float = 0.0, spec: UpdateSpec | None = None) -> list[KerasStep]:
    """Runs keras.optimizers.SGD(lr, momentum) on the twin for each (x, y) batch in turn,
    training only what `spec` trains (a channel subset: the gradient of the other rows is
    masked to zero, and the optimizer never sees frozen variables). Loss:
    SparseCategoricalCrossentropy(from_logits=True), batch mean. Mutates the twin's weights."""
    model = twin.model
    spec = spec or UpdateSpec.full(model)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = keras.optimizers.SGD(learning_rate=lr, momentum=momentum)

    trained, masks, rows = [], [], {}
    for index, (layer, update) in enumerate(zip(model.layers, spec.layers)):
        if index not in twin.layers or update.mode == "frozen":
            continue
        kernel, *bias = twin.variables(index)
        rows[index] = trainable_rows(layer, update.mode, update.channels)
        if rows[index] is not None:
            mask = np.zeros_like(layer.weights)
            mask.reshape(layer.channels, -1)[rows[index]] = 1.0
            trained.append(kernel)
            masks.append(None if update.mode == "full" else tf.constant(to_keras_kernel(layer, mask)))
        trained += bias
        masks += [None] * len(bias)

    every = [v for index in sorted(twin.layers) for v in twin.variables(index)]
    steps = []
    for x, y in batches:
        x = tf.constant(np.asarray(x, np.float32).reshape((-1,) + tuple(model.input_shape)))
        y = tf.constant(np.asarray(y, np.int32))
        with tf.GradientTape() as tape:
            loss = loss_fn(y, twin.keras(x, training=True))
        gradients = tape.gradient(loss, every)
        full = {id(v): g for v, g in zip(every, gradients)}
        if trained:
            masked = [full[id(v)] if m is None else full[id(v)] * m for v, m in zip(trained, masks)]
            optimizer.apply_gradients(zip(masked, trained))

        full_grads: Params = []
        grads: Params = []
        for index, (layer, update) in enumerate(zip(model.layers, spec.layers)):
            if index not in twin.layers:
                full_grads.append((None, None))
                grads.append((None, None))
                continue
            variables = twin.variables(index)
            gw = from_keras_kernel(layer, full[id(variables[0])].numpy())
            gb = full[id(variables[1])].numpy() if len(variables) > 1 else None
            full_grads.append((gw, gb))
            if update.mode == "frozen":
                grads.append((None, None))
            else:
                r = rows[index]
                grads.append((None if r is None else gw.reshape(layer.channels, -1)[r], gb))
        steps.append(KerasStep(float(loss.numpy()), grads, full_grads, twin.parameters()))
    return steps
