"""The fleet simulator: virtual clock, cost model, profiles, traces, stragglers, determinism, and
a small simulated run where FTTE reaches the target before FedAvg."""

from __future__ import annotations

import asyncio
import json
import math
import pickle
import time

import numpy as np
import pytest

from ftte.cli import main as ftte_main
from ftte.model import UpdateSpec
from ftte.sim import (
    LINKS, PROFILES, Arm, Availability, Fleet, SimConfig, SimulationDeadlock, Slowdown, load_traces, parse_traces,
    run_virtual, straggler_factors, task_work,
)
from ftte.sim.behaviour import assign_traces, synthetic_traces
from ftte.sim.datasets import load_model
from ftte.sim.report import auto_target
from ftte.sim.toml import parse_sim_config
from ftte.train.table import LayerTable
from ftte.zoo import reference_model

TINY = SimConfig(model="digits_mlp", boards=12, ram=16 * 1024, lr=0.02, local_steps=5, batch=1, updates=120,
                 rounds=4, buffer_size=4, stragglers=0.5, evals=10, start_epochs=10)


# --------------------------------------------------------------------------------------------- clock

def test_virtual_clock_runs_timers_in_simulated_seconds_without_waiting():
    async def sleeper(i):
        await asyncio.sleep(3600.0 * i)
        return asyncio.get_running_loop().time()

    async def main():
        times = await asyncio.gather(*(sleeper(i) for i in range(1, 50)))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.sleep(10.0), 2.5)
        return times, asyncio.get_running_loop().time()

    wall = time.perf_counter()
    times, end = run_virtual(main())
    assert time.perf_counter() - wall < 1.0
    assert times == [3600.0 * i for i in range(1, 50)]
    assert end == pytest.approx(49 * 3600.0 + 2.5)


def test_virtual_clock_reports_a_deadlock_instead_of_hanging():
    async def stuck():
        await asyncio.Event().wait()

    with pytest.raises(SimulationDeadlock):
        run_virtual(stuck())


# --------------------------------------------------------------------------------------------- profiles

def test_shipped_profiles_and_links_name_their_sources():
    assert set(PROFILES) >= {"nrf52840", "esp32", "esp32c3", "cortex-m7"}
    assert set(LINKS) == {"uart115200", "uart921600", "ble1m", "ble2m"}
    for p in PROFILES.values():
        assert p.source and p.clock_mhz > 0 and p.train_ram <= p.sram and p.links[0] in LINKS
    for link in LINKS.values():
        assert link.source
    # 8N1 UART: 10 bits a byte; goodput is the measured 95% framing efficiency of 1 KB frames
    uart = LINKS["uart115200"]
    assert uart.goodput == pytest.approx(11520 * 0.95)
    assert uart.seconds(10_080) == pytest.approx(0.002 + 10_080 / (11520 * 0.95) + 10 * 0.001)
    assert LINKS["ble2m"].seconds(50_000) < LINKS["ble1m"].seconds(50_000) < uart.seconds(50_000)


def test_task_work_follows_the_kernels_mac_counts_and_the_spec():
    model = reference_model("digits_mlp").build(0)
    table = LayerTable(model)
    macs = [table.macs(i) for i in range(len(model.layers))]
    full = task_work(model, UpdateSpec.full(model))
    assert full.forward_macs == sum(macs)
    assert full.backward_weight_macs == sum(macs)
    assert full.backward_input_macs == sum(macs) - macs[1]  # nothing below the first dense layer
    last = UpdateSpec.of(model, {5: UpdateSpec.full(model).layers[5]})
    top = task_work(model, last)
    assert top.backward_input_macs == 0 and top.backward_weight_macs == macs[5]
    assert top.instructions < full.instructions
    # compute time scales with clock and the core's factors
    m4, m7 = PROFILES["nrf52840"], PROFILES["cortex-m7"]
    assert m4.seconds_for(full.instructions) == pytest.approx(full.instructions * 1.25 / 64e6)
    assert m7.seconds_for(full.instructions) < m4.seconds_for(full.instructions)
    soft = task_work(model, UpdateSpec.full(model), isa="rv32imc")  # ESP32-C3: measured soft float
    # (the RV32 data has no ops section yet: its MAC kernels only, against the whole M4F step)
    assert soft.macs == full.macs and soft.instructions > 20 * full.instructions
    assert PROFILES["esp32c3"].seconds_for(soft.instructions) > m4.seconds_for(full.instructions)


def test_shared_trainers_give_the_bits_of_a_board_with_its_own_model():
    from ftte.aggregation import ParameterIndex, flat_parameters, load_flat_parameters
    from ftte.model import LayerUpdate
    from ftte.sim.board import Job, Trainers
    from ftte.train import Trainer

    reference = reference_model("accel_cnn1d")
    model, data = reference.build(0), reference.data()
    spec = UpdateSpec.of(model, {len(model.layers) - 1: LayerUpdate("full"),
                                 len(model.layers) - 3: LayerUpdate("channels", (1, 4, 9))})
    trainers = Trainers(model, data.x_train, data.y_train)
    rng = np.random.default_rng(0)
    for spec_, batch, momentum in ((spec, 2, 0.9), (UpdateSpec.full(model), 1, 0.0), (spec, 1, 0.0)):
        index = ParameterIndex.of(model).indices(spec_)
        base = flat_parameters(model) + rng.normal(0, 0.01, model.parameter_count()).astype(np.float32)
        values = base[index] + rng.normal(0, 0.01, len(index)).astype(np.float32)
        batches = rng.integers(0, len(data.y_train), (5, batch))
        got = trainers.train(Job(base, index, values, spec_, batches, 0.03, momentum, batch))
        own = model.copy()  # the slow way: the whole vector into a model, train, export, subtract
        flat = base.copy()
        flat[index] = values
        load_flat_parameters(own, flat)
        trainer = Trainer(own, spec_, batch, momentum > 0)
        losses = [trainer.step(data.x_train[b], data.y_train[b], 0.03, momentum) for b in batches]
        after = trainer.loss(data.x_train[batches[-1]], data.y_train[batches[-1]])
        trainer.export()
        assert np.array_equal(got.delta, flat_parameters(own)[index] - values)
        assert got.loss_before == losses[0] and got.samples == 5 * batch
        assert got.loss_after == after and after != losses[-1]


def test_batches_drawn_ahead_are_the_batches_drawn_one_by_one():
    from ftte.sim.board import LocalBackend, SimulatedBoard

    for n, size, steps in ((16, 1, 10), (17, 4, 3), (3, 8, 5), (40, 7, 11)):
        shard = np.arange(100, 100 + n)
        board = SimulatedBoard("b", PROFILES["nrf52840"], shard, LocalBackend(None), seed=5)
        rng, order, cursor, want = np.random.default_rng([5, 1]), None, n, []
        for _ in range(steps * 6):  # one at a time: a new permutation when the pass cannot fill a batch
            if order is None or cursor + size > len(order):
                order, cursor = rng.permutation(n), 0
            take = min(size, n)
            want.append(shard[order[cursor:cursor + take]])
            cursor += take
        got = np.concatenate([board._next_batches(size, steps) for _ in range(6)])
        assert np.array_equal(got, np.stack(want))


# --------------------------------------------------------------------------------------------- behaviour

def test_stragglers_are_seeded_and_take_the_fraction():
    slow = Slowdown.parse("uniform:2:10")
    a = straggler_factors(100, 0.5, slow, seed=3)
    assert np.array_equal(a, straggler_factors(100, 0.5, slow, seed=3))
    assert not np.array_equal(a, straggler_factors(100, 0.5, slow, seed=4))
    assert np.sum(a > 1) == 50 and a[a > 1].min() >= 2 and a.max() <= 10
    assert np.all(straggler_factors(10, 0.0, slow, 0) == 1)
    assert Slowdown.parse("const:4").draw(np.random.default_rng(0), 3).tolist() == [4, 4, 4]
    assert np.all(Slowdown.parse("lognormal:1:0.5").draw(np.random.default_rng(0), 50) > 1)
    for bad in ("uniform:2", "gamma:1:2", "const:0.5", "uniform:a:b"):
        with pytest.raises(ValueError):
            Slowdown.parse(bad)


def test_fedscale_style_traces_parse_and_repeat(tmp_path):
    raw = {"7": {"active": [10, 50], "inactive": [20, 60], "finish_time": 100, "model": "Pixel"},
           "3": {"active": [0], "inactive": [30], "finish_time": 40}}
    path = tmp_path / "traces.json"
    path.write_text(json.dumps(raw))
    traces = load_traces(path)
    with open(tmp_path / "traces.pkl", "wb") as handle:  # FedScale ships them pickled
        pickle.dump(raw, handle)
    assert {k: (v.active, v.inactive) for k, v in load_traces(tmp_path / "traces.pkl").items()} == \
        {k: (v.active, v.inactive) for k, v in traces.items()}
    t = traces["7"]
    assert [t.is_up(x) for x in (5, 10, 15, 20, 55, 115, 165)] == [False, True, True, False, True, True, False]
    assert t.next_up(25) == 50 and t.next_up(65) == 110 and t.up_until(12) == 20 and t.up_until(155) == 160
    assert t.uptime() == pytest.approx(0.2)
    assert [a.name for a in assign_traces(traces, 3)] == [traces["3"].name, traces["7"].name, traces["3"].name]
    with pytest.raises(ValueError, match="active"):
        parse_traces({"1": {"active": [1, 2], "inactive": [3]}})
    with pytest.raises(ValueError, match="ordered"):
        parse_traces({"1": {"active": [5], "inactive": [1], "finish_time": 10}})
    up = synthetic_traces(20, 0.25, 100.0, seed=1)
    assert all(a.uptime() == pytest.approx(0.25) for a in up)


def test_next_interval_lands_on_the_next_state_despite_rounding():
    trace = Availability([0.1], [0.3], 0.7)
    for cycle in range(200):
        start, end = trace.next_interval(cycle * 0.7 + 0.1)  # may round to just below the start
        assert start == pytest.approx(cycle * 0.7 + 0.1) and end == pytest.approx(cycle * 0.7 + 0.3)
        after = trace.next_interval(end)  # at the end (or a rounding short of it): the next period
        assert after[0] == pytest.approx((cycle + 1) * 0.7 + 0.1)
    assert Availability().next_interval(5.0) == (5.0, math.inf)


def test_fedavg_with_boards_that_come_and_go_finishes_its_rounds():
    # a board waking exactly at the start of its up period once spun forever on rounding
    result = Fleet.build(TINY.replace(uptime=0.3, period=200.0)).run_arm(Arm("fedavg", "full"))
    assert result.versions == TINY.rounds and result.reason == "max_versions"


def test_a_board_that_goes_down_mid_task_restarts_it_when_it_is_back():
    fleet = Fleet.build(TINY.replace(boards=4, stragglers=0.0))
    boards = fleet.boards(fleet.backend(), check_ram=True)
    board = boards[0]
    board.availability = Availability([0.0, 100.0], [0.5, 200.0], 1000.0)

    async def go():
        from ftte.coordinator import Hyper, Task
        from ftte.aggregation import ParameterIndex, flat_parameters
        await board.provision(flat_parameters(fleet.model))
        spec = fleet.spec_for(Arm("ftte"))[0]
        values = flat_parameters(fleet.model)[ParameterIndex.of(fleet.model).indices(spec)]
        result = await board.train(Task(1, 0, spec, values, Hyper(0.02, 5, 1)))
        return result, asyncio.get_running_loop().time()

    result, end = run_virtual(go())
    assert board.restarts >= 1 and end > 100.0  # waited for the next up period, then did it all again
    assert result.delta.shape == result.delta.shape and np.all(np.isfinite(result.delta))


# --------------------------------------------------------------------------------------------- runs

def _fingerprint(result):
    return [(e["event"], e.get("board"), e.get("version"), e.get("time"), e.get("accuracy"), e.get("loss_after"))
            for e in result.events]


def test_same_seed_same_run_bit_for_bit_and_another_seed_differs():
    a = Fleet.build(TINY).run_arm(Arm("ftte"))
    b = Fleet.build(TINY).run_arm(Arm("ftte"))
    assert a.accepted == TINY.updates and _fingerprint(a) == _fingerprint(b)
    assert a.curve == b.curve and a.sim_seconds == b.sim_seconds
    c = Fleet.build(TINY.replace(seed=1)).run_arm(Arm("ftte"))
    assert _fingerprint(c) != _fingerprint(a)


def test_ftte_reaches_the_target_in_less_simulated_time_than_fedavg():
    config = TINY.replace(boards=20, updates=400, rounds=12, stragglers=0.5, slowdown="uniform:4:10",
                          arms=(Arm("ftte"), Arm("fedavg", "full")), fedavg_fraction=0.25)
    fleet = Fleet.build(config)
    ftte, fedavg = fleet.run_all()
    assert ftte.arena_bytes <= fleet.budget < fedavg.arena_bytes  # FTTE fits the boards, full backprop does not
    assert ftte.payload_per_update < fedavg.payload_per_update
    target = auto_target([ftte, fedavg])
    assert fedavg.time_to(target) is not None and ftte.time_to(target) is not None
    assert ftte.time_to(target) < 0.5 * fedavg.time_to(target)


def test_fedavg_waiting_boards_ask_again_once_per_round_not_once_per_update(monkeypatch):
    from ftte.aggregation import FedAvg

    calls = []
    assign = FedAvg.assign
    monkeypatch.setattr(FedAvg, "assign", lambda self, board: calls.append(board) or assign(self, board))
    boards, rounds = 40, 4
    result = Fleet.build(TINY.replace(boards=boards, rounds=rounds, fedavg_fraction=0.1)).run_arm(Arm("fedavg", "full"))
    assert result.versions == rounds and result.accepted == rounds * 4
    # each round: every board asks once when it opens, each cohort member once more after its
    # update; waking every waiting board on every update would be rounds x cohort x boards
    assert len(calls) <= (rounds + 1) * (boards + 4)


def test_a_new_fedavg_round_wakes_its_cohort_not_every_waiting_board(monkeypatch):
    from ftte.coordinator import Coordinator

    parks = []
    wait = Coordinator._wait
    monkeypatch.setattr(Coordinator, "_wait", lambda self, board, w: parks.append(board) or wait(self, board, w))
    boards, rounds, cohort = 40, 4, 4
    result = Fleet.build(TINY.replace(boards=boards, rounds=rounds, fedavg_fraction=0.1)).run_arm(Arm("fedavg", "full"))
    assert result.versions == rounds and result.accepted == rounds * cohort
    # every board parks once at the start and each cohort member once after its update; a
    # board left out of a round stays parked (asked for, not woken): no rounds x boards
    assert len(parks) <= boards + rounds * cohort


def test_importance_arm_trains_a_w_star_chosen_by_importance_within_the_budget():
    fleet = Fleet.build(TINY)
    spec, label, memory = fleet.spec_for(Arm("ftte", "importance"))
    assert memory.total <= fleet.budget and label != fleet.spec_for(Arm("ftte"))[1]
    result = fleet.run_arm(Arm("ftte", "importance"))
    assert result.accepted == TINY.updates and result.spec_label == label


def test_dropout_drops_boards_through_the_coordinator_and_the_run_goes_on():
    result = Fleet.build(TINY.replace(dropout=0.05, updates=200)).run_arm(Arm("fedbuff", "auto"))
    assert result.dropped > 0
    assert any(e["event"] == "drop" and "dropped out" in e["reason"] for e in result.events)
    assert result.accepted > 0 and math.isfinite(result.final_accuracy)


def test_availability_slows_the_run_down():
    always = Fleet.build(TINY).run_arm(Arm("ftte"))
    sometimes = Fleet.build(TINY.replace(uptime=0.3, period=200.0)).run_arm(Arm("ftte"))
    assert sometimes.sim_seconds > always.sim_seconds


def test_sim_config_toml_keys_and_errors():
    config = parse_sim_config({"sim": {"model": "mnist1d_cnn", "boards": 7, "ram": "24KB",
                                       "mix": {"nrf52840": 1, "esp32c3": 1},
                                       "arms": [{"strategy": "ftte"}, {"strategy": "fedavg", "spec": "full"}]}})
    assert config.boards == 7 and config.ram == 24 * 1024 and config.mix == (("nrf52840", 1.0), ("esp32c3", 1.0))
    assert [a.strategy for a in config.arms] == ["ftte", "fedavg"]
    with pytest.raises(ValueError, match="did you mean 'boards'"):
        parse_sim_config({"bords": 3})
    assert load_model("mnist1d_cnn")[1] == "mnist1d"


def test_ftte_simulate_command_writes_table_plots_and_report(tmp_path, capsys):
    out = tmp_path / "sim"
    code = ftte_main(["simulate", "--boards", "10", "--updates", "60", "--rounds", "3", "--buffer-size", "4",
                      "--local-steps", "3", "--no-progress", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "to target" in printed and "fedavg" in printed and "ftte" in printed
    for name in ("accuracy.png", "bytes.png", "memory.png", "report.md", "results.json"):
        assert (out / name).stat().st_size > 0
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "| ftte |" in report and "![accuracy](accuracy.png)" in report
    data = json.loads((out / "results.json").read_text())
    assert [a["arm"] for a in data["arms"]] == ["ftte", "fedbuff", "fedasync", "fedavg"]


def test_reselect_every_rotates_the_importance_w_star_deterministically():
    """SimConfig.reselect_every: the FTTE arm's w* is chosen again every N versions at the current
    model (the coordinator's periodic reselection, as `ftte run` does it); each switch costs a
    full provisioning of every board, counted in bytes_down; the run stays bit for bit the same."""
    config = TINY.replace(reselect_every=5)
    a = Fleet.build(config).run_arm(Arm("ftte", "importance"))
    b = Fleet.build(config).run_arm(Arm("ftte", "importance"))
    assert a.accepted == config.updates and _fingerprint(a) == _fingerprint(b) and a.curve == b.curve
    switches = [e for e in a.events if e["event"] == "reselect"]
    assert switches and all(e["version"] % 5 == 0 for e in switches)
    provisions = [e for e in a.events if e["event"] == "provision"]
    assert provisions and all(e["why"] == "reselection" for e in provisions)
    fixed = Fleet.build(TINY).run_arm(Arm("ftte", "importance"))
    assert not any(e["event"] == "reselect" for e in fixed.events)
    assert a.bytes_down > fixed.bytes_down
    assert Fleet.build(config).selector(Arm("fedbuff", "full")) is None  # full-model arms never rotate


def test_paper_benchmark_plots_every_setting_from_its_rows(tmp_path):
    from ftte.bench import paper_plots
    from ftte.bench.paper import PAPER

    rows = []
    for data, boards, stragglers, seed in [(d, b, s, k) for d in ("mnist1d", "accelerometer") for b in (100, 500)
                                           for s in (0.5, 0.9) for k in (0, 1)]:
        curve = [(1.0 + t, 0.7 + 0.01 * t) for t in range(10)]
        rows.append({"setting": {"data": data, "boards": boards, "stragglers": stragglers, "seed": seed},
                     "target": 0.75, "curves": {"ftte": curve, "fedbuff": curve, "fedavg": [(1.0, 0.7), (90.0, 0.8)]},
                     "time_reduction": None if seed else 0.9, "memory_reduction": 0.82, "payload_reduction": 0.84,
                     "acc_gap": 0.004 * (seed - 0.5)})
    paths = [paper_plots.curves(rows, tmp_path), paper_plots.summary(rows, PAPER, tmp_path)]
    assert [p.name for p in paths] == ["paper_curves.png", "paper_summary.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000 for p in paths)
