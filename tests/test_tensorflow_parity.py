"""Parity with TensorFlow: loss, every gradient and the SGD update of the C trainer equal what
Keras computes on the same model with the same weights (tests/keras_reference.py builds the
twin), for a small model around every operator and for the three reference models, under full
and sparse update specs, batch 1 and 4, plain SGD (one step) and momentum (two steps).

Every parity case also checks that Trainer.gradients() leaves the state alone and gives the
step's gradients, that the logits of Trainer.forward() match, and that export() writes the
trained tensors while frozen rows and biases stay bit-identical.

Tolerance: rtol 1e-5 elementwise, plus an absolute floor of ATOL_SCALE (1e-6) x the magnitude
of what is compared. The floor is needed because an element near zero is usually a sum of
terms of the tensor's typical size that cancel: its float32 rounding error is of the order
eps32 x (sum of |terms|) whatever its own value, and C and TensorFlow add the terms in
different orders, so no relative tolerance can hold for it. Elements of typical size are held
to the full 1e-5 relative. The magnitude is:
  - logits: their largest |value|;
  - a gradient: the largest |element| of the layer's whole gradient (weights and bias,
    trainable or not), as the bias gradient sums the same output gradients that make the
    weight gradient and can cancel far below their size;
  - a parameter after k updates, w0 + (a sum of -lr x gradients): max(|w0|, |w|), and the
    floor adds what those gradients may be off by, lr x (1 + momentum) x (RTOL + ATOL_SCALE)
    x their largest |element| per step (a parameter the update brought near zero is again a
    cancellation).
On the current kernels the worst element uses about a third of its tolerance.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

# Before TensorFlow's first import: plain Eigen float32 kernels, quiet logs (keras_reference
# sets the same, but importorskip below imports TensorFlow first).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

tf = pytest.importorskip("tensorflow", reason="TensorFlow parity tests need tensorflow-cpu "
                                              "(pip install -e '.[tensorflow]')")

sys.path.insert(0, str(Path(__file__).resolve().parent))  # whatever pytest's import mode
import keras_reference as kr  # noqa: E402  (imports TensorFlow)

from ftte.model import (  # noqa: E402
    LayerUpdate, UpdateSpec, avg_pool1d, avg_pool2d, conv1d, conv2d, dense, depthwise_conv2d,
    flatten, global_avg_pool, max_pool1d, max_pool2d, pointwise_conv2d, relu, relu6, sequential,
)
from ftte.train import Trainer  # noqa: E402
from ftte.zoo import REFERENCE_MODELS  # noqa: E402

RTOL = 1e-5
ATOL_SCALE = 1e-6
LR = 0.1
MOMENTUM = 0.9


def _max(a) -> float:
    return 0.0 if a is None else float(np.abs(a).max(initial=0.0))


def assert_close(actual, expected, what: str, scale: float = 0.0, extra: float = 0.0) -> None:
    """rtol RTOL; atol ATOL_SCALE x max(|expected|, scale) + extra (see the module doc)."""
    expected = np.asarray(expected, np.float32)
    assert actual is not None, f"{what}: missing"
    assert np.shape(actual) == expected.shape, f"{what}: shape {np.shape(actual)} != {expected.shape}"
    atol = ATOL_SCALE * max(_max(expected), scale, 1e-30) + extra
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=atol, err_msg=what)


# ------------------------------------------------------------------------------------------
# Models: one per operator (a weighted layer before every operator, so that its backward
# to the input is exercised, and a dense head), and the reference models
# ------------------------------------------------------------------------------------------

# name -> (input shape, builders, input scale)
OP_MODELS = {
    "dense": ((12,), [dense(9), dense(7), dense(5)], 1.0),
    "dense_nobias": ((12,), [dense(9), dense(7, use_bias=False), dense(5)], 1.0),
    # 'same' with kernel (4, 3) at stride 1 pads 1 above, 2 below: asymmetric
    "conv2d_s1_same": ((7, 6, 3), [pointwise_conv2d(4), conv2d(5, (4, 3), padding="same"),
                                   flatten(), dense(5)], 1.0),
    "conv2d_s1_valid": ((7, 6, 3), [pointwise_conv2d(4), conv2d(5, (3, 2), padding="valid"),
                                    flatten(), dense(5)], 1.0),
    # 8 rows, kernel 3, stride 2: 0 above, 1 below; 7 columns: 1 and 1
    "conv2d_s2_same": ((8, 7, 3), [pointwise_conv2d(4), conv2d(6, 3, strides=2, padding="same"),
                                   flatten(), dense(5)], 1.0),
    # 8 rows, kernel 3, stride 2, valid: the last row is never read
    "conv2d_s2_valid": ((8, 9, 2), [pointwise_conv2d(4), conv2d(5, 3, strides=2, padding="valid"),
                                    flatten(), dense(5)], 1.0),
    "conv2d_mixed_nobias": ((9, 8, 2), [pointwise_conv2d(3),
                                        conv2d(6, (2, 4), strides=(2, 1), padding="same",
                                               use_bias=False), flatten(), dense(5)], 1.0),
    "conv1d_s2_same": ((20, 3), [pointwise_conv2d(4), conv1d(6, 5, strides=2, padding="same"),
                                 flatten(), dense(5)], 1.0),
    "conv1d_s1_valid": ((13, 2), [pointwise_conv2d(3), conv1d(5, 4, padding="valid"),
                                  flatten(), dense(4)], 1.0),
    "depthwise_s1_same": ((7, 7, 4), [pointwise_conv2d(5), depthwise_conv2d(3, padding="same"),
                                      flatten(), dense(5)], 1.0),
    "depthwise_s2_valid": ((9, 8, 5), [pointwise_conv2d(6),
                                       depthwise_conv2d((3, 2), strides=2, padding="valid"),
                                       flatten(), dense(5)], 1.0),
    "depthwise_s2_same": ((8, 9, 3), [pointwise_conv2d(5),
                                      depthwise_conv2d(4, strides=2, padding="same"),
                                      flatten(), dense(5)], 1.0),
    "pointwise": ((5, 4, 3), [conv2d(4, 3, padding="same"), pointwise_conv2d(6), flatten(),
                              dense(5)], 1.0),
    "relu": ((10,), [dense(12), relu(), dense(5)], 1.0),
    # inputs scaled so that some pre-activations exceed 6 and some are negative
    "relu6": ((10,), [dense(16), relu6(), dense(5)], 8.0),
    "relu6_conv": ((5, 5, 2), [conv2d(6, 3, padding="same"), relu6(), flatten(), dense(5)], 8.0),
    "max_pool2d": ((6, 6, 2), [conv2d(3, 3, padding="same"), max_pool2d(2), flatten(),
                               dense(5)], 1.0),
    # overlapping windows (3 every 2) and a last column no window reads
    "max_pool2d_overlap": ((7, 8, 2), [conv2d(3, 2, padding="same"),
                                       max_pool2d((3, 3), strides=(2, 2)), flatten(), dense(5)], 1.0),
    "max_pool1d": ((11, 2), [conv1d(3, 3, padding="same"), max_pool1d(3, strides=2), flatten(),
                             dense(4)], 1.0),
    "avg_pool2d": ((7, 6, 2), [conv2d(3, 3, padding="same"), avg_pool2d((2, 3), strides=(2, 2)),
                               flatten(), dense(5)], 1.0),
    "avg_pool1d": ((12, 2), [conv1d(3, 3, padding="same"), avg_pool1d(2), flatten(), dense(4)], 1.0),
    "global_avg_pool": ((5, 4, 3), [conv2d(6, 3, padding="same"), global_avg_pool(), dense(5)], 1.0),
    "flatten": ((4, 3, 2), [conv2d(3, 2, padding="valid"), flatten(), dense(5)], 1.0),
}

REFERENCE = tuple(REFERENCE_MODELS)
SPECS = ("full", "bias", "last", "channels", "middle")


def _randomize_biases(model, seed: int) -> None:
    """Builders start biases at zero; random ones make bias paths visible."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.bias is not None:
            layer.bias[...] = rng.normal(0.0, 0.2, layer.bias.shape).astype(np.float32)


class Case:
    """A model, its Keras twin (built once), and inputs for two steps of up to 4 samples."""

    def __init__(self, model, x: np.ndarray, y: np.ndarray):
        _randomize_biases(model, 7)
        self.model = model
        self.twin = kr.KerasTwin(model)
        self.x = np.ascontiguousarray(x, np.float32)
        self.y = np.ascontiguousarray(y, np.int32)

    def batches(self, n: int, steps: int):
        return [(self.x[k * n:(k + 1) * n], self.y[k * n:(k + 1) * n]) for k in range(steps)]


_CASES: dict[str, Case] = {}


def get_case(name: str) -> Case:
    if name not in _CASES:
        if name in REFERENCE_MODELS:
            ref = REFERENCE_MODELS[name]
            data = ref.data()
            _CASES[name] = Case(ref.build(3), data.x_train[:8], data.y_train[:8])
        else:
            shape, builders, scale = OP_MODELS[name]
            model = sequential(shape, builders, seed=11, name=name)
            rng = np.random.default_rng(5)
            x = (rng.normal(0.0, scale, (8,) + model.input_shape)).astype(np.float32)
            y = rng.integers(0, model.classes, 8).astype(np.int32)
            _CASES[name] = Case(model, x, y)
    return _CASES[name]


def _subset(channels: int) -> tuple[int, ...]:
    """A non-contiguous channel subset: runs of trainable and frozen rows, both ends varied."""
    chosen = tuple(c for c in range(channels) if c % 3 != 1)
    return chosen if len(chosen) < channels else (0,)


def make_spec(model, kind: str) -> UpdateSpec:
    weighted = model.weighted_layers()
    if kind == "full":
        return UpdateSpec.full(model)
    if kind == "bias":
        return UpdateSpec.bias_only(model)
    if kind == "last":
        return UpdateSpec.of(model, {weighted[-1]: LayerUpdate("full")})
    if kind == "channels":
        # the lowest weighted layer trains its bias only, every other its channel subset (+ bias)
        updates = {weighted[0]: LayerUpdate("bias" if model.layers[weighted[0]].bias is not None
                                            else "frozen")}
        for index in weighted[1:]:
            updates[index] = LayerUpdate("channels", _subset(model.layers[index].channels))
        return UpdateSpec.of(model, updates)
    if kind == "middle":
        return UpdateSpec.of(model, {weighted[(len(weighted) - 1) // 2]: LayerUpdate("full")})
    raise ValueError(kind)


# ------------------------------------------------------------------------------------------
# The comparison
# ------------------------------------------------------------------------------------------

def _empty_grads(trainer: Trainer):
    return [(None if t.weights is None else np.full_like(t.weights, np.nan),
             None if t.bias is None else np.full_like(t.bias, np.nan)) for t in trainer.tensors]


def run_parity(name: str, kind: str, batch: int, momentum: float) -> None:
    case = get_case(name)
    model = case.model.copy()
    original = model.copy()
    spec = make_spec(model, kind)
    steps = 2 if momentum else 1
    batches = case.batches(batch, steps)

    case.twin.set_weights(model)
    logits = case.twin.logits(batches[0][0])
    expected = kr.keras_sgd_steps(case.twin, batches, LR, momentum, spec)

    # momentum runs plan for batch 4 whatever n, so n = 1 also runs under a larger plan
    trainer = Trainer(model, spec, batch=4 if momentum else batch, momentum=bool(momentum))
    label = f"{name}/{kind}/n={batch}/m={momentum}"
    assert_close(trainer.forward(batches[0][0]), logits, f"{label}: logits")

    def param_tolerance(index, before, after, part, steps_done):
        """scale and extra of a parameter tensor after `steps_done` updates (module doc)."""
        propagated = sum(_max(step.grads[index][part]) for step in expected[:steps_done]
                         if step.grads[index][part] is not None)
        return (max(_max(before), _max(after)),
                LR * (1.0 + momentum) * (RTOL + ATOL_SCALE) * propagated)

    for k, ((x, y), ref) in enumerate(zip(batches, expected)):
        where = f"{label} step {k + 1}"
        # gradients() must not change the state; then the step must report the same gradients
        probe = trainer.gradients(x, y)
        grads = _empty_grads(trainer)
        loss = trainer.step(x, y, lr=LR, momentum=momentum, grads=grads)
        np.testing.assert_allclose(loss, ref.loss, rtol=RTOL, err_msg=f"{where}: loss")
        layer_scale = [max(_max(gw), _max(gb)) for gw, gb in ref.full_grads]
        for index, (layer, update) in enumerate(zip(model.layers, spec.layers)):
            for part, ours, probed, theirs in (("weights", grads[index][0], probe[index][0], ref.grads[index][0]),
                                               ("bias", grads[index][1], probe[index][1], ref.grads[index][1])):
                tag = f"{where}: layer {index} ({layer.name}, {update.mode}) {part}"
                if theirs is None:
                    assert ours is None, f"{tag}: the trainer has a gradient for a frozen tensor"
                    continue
                assert_close(ours, theirs, f"{tag} gradient", scale=layer_scale[index])
                np.testing.assert_array_equal(probed, ours, err_msg=f"{tag}: gradients() != step()")
            tensors = trainer.tensors[index]
            after_w, after_b = ref.params[index]
            if tensors.weights is not None:
                rows = kr.trainable_rows(layer, update.mode, update.channels)
                before = original.layers[index].weight_rows()[rows]
                expect = after_w.reshape(layer.channels, -1)[rows]
                assert_close(tensors.weights, expect, f"{where}: layer {index} ({layer.name}) weights after the update",
                             *param_tolerance(index, before, expect, 0, k + 1))
            if tensors.bias is not None:
                assert_close(tensors.bias, after_b, f"{where}: layer {index} ({layer.name}) bias after the update",
                             *param_tolerance(index, original.layers[index].bias, after_b, 1, k + 1))

    # the model's arrays are the read-only source (flash): steps never write them
    for ours, source in zip(model.get_parameters(), original.get_parameters()):
        np.testing.assert_array_equal(ours, source, err_msg=f"{label}: a step wrote the model's arrays")

    # export: trained tensors as TensorFlow has them, everything frozen bit-identical
    trainer.export()
    for index, layer in enumerate(model.layers):
        if not layer.has_weights:
            continue
        source = original.layers[index]
        after_w, after_b = expected[-1].params[index]
        assert_close(layer.weights, after_w, f"{label}: exported layer {index} weights",
                     *param_tolerance(index, source.weights, after_w, 0, len(expected)))
        frozen = np.ones(layer.channels, bool)
        rows = kr.trainable_rows(layer, spec.layers[index].mode, spec.layers[index].channels)
        if rows is not None:
            frozen[rows] = False
        np.testing.assert_array_equal(layer.weight_rows()[frozen], source.weight_rows()[frozen],
                                      err_msg=f"{label}: frozen rows of layer {index} changed")
        if layer.bias is not None:
            assert_close(layer.bias, after_b, f"{label}: exported layer {index} bias",
                         *param_tolerance(index, source.bias, after_b, 1, len(expected)))
            if spec.layers[index].mode == "frozen":
                np.testing.assert_array_equal(layer.bias, source.bias,
                                              err_msg=f"{label}: frozen bias of layer {index} changed")


MOMENTA = [pytest.param(0.0, id="sgd"), pytest.param(MOMENTUM, id="momentum")]
BATCHES = [pytest.param(1, id="n1"), pytest.param(4, id="n4")]


@pytest.mark.parametrize("momentum", MOMENTA)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("kind", SPECS)
@pytest.mark.parametrize("name", list(OP_MODELS))
def test_operator_model_matches_tensorflow(name, kind, batch, momentum):
    run_parity(name, kind, batch, momentum)


@pytest.mark.parametrize("momentum", MOMENTA)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("kind", SPECS)
@pytest.mark.parametrize("name", REFERENCE)
def test_reference_model_matches_tensorflow(name, kind, batch, momentum):
    run_parity(name, kind, batch, momentum)


# ------------------------------------------------------------------------------------------
# The test set-up itself: the twin and the specs are what they claim
# ------------------------------------------------------------------------------------------

def test_relu6_inputs_saturate_both_ways():
    """The relu6 models see pre-activations below 0, inside (0, 6) and above 6."""
    import keras

    for name in ("relu6", "relu6_conv"):
        case = get_case(name)
        case.twin.set_weights(case.model)
        index = [layer.op for layer in case.model.layers].index("relu6") - 1
        probe = keras.Model(case.twin.keras.input, case.twin.layers[index].output)
        values = probe(case.x[:4]).numpy()
        assert (values > 6).any() and (values < 0).any() and ((values > 0) & (values < 6)).any(), name


@pytest.mark.parametrize("name", ["conv2d_s1_same", "conv2d_s2_same", "depthwise_s1_same",
                                  "depthwise_s2_same", "conv1d_s2_same", "conv2d_mixed_nobias"])
def test_stored_padding_is_keras_same_padding(name):
    """The twin's explicit padding (from our stored pad_top/pad_left and the output size) is what
    Keras' own padding='same' does, so the models above test TensorFlow's 'same'."""
    import keras

    case = get_case(name)
    layer, ours = case.model.layers[1], case.twin.layers[1]
    (h, w, c), (oh, ow, _) = layer.in_shape, layer.out_shape
    pads = [(p, (o - 1) * s + k - n - p) for n, o, k, s, p in
            zip((h, w), (oh, ow), layer.kernel, layer.stride, layer.pad)]
    x = np.random.default_rng(0).normal(size=(4, h, w, c)).astype(np.float32)
    padded = np.pad(x, [(0, 0), *pads, (0, 0)])
    config = ours.get_config() | {"padding": "same", "name": None}
    same = type(ours).from_config(config)
    if layer.op == "conv1d":
        x, padded = x[:, 0], padded[:, 0]
    same.build(x.shape)
    same.set_weights(ours.get_weights())
    np.testing.assert_allclose(ours(padded).numpy(), same(x).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", list(OP_MODELS) + list(REFERENCE))
def test_layout_round_trip(name):
    """to_keras_kernel and from_keras_kernel are inverse, and the twin holds our weights."""
    case = get_case(name)
    case.twin.set_weights(case.model)
    for index, (w, b) in enumerate(case.twin.parameters()):
        layer = case.model.layers[index]
        if not layer.has_weights:
            assert w is None and b is None
            continue
        np.testing.assert_array_equal(w, layer.weights)
        np.testing.assert_array_equal(kr.from_keras_kernel(layer, kr.to_keras_kernel(layer, layer.weights)),
                                      layer.weights)
        if layer.bias is not None:
            np.testing.assert_array_equal(b, layer.bias)


def test_specs_are_sparse_as_named():
    model = get_case("digits_cnn2d").model
    assert make_spec(model, "last").describe(model) == f"{model.layers[-1].name}:full"
    assert "ch" in make_spec(model, "channels").describe(model)
    middle = make_spec(model, "middle")
    assert [u.mode for u in middle.layers].count("full") == 1
    assert middle.layers[-1].mode == "frozen" and middle.layers[0].mode == "frozen"
