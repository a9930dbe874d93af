"""Parameter selection (ftte.selection): importance through the C kernels, the greedy selection
with the C planner as oracle, nested tiers, reselection, and the `ftte run` wiring."""

from __future__ import annotations

import dataclasses
import time
from functools import lru_cache

import numpy as np
import pytest

from ftte.aggregation import ParameterIndex
from ftte.coordinator.session import _server_split, open_run
from ftte.fleet import parse_config
from ftte.fleet.select import choose_spec, usable_budget
from ftte.model import LayerUpdate, UpdateSpec, dense, sequential
from ftte.selection import (
    Importance, Planner, calibration_importance, is_superset, needs_reselection, nested_tiers,
    select_by_importance, select_sparse_update, union, update_importance,
)
from ftte.train import plan_memory
from ftte.zoo import REFERENCE_MODELS

NAMES = list(REFERENCE_MODELS)


@lru_cache(maxsize=None)
def _setup(name: str, kind: str = "power"):
    """A reference model at its initial weights and the importance of 32 training samples. With
    so few samples the unbiased "signal" is 0 for most groups (noise dominates), an edge case
    the properties must survive; "power" is positive everywhere."""
    reference = REFERENCE_MODELS[name]
    model, data = reference.build(0), reference.data()
    importance = calibration_importance(model, data.x_train[:32], data.y_train[:32], batch=1, kind=kind)
    return model, importance


def _full(model, batch=1):
    return plan_memory(model, UpdateSpec.full(model), batch).total


# ------------------------------------------------------------------------------------------
# Importance
# ------------------------------------------------------------------------------------------

def _tiny():
    """dense 2 -> 2 with zero weights: softmax is (1/2, 1/2) for every input, so the gradient
    of sample (x, y) is (p - onehot(y)) x^T for the weights and p - onehot(y) for the bias."""
    model = sequential((2,), [dense(2)], name="tiny")
    model.layers[0].weights[...] = 0.0
    model.layers[0].bias[...] = 0.0
    x = np.array([[1, 0], [1, 0], [0, 2]], np.float32)
    y = np.array([0, 0, 1], np.int32)
    return model, x, y


def test_importance_of_a_tiny_model_by_hand():
    model, x, y = _tiny()
    # per-sample gradients: samples 1, 2: rows (-.5, 0), (.5, 0), bias (-.5, .5);
    #                       sample 3:     rows (0, 1), (0, -1),  bias (.5, -.5)
    power = calibration_importance(model, x, y, batch=1, kind="power")
    # mean squares: row 0 (1/6, 1/3) -> 1/2; row 1 the same; bias (1/4, 1/4) -> 1/2
    np.testing.assert_allclose(power.rows[0], [0.5, 0.5], rtol=1e-6)
    assert power.bias[0] == pytest.approx(0.5, rel=1e-6)
    # "power" at batch 1 is the default
    np.testing.assert_array_equal(calibration_importance(model, x, y).rows[0], power.rows[0])
    signal = calibration_importance(model, x, y, batch=1, kind="signal")
    # m^2 - (q - m^2) / (K - 1), K = 3: row 0: (1/9 - 1/36) + (1/9 - 1/9) = 1/12; bias: each
    # entry 1/36 - 4/36, the group sum -1/6 clipped to 0
    np.testing.assert_allclose(signal.rows[0], [1 / 12, 1 / 12], rtol=1e-6)
    assert signal.bias[0] == 0.0
    assert signal.total() == pytest.approx(1 / 6, rel=1e-6)
    assert signal.gain(UpdateSpec.of(model, {0: LayerUpdate("channels", (1,))})) == pytest.approx(1 / 12, rel=1e-6)
    assert signal.gain(UpdateSpec.bias_only(model)) == 0.0
    with pytest.raises(ValueError, match="chunks"):
        calibration_importance(model, x[:1], y[:1], kind="signal")
    with pytest.raises(ValueError, match="kind"):
        calibration_importance(model, x, y, kind="fisher")


def test_importance_matches_numpy_per_sample_gradients():
    """Any weights: the C kernels' gradients against numpy's softmax cross-entropy."""
    model, _, _ = _tiny()
    rng = np.random.default_rng(3)
    model.layers[0].weights[...] = rng.normal(size=(2, 2))
    model.layers[0].bias[...] = rng.normal(size=2)
    x, y = rng.normal(size=(6, 2)).astype(np.float32), rng.integers(0, 2, 6).astype(np.int32)
    w, b = model.layers[0].weight_rows().astype(np.float64), model.layers[0].bias.astype(np.float64)
    before = [a.copy() for a in model.get_parameters()]
    for batch in (1, 2, 3):
        gw, gb = [], []
        for start in range(0, 6, batch):
            logits = x[start:start + batch] @ w.T + b
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            d = (p - np.eye(2)[y[start:start + batch]]) / batch
            gw.append(d.T @ x[start:start + batch])
            gb.append(d.sum(0))
        gw, gb = np.array(gw), np.array(gb)
        power = calibration_importance(model, x, y, batch, kind="power")
        np.testing.assert_allclose(power.rows[0], (gw ** 2).mean(0).sum(1), rtol=1e-5)
        assert power.bias[0] == pytest.approx((gb ** 2).mean(0).sum(), rel=1e-5)
        k = len(gw)
        unbiased = lambda g: g.mean(0) ** 2 - ((g ** 2).mean(0) - g.mean(0) ** 2) / (k - 1)  # noqa: E731
        signal = calibration_importance(model, x, y, batch, kind="signal")
        np.testing.assert_allclose(signal.rows[0], np.maximum(unbiased(gw).sum(1), 0), rtol=1e-4, atol=1e-9)
    for ours, theirs in zip(model.get_parameters(), before):  # the model is left untouched
        np.testing.assert_array_equal(ours, theirs)


def test_update_importance_folds_deltas_into_the_covered_groups():
    model = REFERENCE_MODELS["digits_mlp"].build(0)
    start = Importance(tuple(None if r is None else np.ones(len(r)) for r in Importance.zeros(model).rows),
                       tuple(1.0 if layer.has_weights else 0.0 for layer in model.layers))
    spec = UpdateSpec.of(model, {3: LayerUpdate("channels", (2, 5)), 5: LayerUpdate("bias")})
    n = ParameterIndex.of(model).indices(spec).size
    assert n == 2 * 64 + 32 + 10
    # rows 2 and 5 of dense_3 (64 values each, here 0.1 and 0.2), dense_3's bias (0.3), dense_5's bias (0.4)
    delta = np.concatenate([np.full(64, 0.1), np.full(64, 0.2), np.full(32, 0.3), np.full(10, 0.4)])
    new = update_importance(start, model, spec, delta, scale=0.1, alpha=0.5)
    # (delta / scale)^2 summed per group: 64, 256, 288, 160; EMA with alpha 1/2 from 1
    assert new.rows[3][2] == pytest.approx(0.5 + 0.5 * 64)
    assert new.rows[3][5] == pytest.approx(0.5 + 0.5 * 256)
    assert new.bias[3] == pytest.approx(0.5 + 0.5 * 288)
    assert new.bias[5] == pytest.approx(0.5 + 0.5 * 160)
    untouched = np.delete(new.rows[3], [2, 5])
    assert np.all(untouched == 1.0) and np.all(new.rows[1] == 1.0) and np.all(new.rows[5] == 1.0)
    assert new.bias[1] == 1.0
    with pytest.raises(ValueError, match="selects"):
        update_importance(start, model, spec, delta[:-1])
    full = UpdateSpec.full(model)
    again = update_importance(new, model, full, np.zeros(model.parameter_count()), alpha=1.0)
    assert again.total() == 0.0


# ------------------------------------------------------------------------------------------
# The planner as oracle
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_planner_is_the_c_planner_and_cost_depends_on_counts_only(name):
    model, importance = _setup(name)
    planner = Planner(model, importance, batch=2, momentum=True)
    rng = np.random.default_rng(0)
    for _ in range(20):
        state = tuple(int(rng.integers(-1, layer.channels + 1)) if layer.has_weights else -1
                      for layer in model.layers)
        spec = planner.spec(state)
        assert planner.plan(state) == plan_memory(model, spec, 2, True)
        assert planner.gain(state) == pytest.approx(importance.gain(spec))
        # the same counts, other channels: the same arena
        other = {i: LayerUpdate("channels", tuple(int(c) for c in np.sort(rng.permutation(layer.channels)[:n])))
                 for i, (n, layer) in enumerate(zip(state, model.layers)) if 0 < n < layer.channels}
        shuffled = UpdateSpec(tuple(other.get(i, u) for i, u in enumerate(spec.layers)))
        assert plan_memory(model, shuffled, 2, True) == planner.plan(state)


# ------------------------------------------------------------------------------------------
# Selection
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["signal", "power"])
def test_selection_fits_random_budgets(name, kind):
    model, importance = _setup(name, kind)
    rng = np.random.default_rng(1)
    full = _full(model, 4)
    for budget in rng.integers(full // 20, full + full // 10, 8):
        margin = float(rng.choice([0.0, 0.1, 0.25]))
        chosen = select_by_importance(model, importance, int(budget), batch=4, margin=margin)
        if chosen is None:  # nothing with a gain fits
            assert kind == "signal" or plan_memory(model, UpdateSpec.bias_only(model), 4).total > budget * (1 - margin)
            continue
        assert chosen.budget == int(budget * (1 - margin))
        assert chosen.memory.total <= chosen.budget
        assert plan_memory(model, chosen.spec, 4) == chosen.memory  # the exact C plan
        assert chosen.gain == pytest.approx(importance.gain(chosen.spec))
        assert 0 < chosen.gain_fraction <= 1 + 1e-9
        for index, update in enumerate(chosen.spec.layers):  # nothing trains for no gain
            assert update.mode == "frozen" or importance.gain(UpdateSpec.of(model, {index: update})) > 0
            rows = importance.rows[index]
            assert update.mode != "channels" or np.all(rows[list(update.channels)] > 0)
            assert update.mode != "full" or np.all(rows > 0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["signal", "power"])
def test_a_larger_budget_never_gives_less_gain(name, kind):
    model, importance = _setup(name, kind)
    full = _full(model)
    budgets = np.sort(np.random.default_rng(2).integers(0, full + full // 10, 14))
    gains = []
    for budget in budgets:
        chosen = select_by_importance(model, importance, int(budget))
        gains.append(0.0 if chosen is None else chosen.gain)
    assert all(b >= a - 1e-12 * max(gains) for a, b in zip(gains, gains[1:])), gains
    roomy = select_by_importance(model, importance, full)
    assert roomy is not None and roomy.gain == pytest.approx(importance.total())


@pytest.mark.parametrize("name", NAMES)
def test_never_worse_than_the_structured_heuristic_by_the_same_measure(name):
    model, importance = _setup(name)
    for fraction in (0.1, 0.2, 0.4):
        budget = int(fraction * _full(model))
        chosen = select_by_importance(model, importance, budget)
        heuristic = select_sparse_update(model, budget, importance=importance.channel_scores())
        if heuristic is not None:
            assert chosen is not None and chosen.gain >= importance.gain(heuristic.spec) - 1e-12


@pytest.mark.parametrize("name", NAMES)
def test_selection_is_fast(name):
    model, importance = _setup(name)
    began = time.perf_counter()
    chosen = select_by_importance(model, importance, int(0.2 * _full(model)))
    assert chosen is not None and time.perf_counter() - began < 1.0


def test_nothing_fits():
    model, importance = _setup("digits_cnn2d")
    assert select_by_importance(model, importance, 1000) is None
    with pytest.raises(ValueError, match="margin"):
        select_by_importance(model, importance, 10 ** 6, margin=1.0)


# ------------------------------------------------------------------------------------------
# Nested tiers
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_nested_tiers_are_supersets_that_fit(name):
    model, importance = _setup(name)
    full = _full(model, 2)
    budgets = [int(full * f) for f in (0.5, 0.2, 0.3, 1.2)]  # any order
    tiers = nested_tiers(model, importance, budgets, batch=2, margin=0.1)
    assert all(t is not None for t in tiers)
    for budget, tier in zip(budgets, tiers):
        assert tier.memory.total <= int(budget * 0.9) and plan_memory(model, tier.spec, 2) == tier.memory
    order = np.argsort(budgets)
    for small, big in zip(order, order[1:]):
        assert is_superset(model, tiers[big].spec, tiers[small].spec)
        assert tiers[big].gain >= tiers[small].gain
        assert set(ParameterIndex.of(model).indices(tiers[small].spec)) <= \
            set(ParameterIndex.of(model).indices(tiers[big].spec))
    assert tiers[budgets.index(max(budgets))].gain == pytest.approx(importance.total())
    assert tiers[1] == select_by_importance(model, importance, budgets[1], 2, margin=0.1)  # the smallest


def test_is_superset():
    model = REFERENCE_MODELS["digits_mlp"].build(0)
    a = UpdateSpec.of(model, {3: LayerUpdate("channels", (1, 2)), 5: LayerUpdate("full")})
    b = UpdateSpec.of(model, {3: LayerUpdate("channels", (1, 2, 7)), 5: LayerUpdate("full")})
    assert is_superset(model, b, a) and not is_superset(model, a, b)
    assert is_superset(model, UpdateSpec.full(model), b) and not is_superset(model, UpdateSpec.bias_only(model), a)
    assert is_superset(model, a, UpdateSpec.frozen(model))


def test_union_trains_what_either_spec_trains():
    model = REFERENCE_MODELS["digits_mlp"].build(0)
    a = UpdateSpec.of(model, {1: LayerUpdate("channels", (0, 3)), 3: LayerUpdate("bias")})
    b = UpdateSpec.of(model, {1: LayerUpdate("channels", (3, 5)), 5: LayerUpdate("full")})
    both = union(model, a, b)
    assert both.layers[1] == LayerUpdate("channels", (0, 3, 5)) and both.layers[3] == LayerUpdate("bias")
    assert both.layers[5] == LayerUpdate("full") and is_superset(model, both, a) and is_superset(model, both, b)
    index = ParameterIndex.of(model)
    assert set(index.indices(both)) == set(index.indices(a)) | set(index.indices(b))
    rows = tuple(range(model.layers[1].channels))
    assert union(model, UpdateSpec.of(model, {1: LayerUpdate("channels", rows)}), a).layers[1] == LayerUpdate("full")


# ------------------------------------------------------------------------------------------
# Reselection
# ------------------------------------------------------------------------------------------

def test_needs_reselection():
    model = REFERENCE_MODELS["digits_mlp"].build(0)
    current = choose_spec(model, usable_budget([32 * 1024, 48 * 1024], 0.1), 16, False)
    arena = current.memory.total
    assert not needs_reselection(arena, current.budget, [32 * 1024, 48 * 1024], 0.1)  # the same fleet
    assert not needs_reselection(arena, current.budget, [32 * 1024, 64 * 1024], 0.1)  # a bigger board joins
    assert needs_reselection(arena, current.budget, [32 * 1024, 16 * 1024], 0.1)      # a smaller one joins
    assert needs_reselection(arena, current.budget, [32 * 1024], 0.5)                 # a larger margin
    exact = int(np.ceil(arena / 0.9))
    assert not needs_reselection(arena, current.budget, [exact], 0.1) and needs_reselection(arena, current.budget, [exact - 2], 0.1)
    assert not needs_reselection(arena, current.budget, [], 0.1)                      # no boards: nothing to size
    assert not needs_reselection(arena, current.budget, [64 * 1024], 0.1)
    assert needs_reselection(arena, current.budget, [64 * 1024], 0.1, grow=0.5)       # room to train more
    assert not needs_reselection(arena, current.budget, [40 * 1024], 0.1, grow=0.5)


def test_fleet_selector_resizes_for_a_smaller_board_and_grows_only_when_asked():
    from ftte.coordinator.trainable import FleetSelector, Trainable

    model = REFERENCE_MODELS["digits_mlp"].build(0)
    data = REFERENCE_MODELS["digits_mlp"].data()
    importance = calibration_importance(model, data.x_train[:16], data.y_train[:16])
    rams = [32 * 1024] * 3
    selector = FleetSelector(model, 0.1, 16, False, "importance", importance)
    current = Trainable.of(model, choose_spec(model, usable_budget(rams, 0.1), 16, False, "importance", importance))
    assert selector.reselect(rams + [48 * 1024], current) is None
    new = selector.reselect(rams + [12 * 1024], current)
    assert new is not None and new.budget == int(12 * 1024 * 0.9)
    assert new.arena_bytes <= new.budget < current.arena_bytes
    assert selector.reselect(rams, new) is None  # the small board left: w* stays without `grow`
    grown = FleetSelector(model, 0.1, 16, False, "importance", importance, grow=0.5).reselect(rams, new)
    assert grown is not None and grown.spec == current.spec
    with pytest.raises(ValueError, match="needs"):
        FleetSelector(model, 0.1, 16, False, {"dense_1": "full"}).reselect([12 * 1024], current)


# ------------------------------------------------------------------------------------------
# ftte run
# ------------------------------------------------------------------------------------------

def test_choose_spec_importance():
    model = REFERENCE_MODELS["accel_cnn1d"].build(0)
    _, importance = _setup("accel_cnn1d")
    budget = int(0.5 * _full(model, 16))
    chosen = choose_spec(model, budget, 16, False, "importance", importance)
    expected = select_by_importance(model, importance, budget, 16)
    assert chosen.spec == expected.spec and chosen.memory.total <= budget and chosen.label == expected.label
    with pytest.raises(ValueError, match="calibration"):
        choose_spec(model, budget, 16, False, "importance")
    with pytest.raises(ValueError, match="nothing"):
        choose_spec(model, 100, 16, False, "importance", importance)


def test_ftte_run_opens_with_importance_selection(tmp_path):
    """`[budget] spec = "importance"`: the session measures importance on the host's share of
    the pretrained model and sizes w* for the weakest board."""
    raw = {"model": {"name": "digits_mlp"}, "start": {"mode": "pretrained", "epochs": 2},
           "boards": [{"inprocess": 2, "ram": "16KB"}, {"inprocess": 1, "ram": "32KB"}],
           "strategy": {"name": "ftte"}, "output": {"dir": str(tmp_path / "run"), "progress": False},
           "stop": {"max_versions": 1}}
    cfg = parse_config(raw)
    cfg = dataclasses.replace(cfg, budget=dataclasses.replace(cfg.budget, spec="importance"))
    fleet = open_run(cfg)
    try:
        assert fleet.selection.memory.total <= fleet.selection.budget == int(16 * 1024 * 0.9)
        server, _ = _server_split(len(fleet.data.y_train), cfg)  # the host's share, which w0 was pretrained on
        importance = calibration_importance(fleet.model, fleet.data.x_train[server][:256],
                                            fleet.data.y_train[server][:256])
        expected = select_by_importance(fleet.model, importance, fleet.selection.budget, batch=16)
        assert fleet.selection.spec == expected.spec and fleet.selection.label == expected.label
        assert fleet.store.selections()[-1].label == fleet.selection.label
    finally:
        fleet.close()
