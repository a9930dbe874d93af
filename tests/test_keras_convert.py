"""Keras -> FTTE conversion (`ftte convert`, ftte.keras, ftte.model.io's C source).

Round trips: the three reference models exported to Keras (tests/keras_reference.py's twin),
saved as .keras and converted back, must give the same layers and bit-identical weights; four
Keras models written here (different layer mixes, BatchNorm, padding, Sequential, functional,
.keras and .h5) must give, on the C kernels, the outputs of Keras predict and the loss,
gradients and updated weights of one GradientTape SGD step.

BatchNorm folding changes what training means (the device trains the folded weights; there are
no batch statistics), so a BN model's step is compared with the folded model's Keras twin, and
its outputs with the original Keras model in inference mode.

Tolerance: rtol 1e-5, plus an absolute floor of 1e-6 x the largest magnitude of the tensor
compared. A value near zero is usually a sum of terms of typical size that cancel: its float32
rounding error is of the order eps32 x (sum of |terms|) whatever its own size, and C and
TensorFlow add in different orders (and folding rounds W x gamma / sigma to float32), so no
relative tolerance can hold for it. Values of typical size are held to 1e-5 relative.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ftte.keras.geometry import Axis, GeometryError, Window, cropped, padded, window

ROOT = Path(__file__).resolve().parent.parent
RTOL, ATOL_SCALE, LR = 1e-5, 1e-6, 0.1
TF_REASON = "Keras conversion tests need tensorflow-cpu (pip install -e '.[tensorflow]')"


def assert_close(actual, expected, what: str) -> None:
    expected = np.asarray(expected, np.float32)
    assert np.shape(actual) == expected.shape, f"{what}: shape {np.shape(actual)} != {expected.shape}"
    atol = ATOL_SCALE * max(float(np.abs(expected).max(initial=0.0)), 1e-30)
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=atol, err_msg=what)


# ------------------------------------------------------------------------------------------
# Geometry (no TensorFlow)
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size,kernel,stride,out,pad", [
    (28, 3, 2, 14, 0),  # total 1: nothing before, 1 after
    (9, 3, 2, 5, 1),    # total 2: 1 and 1
    (7, 4, 1, 7, 1),    # total 3: 1 before, 2 after (TF puts the odd row after)
    (8, 1, 1, 8, 0),
])
def test_same_padding_is_tensorflows(size, kernel, stride, out, pad):
    assert window(Axis.of(size), kernel, stride, "same") == Window(out, pad)


def test_causal_and_folded_padding():
    assert window(Axis.of(10), 3, 1, "causal") == Window(10, 2)
    assert window(padded(Axis.of(10), 1, 2), 3, 2, "valid") == Window(6, 1)
    assert window(padded(Axis.of(6), 1, 0), 3, 1, "same") == Window(7, 2)  # pads add up


def test_cropping_only_when_the_cropped_rows_are_never_read():
    axis = cropped(Axis.of(7), 0, 1)
    assert window(axis, 2, 2, "valid", zeros_allowed=False) == Window(3, 0)
    with pytest.raises(GeometryError, match="cropped row"):
        window(axis, 3, 1, "same")
    with pytest.raises(GeometryError, match="leading rows"):
        cropped(Axis.of(7), 1, 0)
    assert cropped(padded(Axis.of(5), 2, 2), 1, 3).kept == 4


def test_pooling_refuses_padding_and_oversized_padding_is_refused():
    with pytest.raises(GeometryError, match="pooling"):
        window(Axis.of(7), 2, 2, "same", zeros_allowed=False)
    with pytest.raises(GeometryError, match="fewer than the kernel"):
        window(padded(Axis.of(8), 3, 3), 3, 1, "valid")


# ------------------------------------------------------------------------------------------
# Keras fixtures
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kr():
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # before TensorFlow's first import
    pytest.importorskip("tensorflow", reason=TF_REASON)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import keras_reference  # noqa: PLC0415

    return keras_reference


@pytest.fixture(scope="module")
def keras(kr):
    import keras  # noqa: PLC0415

    return keras


def _randomize(model, seed: int) -> None:
    """Random biases and BatchNorm statistics (Keras starts them at 0 / 1), so folding shows."""
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        if type(layer).__name__ == "BatchNormalization":
            n = layer.moving_mean.shape[0]
            values = {"gamma": rng.uniform(0.5, 1.5, n), "beta": rng.normal(0, 0.3, n),
                      "moving_mean": rng.normal(0, 0.3, n), "moving_variance": rng.uniform(0.5, 2.0, n)}
            for name, value in values.items():
                if getattr(layer, name, None) is not None:
                    getattr(layer, name).assign(value.astype(np.float32))
        elif getattr(layer, "use_bias", False) and getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0, 0.2, layer.bias.shape).astype(np.float32))


def _all_layers(model):
    for layer in model.layers:
        yield from (_all_layers(layer) if hasattr(layer, "layers") else (layer,))


def mobilenet_block(keras):
    """Conv2D+BN+ReLU6, DepthwiseConv2D+BN+ReLU, 1x1 Conv2D+BN+ReLU6, global pool, dense."""
    L = keras.layers
    return keras.Sequential([
        keras.Input((12, 11, 3)),
        L.Conv2D(8, 3, strides=2, padding="same", use_bias=False), L.BatchNormalization(), L.ReLU(6.0),
        L.DepthwiseConv2D(3, padding="same"), L.BatchNormalization(), L.ReLU(),
        L.Conv2D(12, 1), L.BatchNormalization(epsilon=1e-5), L.Activation("relu6"),
        L.GlobalAveragePooling2D(), L.Dense(5),
    ], name="mobilenet_block")


def conv1d_net(keras):
    """Conv1D with activation='relu', pooling, causal conv, Flatten, Dropout, softmax output."""
    L = keras.layers
    return keras.Sequential([
        keras.Input((32, 3)),
        L.Conv1D(8, 5, activation="relu"), L.MaxPooling1D(2),
        L.Conv1D(8, 3, padding="causal", activation="relu"),
        L.Conv1D(12, 3, strides=2, padding="same", activation="relu"), L.AveragePooling1D(2),
        L.Flatten(), L.Dropout(0.3), L.Dense(16, activation="relu6"), L.Dense(6, activation="softmax"),
    ], name="conv1d_net")


def dense_bn(keras):
    """'same' strided Conv2D, then a Dense stack with BatchNorm (one without bias, one without
    center), functional API."""
    L = keras.layers
    x = inputs = keras.Input((9, 9, 2))
    x = L.Conv2D(6, 3, strides=2, padding="same", activation="relu")(x)
    x = L.Flatten()(x)
    x = L.ReLU()(L.BatchNormalization()(L.Dense(24)(x)))
    x = L.Dropout(0.2)(x)
    x = L.BatchNormalization(center=False)(L.Dense(16, use_bias=False)(x))
    x = L.Activation("relu")(x)
    return keras.Model(inputs, L.Dense(4)(x), name="dense_bn")


def padded_functional(keras):
    """Reshape, ZeroPadding2D + Cropping2D folded, strided 1x1 Conv2D, SeparableConv2D,
    keepdims global pool, a nested Sequential; saved as .h5."""
    L = keras.layers
    x = inputs = keras.Input((64,))
    x = L.Reshape((8, 8, 1))(x)
    x = L.ZeroPadding2D(((1, 0), (2, 1)))(x)
    x = L.Conv2D(4, 3, activation="relu")(x)             # (7, 9)
    x = L.Cropping2D(((0, 1), (0, 1)))(x)                # (6, 8): the cropped rows are never read
    x = L.MaxPooling2D(2)(x)                             # (3, 4)
    x = L.Conv2D(5, 1, strides=2)(x)                     # (2, 2): a strided 1x1 is a conv2d
    x = L.SeparableConv2D(6, 3, padding="same", activation="relu")(x)
    x = L.GlobalAveragePooling2D(keepdims=True)(x)
    x = L.Conv2D(8, 1, activation="relu")(x)             # pointwise
    x = L.Reshape((8,))(x)
    head = keras.Sequential([keras.Input((8,)), L.Dense(3)], name="head")
    return keras.Model(inputs, head(x), name="padded_functional")


OWN_MODELS = {"mobilenet_block": (mobilenet_block, ".keras"), "conv1d_net": (conv1d_net, ".keras"),
              "dense_bn": (dense_bn, ".keras"), "padded_functional": (padded_functional, ".h5")}


@pytest.fixture(scope="module")
def saved(keras, tmp_path_factory):
    """name -> path of each own test model, saved once."""
    keras.utils.set_random_seed(0)
    directory = tmp_path_factory.mktemp("keras")
    paths = {}
    for index, (name, (build, suffix)) in enumerate(OWN_MODELS.items()):
        model = build(keras)
        _randomize(model, index)
        paths[name] = directory / f"{name}{suffix}"
        model.save(paths[name])
    return paths


def _batch(model, seed: int, n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n,) + tuple(model.input_shape)).astype(np.float32)
    return x, rng.integers(0, model.classes, n).astype(np.int32)


# ------------------------------------------------------------------------------------------
# Reference models: ours -> Keras twin -> .keras -> ours
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["digits_mlp", "accel_cnn1d", "digits_cnn2d"])
def test_reference_round_trip(kr, tmp_path, name):
    from ftte.keras import convert_keras, load_keras
    from ftte.model.io import layout_hash
    from ftte.zoo import REFERENCE_MODELS

    original = REFERENCE_MODELS[name].build(3)
    rng = np.random.default_rng(1)
    for layer in original.layers:
        if layer.bias is not None:
            layer.bias[...] = rng.normal(0, 0.2, layer.bias.shape)
    kr.KerasTwin(original).keras.save(tmp_path / f"{name}.keras")
    keras_model = load_keras(tmp_path / f"{name}.keras")
    converted = convert_keras(keras_model, name).model

    assert layout_hash(converted) == layout_hash(original)
    for ours, theirs in zip(converted.layers, original.layers):
        assert (ours.op, ours.in_shape, ours.out_shape, ours.kernel, ours.stride, ours.pad) == (
            theirs.op, theirs.in_shape, theirs.out_shape, theirs.kernel, theirs.stride, theirs.pad)
    for ours, theirs in zip(converted.get_parameters(), original.get_parameters()):
        np.testing.assert_array_equal(ours, theirs)
    _check_against_keras(keras_model, converted, seed=2)


# ------------------------------------------------------------------------------------------
# Models written for these tests: outputs and one SGD step against Keras
# ------------------------------------------------------------------------------------------

def _logits_model(keras, keras_model):
    """The Keras model without its final softmax (FTTE's outputs are the logits)."""
    last = keras_model.layers[-1]
    if type(last).__name__ in ("Activation", "Softmax"):
        return keras.Model(keras_model.inputs, last.input)
    if getattr(last, "activation", None) is keras.activations.softmax:
        last.activation = keras.activations.linear
    return keras_model


def _keras_variables(conversion, keras_model) -> list[tuple]:
    """Per FTTE layer, the Keras (kernel, bias) variables it came from ((None, None) if none)."""
    layers = {layer.name: layer for layer in _all_layers(keras_model)}
    variables = []
    for layer in conversion.model.layers:
        if not layer.has_weights:
            variables.append((None, None))
            continue
        source = layers[conversion.source_of(layer.name)]
        bias = source.bias if getattr(source, "use_bias", False) else None
        if type(source).__name__.startswith("Separable"):
            first = layer.name.endswith("_depthwise")
            variables.append((source.depthwise_kernel, None) if first else (source.pointwise_kernel, bias))
        else:
            variables.append((source.kernel, bias))
    return variables


def _ours(kr, layer, kernel) -> np.ndarray:
    """A Keras kernel (or gradient) in our layout, through tests/keras_reference.py."""
    kernel = np.asarray(kernel)
    if layer.op == "pointwise_conv2d" and kernel.ndim == 2:  # from a Dense
        kernel = kernel[None, None]
    return kr.from_keras_kernel(layer, kernel)


def _keras_input(keras_model, x: np.ndarray) -> np.ndarray:
    return x.reshape((len(x),) + tuple(keras_model.inputs[0].shape[1:]))


def _check_against_keras(keras_model, model, seed: int) -> None:
    from ftte.model import UpdateSpec
    from ftte.train import Trainer

    x, _ = _batch(model, seed, 8)
    expected = np.asarray(keras_model(_keras_input(keras_model, x), training=False)).reshape(len(x), -1)
    assert_close(Trainer(model, UpdateSpec.frozen(model), batch=8).forward(x), expected, "logits")


@pytest.mark.parametrize("name", ["conv1d_net", "padded_functional"])
def test_own_model_matches_keras_step(kr, keras, saved, name):
    """Outputs, loss, gradients and updated weights against GradientTape on the Keras model."""
    import tensorflow as tf

    from ftte.keras import convert_keras, load_keras
    from ftte.train import Trainer

    conversion = convert_keras(load_keras(saved[name]))
    model = conversion.model
    logits_model = _logits_model(keras, load_keras(saved[name]))
    _check_against_keras(logits_model, model, seed=3)

    x, y = _batch(model, 4)
    trainer = Trainer(model.copy(), batch=len(x))
    grads = trainer.gradients(x, y)
    loss = trainer.step(x, y, lr=LR)
    after = trainer.export()

    pairs = _keras_variables(conversion, logits_model)
    flat = [v for pair in pairs for v in pair if v is not None]
    with tf.GradientTape() as tape:  # inference mode: Dropout off, as on the device
        keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
            y, logits_model(_keras_input(logits_model, x), training=False))
    keras_grads = dict(zip((id(v) for v in flat), tape.gradient(keras_loss, flat)))
    assert_close(loss, float(keras_loss), "loss")
    keras.optimizers.SGD(LR).apply_gradients([(keras_grads[id(v)], v) for v in flat])
    updated = convert_keras(logits_model).model

    for index, (layer, (kernel, bias)) in enumerate(zip(model.layers, pairs)):
        if kernel is None:
            continue
        assert_close(grads[index][0].reshape(layer.weights.shape), _ours(kr, layer, keras_grads[id(kernel)]),
                     f"{layer.name} weight gradient")
        assert_close(after.layers[index].weights, updated.layers[index].weights, f"{layer.name} updated weights")
        if bias is not None:
            assert_close(grads[index][1], keras_grads[id(bias)], f"{layer.name} bias gradient")
            assert_close(after.layers[index].bias, updated.layers[index].bias, f"{layer.name} updated bias")


@pytest.mark.parametrize("name", ["mobilenet_block", "dense_bn"])
def test_batchnorm_model_matches_keras(kr, keras, saved, name):
    """Outputs against the original in inference mode; one step against the folded model's twin."""
    from ftte.keras import convert_keras, load_keras
    from ftte.train import Trainer

    keras_model = load_keras(saved[name])
    conversion = convert_keras(keras_model)
    model = conversion.model
    assert not any(step.keras_class == "BatchNormalization" and step.ftte_layers for step in conversion.steps)
    _check_against_keras(keras_model, model, seed=5)

    x, y = _batch(model, 6)
    trainer = Trainer(model.copy(), batch=len(x))
    grads = trainer.gradients(x, y)
    loss = trainer.step(x, y, lr=LR)
    after = trainer.export()
    step = kr.keras_sgd_steps(kr.KerasTwin(model.copy()), [(x, y)], LR)[0]
    assert_close(loss, step.loss, "loss")
    for index, layer in enumerate(model.layers):
        if layer.has_weights:
            assert_close(grads[index][0].reshape(layer.weights.shape), step.full_grads[index][0],
                         f"{layer.name} weight gradient")
            assert_close(grads[index][1], step.full_grads[index][1], f"{layer.name} bias gradient")
            assert_close(after.layers[index].weights, step.params[index][0], f"{layer.name} updated weights")
            assert_close(after.layers[index].bias, step.params[index][1], f"{layer.name} updated bias")


def test_layer_mapping_and_notes(saved, kr):
    from ftte.keras import convert_keras, load_keras

    ops = {name: [layer.op for layer in convert_keras(load_keras(path)).model.layers]
           for name, path in saved.items()}
    assert ops["mobilenet_block"] == ["conv2d", "relu6", "depthwise_conv2d", "relu", "pointwise_conv2d",
                                      "relu6", "global_avg_pool", "dense"]
    assert ops["conv1d_net"] == ["conv1d", "relu", "max_pool2d", "conv1d", "relu", "conv1d", "relu",
                                 "avg_pool2d", "flatten", "dense", "relu6", "dense"]
    assert ops["padded_functional"] == ["conv2d", "relu", "max_pool2d", "conv2d", "depthwise_conv2d",
                                        "pointwise_conv2d", "relu", "global_avg_pool", "pointwise_conv2d",
                                        "relu", "dense"]
    notes = " ".join(convert_keras(load_keras(saved["conv1d_net"])).notes)
    assert "softmax dropped" in notes and "Dropout" in notes and "ignored" in notes
    notes = " ".join(convert_keras(load_keras(saved["dense_bn"])).notes)
    assert "folded into 'dense" in notes


# ------------------------------------------------------------------------------------------
# Refusals
# ------------------------------------------------------------------------------------------

def _refusal_cases(keras):
    L = keras.layers

    def chain(shape, *layers):
        x = inputs = keras.Input(shape)
        for layer in layers:
            x = layer(x)
        return keras.Model(inputs, x)

    def branch(merge):
        inputs = keras.Input((6,))
        a, b = L.Dense(4, name="left")(inputs), L.Dense(4, name="right")(inputs)
        return keras.Model(inputs, L.Dense(3)(merge(name="merge")([a, b])))

    img, flat = (8, 8, 2), (6,)
    return {
        "dilation": (chain(img, L.Conv2D(3, 3, dilation_rate=2, name="dil"), L.Flatten(), L.Dense(2)),
                     "'dil' (Conv2D): dilation_rate (2, 2)"),
        "groups": (chain(img, L.Conv2D(4, 3, groups=2, name="grp"), L.Flatten(), L.Dense(2)),
                   "'grp' (Conv2D): groups=2"),
        "multiplier": (chain(img, L.DepthwiseConv2D(3, depth_multiplier=2, name="dw"), L.Flatten(), L.Dense(2)),
                       "'dw' (DepthwiseConv2D): depth_multiplier=2"),
        "causal_dilated": (chain((10, 2), L.Conv1D(3, 3, padding="causal", dilation_rate=2, name="tcn"),
                                 L.Flatten(), L.Dense(2)), "'tcn' (Conv1D): dilation_rate"),
        "tanh": (chain(flat, L.Dense(4, activation="tanh", name="t"), L.Dense(2)), "activation 'tanh'"),
        "lstm": (chain((5, 3), L.LSTM(4, name="rnn"), L.Dense(2)), "'rnn' (LSTM): this layer type is not supported"),
        "add": (branch(L.Add), "'merge' (Add): takes 2 inputs; branches"),
        "concatenate": (branch(L.Concatenate), "'merge' (Concatenate): takes 2 inputs"),
        "bn_first": (chain(flat, L.BatchNormalization(name="bn"), L.Dense(2)), "'bn' (BatchNormalization): can only"),
        "bn_after_relu": (chain(flat, L.Dense(4, activation="relu"), L.BatchNormalization(name="bn"), L.Dense(2)),
                          "standalone BatchNormalization"),
        "softmax_middle": (chain(flat, L.Dense(4, activation="softmax"), L.Dense(2, name="after")),
                           "'after' (Dense): comes after the softmax"),
        "global_max": (chain(img, L.Conv2D(3, 3), L.GlobalMaxPooling2D(name="gmp"), L.Dense(2)),
                       "'gmp' (GlobalMaxPooling2D): this layer type is not supported"),
        "pool_same": (chain((7, 7, 2), L.MaxPooling2D(2, padding="same", name="mp"), L.Flatten(), L.Dense(2)),
                      "'mp' (MaxPooling2D): pooling windows would read padding"),
        "pad_flatten": (chain(img, L.ZeroPadding2D(1, name="zp"), L.Flatten(name="fl"), L.Dense(2)),
                        "'fl' (Flatten): follows the padding/cropping of 'zp'"),
        "leaky": (chain(flat, L.Dense(4), L.ReLU(negative_slope=0.1, name="lr"), L.Dense(2)),
                  "'lr' (ReLU): negative_slope"),
        "relu_max": (chain(flat, L.Dense(4), L.ReLU(max_value=4.0, name="r4"), L.Dense(2)), "max_value=4.0"),
        "not_flat": (chain(img, L.Conv2D(3, 3)), "the output must be flat logits"),
        "crop_leading": (chain(img, L.Cropping2D(((1, 0), (0, 0)), name="crop"), L.Conv2D(3, 3), L.Flatten(),
                               L.Dense(2)), "'crop' (Cropping2D): cropping 1 leading rows"),
        "pad_too_much": (chain(img, L.ZeroPadding2D(3), L.Conv2D(3, 3, name="c"), L.Flatten(), L.Dense(2)),
                         "'c' (Conv2D): 3 padding rows before the input"),
        "permute": (chain(img, L.Permute((2, 1, 3), name="perm"), L.Flatten(), L.Dense(2)),
                    "'perm' (Permute): this layer type is not supported"),
    }


def test_unsupported_layers_are_refused_by_name(keras):
    from ftte.keras import UnsupportedModelError, convert_keras

    for case, (model, message) in _refusal_cases(keras).items():
        with pytest.raises(UnsupportedModelError) as error:
            convert_keras(model)
        assert message in str(error.value), f"{case}: {error.value}"


# ------------------------------------------------------------------------------------------
# `ftte convert` and the firmware C source
# ------------------------------------------------------------------------------------------

def test_convert_command_writes_model_and_c_source(saved, tmp_path, capsys):
    from ftte.cli import main
    from ftte.model.io import load_model

    out = tmp_path / "build"
    assert main(["convert", str(saved["padded_functional"]), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "check: C kernels vs Keras" in printed and "folded into the next window" in printed
    for name in ("manifest.json", "weights.npz", "ftte_model_data.h", "ftte_model_data.c"):
        assert (out / name).is_file(), name
    model = load_model(out)
    assert f"0x{model.metadata['layout_hash']:08x}u" in (out / "ftte_model_data.h").read_text()
    assert main(["plan", str(out), "--budget", "64KB"]) == 0
    assert "padded_functional" in capsys.readouterr().out


def test_convert_command_refuses_with_the_layer_named(keras, tmp_path, capsys):
    from ftte.cli import main

    L = keras.layers
    model = keras.Sequential([keras.Input((6,)), L.Dense(4, activation="tanh", name="hidden"), L.Dense(2)])
    model.save(tmp_path / "tanh.keras")
    assert main(["convert", str(tmp_path / "tanh.keras"), "-o", str(tmp_path / "out")]) == 2
    assert "layer 'hidden' (Dense): activation 'tanh' is not supported" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "missing.keras")]) == 2


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_generated_c_compiles_and_runs_on_the_kernels(saved, tmp_path):
    """gcc -std=c99 -Wall -Wextra -Werror -pedantic; then, linked with the kernel sources as they
    are in the tree, the firmware's model validates, has FTTE_MODEL_LAYOUT_HASH, holds the weights
    bit for bit, and gives Keras predict's logits."""
    from ftte.keras import convert_keras, load_keras
    from ftte.model.io import write_c_source

    keras_model = load_keras(saved["mobilenet_block"])
    model = convert_keras(keras_model).model
    header, source = write_c_source(model, tmp_path, origin="mobilenet_block.keras")
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{ROOT / 'kernels/include'}",
             f"-I{tmp_path}"]
    subprocess.run(["gcc", *flags, "-c", str(source), "-o", str(tmp_path / "model.o")], check=True)

    (tmp_path / "main.c").write_text(_MAIN_C)
    kernels = sorted(str(p) for p in (ROOT / "kernels/src").rglob("*.c"))
    subprocess.run(["gcc", *flags, "-O1", f"-I{ROOT / 'kernels/src/ops'}", str(tmp_path / "main.c"), str(source),
                    *kernels, "-lm", "-o", str(tmp_path / "model")], check=True)
    run = subprocess.run([str(tmp_path / "model")], capture_output=True, text=True)
    assert run.returncode == 0, f"firmware check failed with {run.returncode}"
    printed = np.array(run.stdout.split(), np.float32)
    weights = np.concatenate([a.ravel() for a in model.get_parameters()])
    np.testing.assert_array_equal(printed[model.classes:], weights)
    n = int(np.prod(model.input_shape))
    x = ((np.arange(n) * 37) % 11).astype(np.float32) / np.float32(11) - np.float32(0.5)
    expected = np.asarray(keras_model(_keras_input(keras_model, x[None]), training=False))[0]
    assert_close(printed[:model.classes], expected, "firmware logits")


_MAIN_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include "ftte_kernels.h"
#include "ftte_model_data.h"

#define INPUT (FTTE_MODEL_INPUT_H * FTTE_MODEL_INPUT_W * FTTE_MODEL_INPUT_C)

static void print(const float *values, int32_t count) {
    for (int32_t i = 0; values != NULL && i < count; i++) printf("%.9g\n", (double)values[i]);
}

int main(void) {
    if (ftte_model_validate(&ftte_model_data) != FTTE_OK) return 3;
    if (ftte_model_layout_hash(&ftte_model_data) != FTTE_MODEL_LAYOUT_HASH) return 4;
    ftte_train_config config = {&ftte_model_data, NULL, 1, 0};
    ftte_plan plan;
    if (ftte_plan_forward(&config, &plan) != FTTE_OK) return 5;
    float *arena = malloc((size_t)plan.memory.total + 4);
    static float input[INPUT];
    float out[FTTE_MODEL_CLASSES];
    for (int i = 0; i < INPUT; i++) input[i] = (float)((i * 37) % 11) / 11.0f - 0.5f;
    if (arena == NULL || ftte_train_init(&plan, arena, plan.memory.total) != FTTE_OK) return 6;
    if (ftte_forward(&plan, arena, plan.memory.total, input, 1, out) != FTTE_OK) return 7;
    print(out, FTTE_MODEL_CLASSES);
    for (int32_t i = 0; i < FTTE_MODEL_NUM_LAYERS; i++) {
        const ftte_layer *layer = &ftte_model_data_layers[i];
        print(layer->weights, ftte_layer_row_length(layer) * layer->out.c);
        print(layer->bias, layer->out.c);
    }
    free(arena);
    return 0;
}
"""
