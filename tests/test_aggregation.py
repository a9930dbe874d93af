"""Aggregation strategies against hand-computed numbers, and their robustness and persistence.

Every expected value below is worked out by hand in the comment beside it; the vectors are
small on purpose so that the arithmetic can be checked on paper.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ftte.aggregation import (
    FTTE, STRATEGIES, AgeWeight, Assignment, FedAsync, FedAsyncConfig, FedAvg, FedAvgConfig, FedBuff,
    FedBuffConfig, FTTEConfig, ParameterIndex, Reason, Strategy, StrategyState, Update, VarianceWeight, Wait,
    board_relative_variances, flat_parameters, load_flat_parameters, merge, relative_variance, restore,
)
from ftte.aggregation.ftte import ftte_weights
from ftte.model import LayerUpdate, UpdateSpec, dense, relu, sequential


def up(board, base, indices, delta, samples=1, variance=None, task_id=None) -> Update:
    return Update(board, base, np.asarray(indices), np.asarray(delta, np.float64), samples, variance, task_id)


def fleet(strategy: Strategy, *boards: str) -> Strategy:
    for board in boards:
        strategy.register(board)
    return strategy


# ------------------------------------------------------------------------------------------
# Weighting functions
# ------------------------------------------------------------------------------------------

def test_age_weights_by_hand():
    # polynomial a=0.5: (1+0)^-0.5 = 1, (1+3)^-0.5 = 1/2, (1+8)^-0.5 = 1/3
    assert np.allclose(AgeWeight("polynomial", a=0.5)([0, 3, 8]), [1, 1 / 2, 1 / 3])
    # hinge a=1, b=2: s <= 2 -> 1; s=4 -> 1/(1*(4-2)+1) = 1/3; s=7 -> 1/(5+1) = 1/6
    assert np.allclose(AgeWeight("hinge", a=1, b=2)([0, 2, 4, 7]), [1, 1, 1 / 3, 1 / 6])
    # exponential a=ln 2: 2^-s
    assert np.allclose(AgeWeight("exponential", a=math.log(2))([0, 1, 3]), [1, 1 / 2, 1 / 8])
    assert np.allclose(AgeWeight("constant")([0, 5, 100]), [1, 1, 1])


def test_variance_weights_by_hand():
    # inverse b=1: 1/(1+0) = 1, 1/(1+1) = 1/2, 1/(1+3) = 1/4, 1/(1+inf) = 0
    assert np.allclose(VarianceWeight("inverse", b=1)([0, 1, 3, np.inf]), [1, 1 / 2, 1 / 4, 0])
    # exponential b=2: exp(-2*0.5) = e^-1, exp(-2*inf) = 0
    assert np.allclose(VarianceWeight("exponential", b=2)([0, 0.5, np.inf]), [1, math.exp(-1), 0])
    assert np.allclose(VarianceWeight("constant")([0, 9, np.inf]), [1, 1, 1])
    # b = 0 means "ignore variance", even for an infinitely noisier update (0 * inf is not NaN)
    assert np.allclose(VarianceWeight("inverse", b=0)([np.inf, 2]), [1, 1])


def test_relative_variance_is_over_the_median():
    # median of [1, 2, 4] is 2 -> [1/2, 1, 2]
    assert np.allclose(relative_variance([1, 2, 4]), [0.5, 1, 2])
    # median 0: the update that moved is infinitely noisier than the typical one
    assert np.array_equal(relative_variance([0, 0, 3]), [0, 0, np.inf])


@pytest.mark.parametrize("bad", [dict(kind="cubic"), dict(a=-1), dict(b=float("nan"))])
def test_age_weight_refuses_bad_configs(bad):
    with pytest.raises(ValueError):
        AgeWeight(**bad)


# ------------------------------------------------------------------------------------------
# Per-coordinate merge
# ------------------------------------------------------------------------------------------

def test_merge_averages_each_coordinate_over_the_updates_that_cover_it():
    a = up("a", 0, [0, 1], [2, 4]).normalised()
    b = up("b", 0, [1, 2], [10, 6]).normalised()
    by_weight = merge([a, b], [1, 3], size=4, divide_by="weight")
    # coord 0: only a -> 2; coord 1: (1*4 + 3*10)/(1+3) = 34/4 = 8.5; coord 2: only b -> 6; coord 3: none -> 0
    assert np.allclose(by_weight.delta, [2, 8.5, 6, 0])
    assert by_weight.covered.tolist() == [True, True, True, False]
    by_count = merge([a, b], [1, 3], size=4, divide_by="count")
    # coord 0: 1*2/1 = 2; coord 1: (1*4 + 3*10)/2 = 17; coord 2: 3*6/1 = 18
    assert np.allclose(by_count.delta, [2, 17, 18, 0])


def test_merge_with_all_covering_weights_zero_leaves_the_coordinate_alone():
    a = up("a", 0, [0], [5]).normalised()
    b = up("b", 0, [0, 1], [1, 7]).normalised()
    merged = merge([a, b], [1, 0], size=2)
    # coord 0: (1*5 + 0*1)/1 = 5; coord 1: covered only by weight 0 -> 0, never 0/0
    assert np.array_equal(merged.delta, [5, 0])


# ------------------------------------------------------------------------------------------
# FTTE
# ------------------------------------------------------------------------------------------

INVERSE = VarianceWeight("inverse", b=1)  # the variance weight FTTE used by default until 2026-11-30


def test_ftte_defaults_weight_by_age_and_the_boards_own_variance_with_half_the_step():
    config = FTTEConfig()
    assert config.variance == VarianceWeight("inverse", b=1, baseline="board", history=5)
    assert config.age == AgeWeight("polynomial", a=0.5)
    assert config.server_lr == 0.5 and config.server_momentum == 0
    # a board far from fitting its data sends a delta 100x the others' mean square: it is not
    # down-weighted for it (the buffer's median gave it 1/(1+100) against 1/2)
    s = fleet(FTTE(np.zeros(1), FTTEConfig(buffer_size=3), version=3), "a", "b", "c")
    s.on_update(up("a", 3, [0], [10.0]))    # s=0, v=100, no history -> r = 1 -> g = 1
    s.on_update(up("b", 3, [0], [1.0]))     # s=0, v=1, no history
    out = s.on_update(up("c", 0, [0], [1.0]))  # s=3 -> age 1/2, v=1, no history
    # w = [1, 1, 1/2] -> p = [2, 2, 1]/5; delta = (2*10 + 2*1 + 1*1)/5 = 23/5; theta = 0.5 * 23/5
    assert np.allclose(out.advance.weights, np.array([2, 2, 1]) / 5)
    assert np.allclose(s.params, [0.5 * 23 / 5])
    # next buffer (version 4, all fresh): a again v=100 -> r = 100/100 = 1 -> g = 1; b v=1 -> 1;
    # c jumps to v=9 against its own 1 -> r = 9 -> 1/(1 + 8) = 1/9 -> p = [9, 9, 1]/19
    s.on_update(up("a", 4, [0], [10.0]))
    s.on_update(up("b", 4, [0], [1.0]))
    out = s.on_update(up("c", 4, [0], [3.0]))
    assert np.allclose(out.advance.weights, np.array([9, 9, 1]) / 19)
    # delta = (9*10 + 9*1 + 1*3)/19 = 102/19
    assert np.allclose(s.params, [0.5 * 23 / 5 + 0.5 * 102 / 19])


def test_ftte_by_hand_age_variance_and_partial_coverage():
    s = fleet(FTTE(np.ones(4), FTTEConfig(buffer_size=3, server_lr=0.5, variance=INVERSE), version=3), "A", "B", "C")
    a = up("A", 3, [0, 1], [2, 2])          # s=0, v = (4+4)/2 = 4
    b = up("B", 0, [1, 2], [4, 0])          # s=3, v = (16+0)/2 = 8
    c = up("C", 3, [0, 1, 2], [-1, -1, -1])  # s=0, v = 1
    first, second = s.on_update(a), s.on_update(b)
    assert first.accepted and second.accepted and not first.advanced and not second.advanced
    assert np.array_equal(s.params, np.ones(4)) and s.version == 3 and len(s.pending) == 2
    outcome = s.on_update(c)
    assert outcome.advanced and outcome.version == 4 and s.version == 4 and s.pending == ()
    # variances [4, 8, 1], median 4 -> r = [1, 2, 1/4] -> 1/(1+r) = [1/2, 1/3, 4/5]
    # ages (1+s)^-0.5 for s = [0, 3, 0] -> [1, 1/2, 1]
    # w = [1/2, 1/6, 4/5] = [15, 5, 24]/30, sum 44/30 -> p = [15, 5, 24]/44
    assert np.allclose(outcome.advance.weights, np.array([15, 5, 24]) / 44)
    assert outcome.advance.staleness == (0, 3, 0) and outcome.advance.boards == ("A", "B", "C")
    # coord 0 (A, C):    (15*2 + 24*-1)/(15+24)        = 6/39  = 2/13
    # coord 1 (A, B, C): (15*2 + 5*4 + 24*-1)/44       = 26/44 = 13/22
    # coord 2 (B, C):    (5*0 + 24*-1)/(5+24)          = -24/29
    # coord 3: nobody -> 0.  theta = 1 + 0.5 * delta
    expected = 1 + 0.5 * np.array([2 / 13, 13 / 22, -24 / 29, 0])
    assert np.allclose(s.params, expected, rtol=0, atol=1e-7)
    assert s.params.dtype == np.float32


def test_ftte_weight_variants_by_hand():
    updates = [up("a", 4, [0], [1], samples=2, variance=1.0).normalised(),
               up("b", 0, [0], [1], samples=6, variance=3.0).normalised()]
    # hinge a=1 b=2: s=[0, 4] -> [1, 1/(1*2+1)] = [1, 1/3]
    # exponential b=ln 3: median of [1, 3] is 2 -> r = [1/2, 3/2] -> 3^-r = [3^-0.5, 3^-1.5]
    config = FTTEConfig(age=AgeWeight("hinge", a=1, b=2), variance=VarianceWeight("exponential", b=math.log(3)))
    w = np.array([1 * 3 ** -0.5, (1 / 3) * 3 ** -1.5])
    assert np.allclose(ftte_weights(updates, 4, config), w / w.sum())
    # constant age and variance, weighted by samples: [2, 6] / 8
    plain = FTTEConfig(age=AgeWeight("constant"), variance=VarianceWeight("constant"), weight_by_samples=True)
    assert np.allclose(ftte_weights(updates, 4, plain), [0.25, 0.75])


def test_ftte_uses_the_reported_variance_and_computes_it_when_absent():
    # reported variances [1, 3] -> median 2 -> r = [1/2, 3/2] -> 1/(1+r) = [2/3, 2/5] -> p = [5/8, 3/8]
    s = fleet(FTTE(np.zeros(1), FTTEConfig(buffer_size=2, server_lr=1.0, variance=INVERSE)), "a", "b")
    s.on_update(up("a", 0, [0], [8], variance=1.0))
    out = s.on_update(up("b", 0, [0], [0], variance=3.0))
    assert np.allclose(out.advance.weights, [5 / 8, 3 / 8])
    assert np.allclose(s.params, [5 / 8 * 8])  # = 5
    # absent: v = mean(d^2) = [4, 0]; median 2 -> r = [2, 0] -> [1/3, 1] -> p = [1/4, 3/4]
    s = fleet(FTTE(np.zeros(1), FTTEConfig(buffer_size=2, server_lr=1.0, variance=INVERSE)), "a", "b")
    s.on_update(up("a", 0, [0], [2]))
    out = s.on_update(up("b", 0, [0], [0]))
    assert np.allclose(out.advance.weights, [1 / 4, 3 / 4]) and np.allclose(s.params, [0.5])


# the variance weight against each board's own recent variances (the default since 2026-11-30)
BOARD = VarianceWeight("inverse", b=1, baseline="board", history=3)


def test_board_relative_variance_by_hand():
    history = {"a": ("x", (1.0, 3.0)), "b": ("z", (100.0,)), "c": ("x", (0.0,))}
    r, updated = board_relative_variances(["a", "a", "b", "a", "c"], [2, 4, 9, 8, 5], ["x", "x", "y", "x", "x"],
                                          history, keep=3)
    # a, v=2: median(1, 3) = 2 -> r = 1, history (1, 3, 2)
    # a, v=4: median(1, 3, 2) = 2 -> r = 2, history (3, 2, 4) (keep 3)
    # b, v=9: trained set y, not z -> history starts afresh -> r = 1 (neutral), history (9,)
    # a, v=8: median(3, 2, 4) = 3 -> r = 8/3, history (2, 4, 8)
    # c, v=5: median(0) = 0, no scale -> r = 1, history (0, 5)
    assert np.allclose(r, [1, 2, 1, 8 / 3, 1])
    assert updated == {"a": ("x", (2.0, 4.0, 8.0)), "b": ("y", (9.0,)), "c": ("x", (0.0, 5.0))}
    assert history["a"] == ("x", (1.0, 3.0))  # the given histories are not changed
    # against the board, g applies to the excess max(0, r - 1): r <= 1 counts fully
    # r = [1, 2, 8/3, 1/2] -> x = [0, 1, 5/3, 0] -> 1/(1+x) = [1, 1/2, 3/8, 1]
    assert np.allclose(BOARD.of_relative([1, 2, 8 / 3, 0.5]), [1, 1 / 2, 3 / 8, 1])
    # against the buffer, as before: g(r)
    assert np.allclose(INVERSE.of_relative([1, 2, 0.5]), [1 / 2, 1 / 3, 2 / 3])


@pytest.mark.parametrize("bad", [dict(baseline="fleet"), dict(history=0), dict(history=2.5), dict(history=True)])
def test_variance_weight_refuses_bad_baselines(bad):
    with pytest.raises(ValueError):
        VarianceWeight(**bad)


def board_weighted(history=3, boards=("a", "b", "c"), buffer_size=3, **variance) -> FTTE:
    weight = VarianceWeight("inverse", b=1, **{"baseline": "board", "history": history, **variance})
    config = FTTEConfig(buffer_size=buffer_size, age=AgeWeight("constant"), variance=weight, server_lr=1.0)
    return fleet(FTTE(np.zeros(4), config), *boards)


def test_board_baseline_keeps_a_steady_large_variance_and_damps_a_spike():
    s = board_weighted()
    steady = {"a": 1.0, "b": 100.0, "c": 1.0}  # b's local loss is high: its deltas are always large
    for _ in range(3):
        outs = [s.on_update(up(board, s.version, [0, 1], [1, 1], variance=v)) for board, v in steady.items()]
        # first round: no history -> r = 1; then each board's median is its own constant -> r = 1
        assert np.allclose(outs[-1].advance.weights, [1 / 3] * 3)
    # the buffer's median would have damped b every round: median(1, 100, 1) = 1 -> r = [1, 100, 1]
    buffered = [up(board, 0, [0], [1], variance=v).normalised() for board, v in steady.items()]
    assert np.allclose(ftte_weights(buffered, 0, FTTEConfig(age=AgeWeight("constant"), variance=INVERSE)),
                       np.array([1 / 2, 1 / 101, 1 / 2]) / (1 + 1 / 101))
    # c suddenly reports 50: r = 50 / median(1, 1, 1) = 50 -> 1/(1 + 49) -> w = [1, 1, 1/50] -> p = [50, 50, 1]/101
    s.on_update(up("a", s.version, [0, 1], [1, 1], variance=1.0))
    s.on_update(up("b", s.version, [0, 1], [1, 1], variance=100.0))
    out = s.on_update(up("c", s.version, [0, 1], [1, 1], variance=50.0))
    assert np.allclose(out.advance.weights, np.array([50, 50, 1]) / 101)


def test_board_baseline_starts_afresh_when_the_trained_set_changes():
    s = board_weighted(boards=("a", "b"), buffer_size=2)
    s.on_update(up("a", 0, [0, 1], [1, 1], variance=1.0))
    out = s.on_update(up("b", 0, [0, 1], [1, 1], variance=1.0))
    assert np.allclose(out.advance.weights, [1 / 2, 1 / 2])  # no history: r = 1 -> g = 1
    s.on_update(up("a", 1, [0, 1], [1, 1], variance=1.0))
    out = s.on_update(up("b", 1, [0, 1], [1, 1], variance=4.0))
    # b: r = 4 / 1 -> 1/(1 + 3) -> w = [1, 1/4] -> p = [4/5, 1/5]
    assert np.allclose(out.advance.weights, [4 / 5, 1 / 5])
    s.on_update(up("a", 2, [0, 1], [1, 1], variance=1.0))
    out = s.on_update(up("b", 2, [2, 3], [1, 1], variance=4.0))
    # b trains another set (w* rotated): its history (1, 4) was on [0, 1] -> afresh -> r = 1 -> p = [1/2, 1/2]
    assert np.allclose(out.advance.weights, [1 / 2, 1 / 2])
    s.on_update(up("a", 3, [0, 1], [1, 1], variance=1.0))
    out = s.on_update(up("b", 3, [2, 3], [1, 1], variance=8.0))
    # b on [2, 3]: history (4) -> r = 2 -> 1/2 -> p = [2/3, 1/3]
    assert np.allclose(out.advance.weights, [2 / 3, 1 / 3])
    assert s.state().extra["variance_history"]["b"][1] == [4.0, 8.0]
    # a board that leaves takes its history with it (memory: at most `history` floats per registered board)
    s.unregister("a")
    assert set(s.state().extra["variance_history"]) == {"b"}


def test_board_baseline_state_round_trip_gives_the_same_weights():
    s = board_weighted(history=4, boards=BOARDS, buffer_size=3)
    rng = np.random.default_rng(7)
    sets = [np.arange(0, 3), np.arange(1, 4)]
    stream = [(BOARDS[int(rng.integers(len(BOARDS)))], sets[int(rng.integers(2))] if i > 40 else sets[0],
               float(rng.lognormal(0, 1.5))) for i in range(120)]

    def run(strategy, part):
        weights = []
        for board, indices, v in part:
            out = strategy.on_update(up(board, strategy.version, indices, np.ones(indices.size), variance=v))
            assert out.accepted
            weights.append(out.advance.weights if out.advance else None)
        return weights

    run(s, stream[:50])
    cut = 50
    while not s.pending:
        run(s, stream[cut:cut + 1])
        cut += 1
    state = persisted(s.state())
    assert len(state.extra["variance_history"]) == len(BOARDS)
    resumed = restore(state)
    assert resumed.config == s.config and resumed.config.variance == VarianceWeight("inverse", 1, "board", 4)
    one, two = run(s, stream[cut:]), run(resumed, stream[cut:])
    assert one == two and any(w is not None and max(w) - min(w) > 0.1 for w in one)
    assert s.params.tobytes() == resumed.params.tobytes()
    # a state written before the option existed restores with the buffer baseline
    old = {**s.state().config, "variance": {"kind": "inverse", "b": 1.0}}
    assert FTTEConfig.from_dict(old).variance == INVERSE


def test_ftte_server_momentum_moves_only_covered_coordinates():
    config = FTTEConfig(buffer_size=1, server_lr=1.0, server_momentum=0.5)
    s = fleet(FTTE(np.zeros(2), config), "a")
    s.on_update(up("a", 0, [0], [2]))   # m = [2, 0]; theta = [2, 0]
    assert np.allclose(s.params, [2, 0])
    s.on_update(up("a", 1, [1], [1]))   # coord 0 uncovered: m0 stays 2, theta0 stays 2; m1 = 1 -> [2, 1]
    assert np.allclose(s.params, [2, 1])
    s.on_update(up("a", 2, [0], [2]))   # m0 = 0.5*2 + 2 = 3 -> theta0 = 2 + 3 = 5
    assert np.allclose(s.params, [5, 1])


def test_ftte_drops_updates_staler_than_the_maximum():
    s = fleet(FTTE(np.zeros(2), FTTEConfig(buffer_size=5, max_staleness=2), version=5), "a")
    old = s.on_update(up("a", 2, [0], [1]))  # staleness 3 > 2
    assert not old.accepted and old.reason is Reason.TOO_STALE and "staleness 3" in old.detail
    assert s.on_update(up("a", 3, [0], [1])).accepted  # staleness 2 is allowed
    future = s.on_update(up("a", 6, [0], [1]))
    assert future.reason is Reason.FUTURE_VERSION
    assert len(s.pending) == 1


def test_flush_folds_a_partial_buffer_and_nothing_is_lost_on_unregister():
    s = fleet(FTTE(np.zeros(2), FTTEConfig(buffer_size=3, server_lr=1.0)), "a", "b")
    assert s.flush() is None
    s.on_update(up("a", 0, [0, 1], [1, 3]))
    assert s.unregister("a") is None and s.boards == ("b",)
    assert len(s.pending) == 1  # a's accepted update stays
    assert s.on_update(up("a", 0, [0], [1])).reason is Reason.UNKNOWN_BOARD
    advance = s.flush()
    assert advance.version == 1 and np.allclose(s.params, [1, 3]) and s.pending == ()


def test_a_replayed_task_is_refused():
    s = fleet(FTTE(np.zeros(2), FTTEConfig(buffer_size=3)), "a")
    assert s.on_update(up("a", 0, [0], [1], task_id=7)).accepted
    again = s.on_update(up("a", 0, [0], [1], task_id=7))
    assert again.reason is Reason.DUPLICATE and len(s.pending) == 1
    assert s.on_update(up("a", 0, [0], [1], task_id=8)).accepted


# ------------------------------------------------------------------------------------------
# FedBuff
# ------------------------------------------------------------------------------------------

def test_fedbuff_by_hand():
    s = fleet(FedBuff(np.zeros(3), FedBuffConfig(buffer_size=2, server_lr=0.5), version=3), "A", "B")
    assert not s.on_update(up("A", 3, [0, 1], [2, 4])).advanced   # s=0 -> w = 1
    out = s.on_update(up("B", 0, [1, 2], [4, 8]))                  # s=3 -> w = 1/sqrt(4) = 1/2
    # coord 0: 1*2/1 = 2; coord 1: (1*4 + 1/2*4)/2 = 3; coord 2: 1/2*8/1 = 4; theta = 0.5 * [2, 3, 4]
    assert out.advanced and s.version == 4
    assert np.allclose(s.params, [1, 1.5, 2])
    assert np.allclose(out.advance.weights, [1, 0.5])


# ------------------------------------------------------------------------------------------
# FedAsync
# ------------------------------------------------------------------------------------------

def test_fedasync_polynomial_mixing_by_hand():
    s = fleet(FedAsync(np.ones(2), FedAsyncConfig(alpha=0.5), version=3), "a")
    out = s.on_update(up("a", 0, [1], [4]))
    # staleness 3: (1+3)^-0.5 = 1/2 -> alpha_t = 0.5 * 1/2 = 1/4; theta1 = 1 + 1/4 * 4 = 2
    assert out.advanced and s.version == 4 and np.allclose(out.advance.weights, [0.25])
    assert np.allclose(s.params, [1, 2])


def test_fedasync_hinge_mixing_by_hand():
    s = fleet(FedAsync(np.zeros(1), FedAsyncConfig(alpha=0.8, age=AgeWeight("hinge", a=1, b=1)), version=3), "a")
    assert math.isclose(s.mixing(1), 0.8)            # s <= b -> 0.8 * 1
    assert math.isclose(s.mixing(3), 0.8 / 3)        # 0.8 / (1*(3-1)+1)
    s.on_update(up("a", 0, [0], [3]))                # staleness 3: theta = 0 + 0.8/3 * 3 = 0.8
    assert np.allclose(s.params, [0.8])


def test_fedasync_base_reference_mixes_in_the_boards_model():
    config = FedAsyncConfig(alpha=0.5, age=AgeWeight("constant"), max_staleness=1, reference="base")
    s = fleet(FedAsync(np.zeros(2), config), "a", "b")
    s.on_update(up("a", 0, [0, 1], [2, 2]))  # theta = 0.5*0 + 0.5*(0 + 2) = [1, 1], version 1
    s.on_update(up("b", 0, [0], [4]))        # local = theta_v0[0] + 4 = 4; theta0 = 0.5*1 + 0.5*4 = 2.5
    assert np.allclose(s.params, [2.5, 1]) and s.version == 2
    # with reference="current" the same update would have given 1 + 0.5*4 = 3
    assert s.on_update(up("b", 0, [0], [4])).reason is Reason.TOO_STALE  # staleness 2 > 1
    assert sorted(s.state().arrays) == ["history/1"]  # version 0 is no longer kept


# ------------------------------------------------------------------------------------------
# FedAvg
# ------------------------------------------------------------------------------------------

def test_fedavg_by_hand_waits_for_the_whole_cohort():
    s = fleet(FedAvg(np.zeros(2), FedAvgConfig(fraction=1.0)), "A", "B")
    assert isinstance(s.assign("A"), Assignment) and s.cohort == ("A", "B")
    assert not s.on_update(up("A", 0, [0, 1], [3, 3], samples=1)).advanced
    assert isinstance(s.assign("A"), Wait)  # already reported
    dup = s.on_update(up("A", 0, [0], [1]))
    assert dup.reason is Reason.DUPLICATE
    out = s.on_update(up("B", 0, [0], [1], samples=3))
    # coord 0: (1*3 + 3*1)/(1+3) = 1.5; coord 1: only A -> 3
    assert out.advanced and s.version == 1 and np.allclose(s.params, [1.5, 3])
    assert np.allclose(out.advance.weights, [0.25, 0.75])
    old = s.on_update(up("A", 0, [0], [1]))  # round 0 is over; cohort of round 1 not drawn yet
    assert old.reason is Reason.NOT_IN_COHORT
    s.assign("B")
    assert s.on_update(up("A", 0, [0], [1])).reason is Reason.WRONG_ROUND


def test_fedavg_samples_a_seeded_fraction():
    boards = ["b0", "b1", "b2", "b3"]
    s = fleet(FedAvg(np.zeros(1), FedAvgConfig(fraction=0.5), rng=np.random.default_rng(7)), *boards)
    replies = {b: s.assign(b) for b in boards}
    # the draw: 2 of the 4 sorted boards, from the same seed
    expected = tuple(sorted(boards[i] for i in np.random.default_rng(7).choice(4, size=2, replace=False)))
    assert s.cohort == expected
    for board, reply in replies.items():
        assert isinstance(reply, Assignment) == (board in expected)
    outsider = next(b for b in boards if b not in expected)
    assert s.on_update(up(outsider, 0, [0], [1])).reason is Reason.NOT_IN_COHORT
    assert FedAvgConfig(fraction=0.3).cohort_size(10) == 3      # not 4 from 3.0000000000000004
    assert FedAvgConfig(fraction=0.1, min_cohort=2).cohort_size(5) == 2


def test_fedavg_waits_for_enough_boards_and_abandoning_closes_the_round():
    s = fleet(FedAvg(np.zeros(1), FedAvgConfig(min_available=3)), "a", "b")
    assert isinstance(s.assign("a"), Wait)
    s.register("c")
    assert isinstance(s.assign("a"), Assignment) and s.cohort == ("a", "b", "c")
    s.on_update(up("a", 0, [0], [2], samples=1))
    s.on_update(up("b", 0, [0], [4], samples=1))
    assert s.abandon("a") is None           # a already reported: nothing to abandon
    advance = s.unregister("c")             # the last one missing: the round closes with a and b
    assert advance.version == 1 and np.allclose(s.params, [3])  # (2 + 4)/2


def test_fedavg_wakes_exactly_the_boards_assign_would_give_work():
    boards = [f"b{i:02d}" for i in range(20)]
    rng = np.random.default_rng(3)
    s = fleet(FedAvg(np.zeros(2), FedAvgConfig(fraction=0.2, min_available=20), rng=np.random.default_rng(4)),
              *boards[:-1])
    assert s.wakes(boards[:-1]) == boards[:-1]  # too few registered: everyone asks (and waits)
    s.register(boards[-1])
    for round_ in range(4):
        waiting = [boards[i] for i in rng.permutation(20)]
        woken = s.wakes(waiting)
        given = [b for b in waiting if isinstance(s.assign(b), Assignment)]
        assert woken == given and len(given) == 4  # the same boards, in the order they waited
        for board in given[:2]:
            s.on_update(up(board, round_, [0], [1.0]))
        assert s.wakes(waiting) == given[2:]      # reporters wait for the next round
        for board in given[2:]:
            s.on_update(up(board, round_, [1], [1.0]))
        assert s.version == round_ + 1


def test_fedavg_result_does_not_depend_on_arrival_order():
    def run(order):
        s = fleet(FedAvg(np.zeros(3)), "a", "b", "c")
        s.assign("a")
        ups = {"a": up("a", 0, [0, 1], [0.1, 0.7], 3), "b": up("b", 0, [1, 2], [0.3, 0.2], 5),
               "c": up("c", 0, [0, 2], [0.9, 0.4], 7)}
        for board in order:
            s.on_update(ups[board])
        return s.params

    assert run("abc").tobytes() == run("cba").tobytes() == run("bca").tobytes()


# ------------------------------------------------------------------------------------------
# Robustness: every strategy refuses a bad update without changing anything
# ------------------------------------------------------------------------------------------

def make(name: str) -> Strategy:
    configs = {"ftte": FTTEConfig(buffer_size=3), "fedbuff": FedBuffConfig(buffer_size=3),
               "fedasync": FedAsyncConfig(), "fedavg": FedAvgConfig()}
    s = fleet(STRATEGIES[name](np.arange(5, dtype=np.float32), configs[name], version=0), "a", "b")
    s.assign("a")
    assert s.on_update(up("a", 0, [1, 2], [0.5, -0.5])).accepted  # something pending (or applied)
    return s


BAD = {
    "nan": (up("b", 0, [0, 1], [np.nan, 1]), Reason.NON_FINITE),
    "inf": (up("b", 0, [0], [np.inf]), Reason.NON_FINITE),
    "float32 overflow": (up("b", 0, [0], [1e39]), Reason.NON_FINITE),
    "huge": (up("b", 0, [0], [1e7]), Reason.OUT_OF_RANGE),
    "text": (Update("b", 0, np.array([0]), np.array(["x"])), Reason.NON_FINITE),
    "length mismatch": (up("b", 0, [0, 1], [1]), Reason.WRONG_SIZE),
    "empty": (up("b", 0, np.zeros(0, np.int64), []), Reason.WRONG_SIZE),
    "too long": (up("b", 0, np.arange(6), np.ones(6)), Reason.WRONG_SIZE),
    "2-D": (up("b", 0, [[0, 1]], [[1, 1]]), Reason.WRONG_SIZE),
    "index out of range": (up("b", 0, [0, 5], [1, 1]), Reason.BAD_INDICES),
    "negative index": (up("b", 0, [-1, 0], [1, 1]), Reason.BAD_INDICES),
    "unsorted": (up("b", 0, [2, 1], [1, 1]), Reason.BAD_INDICES),
    "repeated": (up("b", 0, [1, 1], [1, 1]), Reason.BAD_INDICES),
    "float indices": (up("b", 0, np.array([0.0, 1.5]), [1, 1]), Reason.BAD_INDICES),
    "unknown board": (up("zz", 0, [0], [1]), Reason.UNKNOWN_BOARD),
    "nan variance": (up("b", 0, [0], [1], variance=float("nan")), Reason.BAD_VARIANCE),
    "negative variance": (up("b", 0, [0], [1], variance=-1.0), Reason.BAD_VARIANCE),
    "no samples": (up("b", 0, [0], [1], samples=0), Reason.NO_SAMPLES),
    "negative version": (up("b", -1, [0], [1]), Reason.BAD_VERSION),
    "future version": (up("b", 99, [0], [1]), Reason.FUTURE_VERSION),
}


def snapshot(s: Strategy):
    state = s.state()
    return (state.version, state.params.tobytes(), state.boards,
            [(u.board_id, u.indices.tobytes(), u.delta.tobytes()) for u in state.buffer])


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_updates_are_refused_with_a_reason_and_change_nothing(name, case):
    s = make(name)
    before = snapshot(s)
    update, reason = BAD[case]
    outcome = s.on_update(update)
    assert not outcome.accepted and outcome.reason is reason and outcome.detail
    assert outcome.version == s.version and not outcome.advanced
    assert snapshot(s) == before


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_global_parameters_are_read_only_and_accepted_updates_are_copied(name):
    s = fleet(STRATEGIES[name](np.zeros(3)), "a", "b")
    assignment = s.assign("a")
    with pytest.raises(ValueError):
        assignment.params[0] = 1
    delta = np.array([1.0, 2.0])
    s.on_update(Update("a", 0, np.array([0, 1]), delta))
    delta[:] = np.nan  # the caller reuses its buffer: the strategy must not see it
    assert all(np.all(np.isfinite(u.delta)) for u in s.pending)
    assert np.all(np.isfinite(s.params))


def test_a_non_finite_aggregate_is_an_error_and_keeps_the_buffer():
    s = fleet(FTTE(np.full(1, 3e38, np.float32), FTTEConfig(buffer_size=1, server_lr=1e33)), "a")
    with pytest.raises(FloatingPointError):
        s.on_update(up("a", 0, [0], [1e6]))  # 3e38 + 1e39 overflows float32
    assert s.version == 0 and len(s.pending) == 1 and np.isfinite(s.params).all()


def test_unregistered_boards_get_no_work():
    s = FTTE(np.zeros(1))
    assert isinstance(s.assign("ghost"), Wait)


# ------------------------------------------------------------------------------------------
# Determinism and persistence
# ------------------------------------------------------------------------------------------

BOARDS = ("b0", "b1", "b2", "b3", "b4")


def events(seed: int, count: int, size: int):
    """A reproducible stream of (board, staleness, indices, delta, samples)."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        k = int(rng.integers(1, size + 1))
        indices = np.sort(rng.choice(size, size=k, replace=False))
        yield (BOARDS[int(rng.integers(len(BOARDS)))], int(rng.integers(0, 4)), indices,
               rng.normal(0, 0.1, k), int(rng.integers(1, 50)))


def drive(s: Strategy, stream) -> list:
    """Feed events as a coordinator would: a board asks for work, then reports from it."""
    log = []
    for board, lag, indices, delta, samples in stream:
        reply = s.assign(board)
        if isinstance(reply, Wait):
            log.append(("wait", board))
            continue
        base = max(reply.version - lag, 0) if s.name != "fedavg" else reply.version
        out = s.on_update(Update(board, base, indices, delta, samples))
        log.append((out.accepted, out.reason, out.version))
    return log


def strategies(seed: int = 3) -> dict[str, Strategy]:
    params = np.random.default_rng(0).normal(size=8).astype(np.float32)
    made = {"ftte": FTTE(params, FTTEConfig(buffer_size=3, max_staleness=2, server_momentum=0.5)),
            "fedbuff": FedBuff(params, FedBuffConfig(buffer_size=4, server_lr=0.8)),
            "fedasync": FedAsync(params, FedAsyncConfig(reference="base", max_staleness=3)),
            "fedavg": FedAvg(params, FedAvgConfig(fraction=0.6), rng=np.random.default_rng(seed))}
    return {name: fleet(s, *BOARDS) for name, s in made.items()}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_same_events_same_bits(name):
    one, two = strategies()[name], strategies()[name]
    log_one, log_two = drive(one, events(11, 60, 8)), drive(two, events(11, 60, 8))
    assert log_one == log_two and one.version > 2
    assert one.params.tobytes() == two.params.tobytes()


def persisted(state: StrategyState) -> StrategyState:
    """What a database would give back: JSON for the plain values, fresh copies of arrays."""
    def copy_update(u: Update) -> Update:
        return Update(u.board_id, u.base_version, u.indices.copy(), u.delta.copy(), u.samples, u.variance,
                      u.task_id)
    return StrategyState(state.strategy, json.loads(json.dumps(state.config)), state.version, state.params.copy(),
                         tuple(json.loads(json.dumps(state.boards))), tuple(copy_update(u) for u in state.buffer),
                         {k: v.copy() for k, v in state.arrays.items()}, json.loads(json.dumps(state.extra)))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_state_round_trip_resumes_exactly(name):
    original = strategies()[name]
    stream = list(events(5, 100, 8))
    drive(original, stream[:20])
    cut = 20
    while name != "fedasync" and not original.pending:  # stop mid-buffer / mid-round
        drive(original, stream[cut:cut + 1])
        cut += 1
    resumed = restore(persisted(original.state()))
    assert type(resumed) is type(original) and resumed.config == original.config
    assert len(resumed.pending) == len(original.pending)
    assert drive(original, stream[cut:]) == drive(resumed, stream[cut:])
    assert original.version == resumed.version and original.version > 5
    assert original.params.tobytes() == resumed.params.tobytes()


def test_restore_refuses_a_state_of_another_strategy():
    state = FTTE(np.zeros(2)).state()
    with pytest.raises(ValueError):
        FedBuff.from_state(state)
    with pytest.raises(ValueError):
        restore(StrategyState("fedprox", {}, 0, np.zeros(2), ()))


# ------------------------------------------------------------------------------------------
# Coverage: the flat layout and the parameters a spec selects
# ------------------------------------------------------------------------------------------

def small_model():
    # dense(3) on 2 inputs: weights [3][2] at 0..5, bias at 6..8
    # relu: nothing;  dense(2) on 3: weights [2][3] at 9..14, bias at 15..16 -> 17 parameters
    return sequential((2,), [dense(3), relu(), dense(2)], seed=1)


def channel_spec(model):
    return UpdateSpec.of(model, {0: LayerUpdate("channels", (2, 0)), 2: LayerUpdate("bias")})


def test_parameter_index_by_hand():
    model = small_model()
    index = ParameterIndex.of(model)
    assert index.size == 17 == model.parameter_count()
    # layer 0 rows 0 and 2 (row length 2): [0, 1] and [4, 5], then its bias [6, 7, 8]; layer 2 bias [15, 16]
    assert index.indices(channel_spec(model)).tolist() == [0, 1, 4, 5, 6, 7, 8, 15, 16]
    assert index.indices(UpdateSpec.full(model)).tolist() == list(range(17))
    assert index.indices(UpdateSpec.frozen(model)).size == 0
    assert index.mask(UpdateSpec.bias_only(model)).nonzero()[0].tolist() == [6, 7, 8, 15, 16]
    with pytest.raises(ValueError):
        index.indices(UpdateSpec.of(model, {1: LayerUpdate("full")}))  # relu has no weights
    with pytest.raises(ValueError):
        index.indices(UpdateSpec.of(model, {0: LayerUpdate("channels", (3,))}))


def test_flat_parameters_round_trip():
    model = small_model()
    flat = flat_parameters(model)
    assert flat[6:9].tolist() == model.layers[0].bias.tolist()
    assert flat[9:15].tolist() == model.layers[2].weights.ravel().tolist()
    load_flat_parameters(model, flat + 1)
    assert np.array_equal(flat_parameters(model), flat + 1)
    with pytest.raises(ValueError):
        load_flat_parameters(model, flat[:-1])


def test_indices_match_the_trainers_arena_order():
    """The deltas a board sends are its arena values in order; they must land on these indices."""
    trainer_module = pytest.importorskip("ftte.train")
    model = small_model()
    spec = channel_spec(model)
    index = ParameterIndex.of(model).indices(spec)
    before = flat_parameters(model)
    trainer = trainer_module.Trainer(model, spec, batch=4)
    arena = np.concatenate([a.ravel() for t in trainer.tensors for a in (t.weights, t.bias) if a is not None])
    assert np.array_equal(arena, before[index])
    x = np.random.default_rng(0).normal(size=(4, 2)).astype(np.float32)
    trainer.step(x, np.array([0, 1, 0, 1]), lr=0.5)
    after = flat_parameters(trainer.export())
    moved = np.flatnonzero(after != before)
    assert moved.size and set(moved.tolist()) <= set(index.tolist())
