"""The trainer through cffi: exact memory plans, learning, sparse specs and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from ftte.model import LayerUpdate, UpdateSpec, dense, flatten, relu, sequential
from ftte.native import FtteError
from ftte.train import Trainer, plan_memory
from ftte.zoo import REFERENCE_MODELS


def half_channels(model) -> UpdateSpec:
    """Every weighted layer trains the weight rows of its even channels, plus its bias."""
    return UpdateSpec(tuple(
        LayerUpdate("channels", tuple(range(0, layer.channels, 2))) if layer.has_weights else LayerUpdate()
        for layer in model.layers))


def last_layer(model) -> UpdateSpec:
    return UpdateSpec.of(model, {model.weighted_layers()[-1]: LayerUpdate("full")})


SPECS = {"full": UpdateSpec.full, "bias": UpdateSpec.bias_only, "last": last_layer, "half": half_channels}


def measured_high_water(trainer: Trainer, x: np.ndarray, y: np.ndarray) -> int:
    """Highest arena byte a step writes, over two paint patterns (a written byte may equal one)."""
    top = 0
    arena = trainer.arena.view(np.uint8)
    for pattern in (0xA5, 0x5A):
        arena[:] = pattern
        trainer.reload()
        trainer.step(x, y, lr=0.01, momentum=0.9)
        top = max(top, int(np.flatnonzero(arena != pattern).max()) + 1)
    return top


@pytest.mark.parametrize("name", sorted(REFERENCE_MODELS))
@pytest.mark.parametrize("spec", sorted(SPECS))
@pytest.mark.parametrize("momentum", [False, True])
def test_planned_bytes_equal_measured_high_water_mark(name, spec, momentum):
    reference = REFERENCE_MODELS[name]
    model = reference.build(0)
    data = reference.data()
    batch = 4
    trainer = Trainer(model, SPECS[spec](model), batch=batch, momentum=momentum)
    m = trainer.memory
    assert trainer.arena.nbytes == m.total
    assert m.total == (m.params_ram + m.optimizer_state + m.saved_activations + m.working_activations
                       + m.gradients + m.scratch)
    assert measured_high_water(trainer, data.x_train[:batch], data.y_train[:batch]) == m.total


@pytest.mark.parametrize("name", sorted(REFERENCE_MODELS))
def test_sparse_specs_need_less_memory_and_keep_frozen_params_in_flash(name):
    model = REFERENCE_MODELS[name].build(0)
    full, bias, last = (plan_memory(model, SPECS[s](model), batch=8) for s in ("full", "bias", "last"))
    assert bias.total < full.total and last.total < full.total
    assert full.params_flash == 0
    assert bias.params_flash + bias.params_ram == full.params_ram
    assert bias.trainable_params == sum(layer.bias.size for layer in model.layers if layer.bias is not None)
    inference = plan_memory(model, UpdateSpec.frozen(model), batch=1, training=False)
    assert inference.params_ram == 0 and inference.total < bias.total


def test_mlp_learns_digits_through_the_kernels():
    reference = REFERENCE_MODELS["digits_mlp"]
    data = reference.data()
    trainer = Trainer(reference.build(0), batch=16)
    losses = trainer.fit(data.x_train, data.y_train, epochs=8, lr=0.1)
    assert losses[-1] < 0.3 * losses[0]
    assert trainer.evaluate(data.x_test, data.y_test) > 0.9


def test_mlp_matches_numpy_reference_for_one_step():
    model = sequential((6,), [dense(5), relu(), dense(3)], seed=1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 6)).astype(np.float32)
    y = np.array([0, 2, 1, 2], np.int32)
    w1, b1, w2, b2 = (a.copy() for a in model.get_parameters())
    # numpy forward/backward of the same network, batch-mean cross-entropy
    h = np.maximum(x @ w1.T + b1, 0)
    z = h @ w2.T + b2
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(4), y]))
    dz = (p - np.eye(3)[y]) / 4
    dw2, db2 = dz.T @ h, dz.sum(0)
    dh = (dz @ w2) * (h > 0)
    dw1, db1 = dh.T @ x, dh.sum(0)
    trainer = Trainer(model, batch=4)
    assert trainer.step(x, y, lr=0.5) == pytest.approx(loss, rel=1e-6)
    trained = trainer.export().get_parameters()
    for got, start, grad in zip(trained, (w1, b1, w2, b2), (dw1, db1, dw2, db2)):
        np.testing.assert_allclose(got, start - 0.5 * grad, rtol=1e-5, atol=1e-6)


def test_loss_is_the_cross_entropy_of_the_current_parameters_and_the_next_step_reports_it():
    model = sequential((6,), [dense(5), relu(), dense(3)], seed=2)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(4, 6)).astype(np.float32), np.array([1, 0, 2, 2], np.int32)
    trainer = Trainer(model, batch=4)
    trainer.step(x, y, lr=0.3)
    z = trainer.forward(x).astype(np.float64)
    log_p = z - z.max(1, keepdims=True) - np.log(np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True))
    after = trainer.loss(x, y)
    assert after == pytest.approx(-np.mean(log_p[np.arange(4), y]), rel=1e-6)
    assert trainer.step(x, y, lr=0.3) == after  # the loss before a step, in the same C arithmetic
    with pytest.raises(ValueError, match="1..4 samples"):
        trainer.loss(np.zeros((5, 6), np.float32), np.zeros(5, np.int32))


def test_channels_spec_trains_only_the_selected_rows():
    model = sequential((8,), [dense(6), relu(), dense(4)], seed=2)
    before = [a.copy() for a in model.get_parameters()]
    spec = UpdateSpec.of(model, {0: LayerUpdate("channels", (1, 4))})
    trainer = Trainer(model, spec, batch=8)
    rng = np.random.default_rng(1)
    trainer.fit(rng.normal(size=(32, 8)), rng.integers(0, 4, 32), epochs=3, lr=0.2)
    w1, b1, w2, b2 = trainer.export().get_parameters()
    changed = np.flatnonzero(np.any(w1 != before[0], axis=1))
    assert set(changed) == {1, 4}
    assert np.any(b1 != before[1])  # the channels mode trains the whole bias
    np.testing.assert_array_equal(w2, before[2])
    np.testing.assert_array_equal(b2, before[3])


def test_gradients_leave_the_state_unchanged():
    reference = REFERENCE_MODELS["accel_cnn1d"]
    data = reference.data()
    trainer = Trainer(reference.build(0), batch=4, momentum=True)
    trainer.step(data.x_train[:4], data.y_train[:4], lr=0.1, momentum=0.9)
    persistent = (trainer.memory.params_ram + trainer.memory.optimizer_state) // 4
    before = trainer.arena[:persistent].copy()
    first = trainer.gradients(data.x_train[4:8], data.y_train[4:8])
    np.testing.assert_array_equal(trainer.arena[:persistent], before)
    second = trainer.gradients(data.x_train[4:8], data.y_train[4:8])
    for (w1, b1), (w2, b2) in zip(first, second):
        for a, b in ((w1, w2), (b1, b2)):
            if a is not None:
                np.testing.assert_array_equal(a, b)


def test_errors_name_the_problem():
    model = sequential((4,), [dense(3)], seed=0)
    trainer = Trainer(model, batch=2)
    x = np.zeros((2, 4), np.float32)
    with pytest.raises(FtteError, match="FTTE_ERR_LABEL"):
        trainer.step(x, np.array([0, 3]))
    with pytest.raises(ValueError, match="1..2 samples"):
        trainer.step(np.zeros((3, 4)), np.zeros(3))
    with pytest.raises(ValueError, match="each sample must have 4 values"):
        trainer.step(np.zeros((2, 5)), np.zeros(2))
    with pytest.raises(ValueError, match="update mode"):
        LayerUpdate("everything")
    with pytest.raises(FtteError, match="FTTE_ERR_SPEC"):
        Trainer(sequential((4,), [dense(3, use_bias=False)]), UpdateSpec((LayerUpdate("bias"),)))
    with pytest.raises(ValueError, match="channel out of range"):
        Trainer(model, UpdateSpec((LayerUpdate("channels", (5,)),)))
    with pytest.raises(ValueError, match="flat input"):
        sequential((2, 2, 1), [dense(3)])
    broken = sequential((4,), [dense(3), relu(), dense(2)])
    broken.layers[1].in_shape = broken.layers[1].out_shape = (1, 1, 4)
    with pytest.raises(FtteError, match="FTTE_ERR_MODEL"):
        Trainer(broken)
    broken = sequential((2, 2, 1), [flatten(), dense(3)])
    broken.layers[0].out_shape = (1, 1, 5)
    with pytest.raises(FtteError, match=r"layer 0 \(flatten_0.*FTTE_ERR_SHAPE"):
        Trainer(broken)


def test_layout_hash_depends_on_geometry_not_weights():
    from ftte.train.table import LayerTable

    a = sequential((8,), [dense(4), relu(), dense(3)], seed=0)
    b = sequential((8,), [dense(4), relu(), dense(3)], seed=1)
    c = sequential((8,), [dense(5), relu(), dense(3)], seed=0)
    d = sequential((8,), [dense(4), relu(), dense(3, use_bias=False)], seed=0)
    hashes = [LayerTable(m).layout_hash for m in (a, b, c, d)]
    assert hashes[0] == hashes[1]
    assert len({hashes[0], hashes[2], hashes[3]}) == 3
