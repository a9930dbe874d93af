"""Choosing w* again mid-run: a board that joins with less RAM than the arena makes the
coordinator select a smaller w*, fold what is buffered, provision every board again, and keep
only the still-trained part of updates of the old w* that arrive late. Through `ftte run`
(in-process boards, the real C kernels and planner) and at the coordinator level."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from ftte.aggregation import FTTE, FTTEConfig, ParameterIndex, flat_parameters
from ftte.coordinator import BoardInfo, Coordinator, Hyper, Result, StopRule, Task, Trainable
from ftte.coordinator.session import open_run
from ftte.fleet import parse_config
from ftte.fleet.config import ConfigError
from ftte.model import LayerUpdate, UpdateSpec
from ftte.store import RunStore
from ftte.train import plan_memory
from ftte.zoo import reference_model


def config(tmp_path: Path, boards: list[dict], **sections):
    raw = {"model": {"name": "digits_mlp"}, "boards": boards, "strategy": {"name": "ftte", "buffer_size": 4},
           "output": {"dir": str(tmp_path / "run"), "progress": False}}
    raw.update(sections)
    return parse_config(raw)


def read_events(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]


def events(tmp_path: Path, kind: str) -> list[dict]:
    return [e for e in read_events(tmp_path) if e["event"] == kind]


def assert_provisioned_before_the_new_w_star(log: list[dict], reselect: dict, old_boards: list[str]) -> None:
    """Each board that trained the old w* is provisioned again before its first task of the new
    one: its updates are of the old size up to that provision event and of the new size after
    it. (Which boards get there before the run stops depends on timing, so at least one must.)"""
    provisioned = {e["board"]: i for i, e in enumerate(log) if e["event"] == "provision"}
    assert provisioned and set(provisioned) <= set(old_boards)
    assert all(e["generation"] == reselect["generation"] for e in log if e["event"] == "provision")
    sizes = {True: 4 * reselect["trainable"], False: 4 * reselect["was_trainable"]}
    for i, e in enumerate(log):
        if e["event"] == "update" and e["board"] in old_boards:
            assert e["bytes_down"] == sizes[i > provisioned.get(e["board"], len(log))], e
    assert any(e["event"] == "update" and i > provisioned.get(e["board"], len(log)) for i, e in enumerate(log))


def test_a_board_joining_with_less_ram_makes_the_fleet_train_a_smaller_w_star(tmp_path):
    """Starting point: pretrained on the host's 10% share. Four 64 KB boards train the w* sized
    for them; a 16 KB board joins at version 3 and the run goes on with a w* that fits it."""
    cfg = config(tmp_path, cfg_boards(), stop={"max_versions": 10})
    fleet = open_run(cfg)
    first = fleet.selection
    summary = asyncio.run(fleet.run())
    assert summary.reason == "max_versions" and not summary.dropped and summary.reselections == 1

    (reselect,) = events(tmp_path, "reselect")
    assert reselect["cause"] == "board inproc-04 joined with 16,384 B" and reselect["version"] >= 3
    assert reselect["arena_bytes"] <= int(16 * 1024 * 0.9) < first.memory.total == reselect["was_arena_bytes"]
    store = RunStore(tmp_path / "run" / "run.sqlite")
    old, new = store.selections()
    updates = store.updates()
    after = [v for v, _, _ in store.versions() if v > reselect["version"]]
    frozen = ~ParameterIndex.of(fleet.model).mask(UpdateSpec.from_json(new.spec))
    base = store.params(reselect["version"])
    drift = max(float(np.abs(store.params(v)[frozen] - base[frozen]).max()) for v in after)
    store.close()
    assert (old.generation, old.cause, new.generation) == (0, "start", 1) and new.arena == reselect["arena_bytes"]
    assert after and drift == 0.0  # outside the new w*, the model stays what the boards were provisioned with

    assert_provisioned_before_the_new_w_star(read_events(tmp_path), reselect, [f"inproc-{i:02d}" for i in range(4)])
    new_size = 4 * reselect["trainable"]
    late = [e for e in events(tmp_path, "update") if e["board"] == "inproc-04"]
    assert late and all(e["accepted"] and e["bytes_down"] == new_size for e in late)
    assert len(updates) == summary.accepted and all(u.update.indices.size <= reselect["was_trainable"] for u in updates)
    assert summary.accuracy > fleet.start["accuracy"] - 0.02

    resumed = open_run(config(tmp_path, cfg_boards(), stop={"max_versions": 12}), resume=True)
    assert resumed.selection.label == new.label and resumed.coordinator.generation == 1
    again = asyncio.run(resumed.run())
    assert again.reason == "max_versions" and again.reselections == 0 and not again.dropped


def cfg_boards() -> list[dict]:
    return [{"inprocess": 4, "ram": "64KB"}, {"inprocess": 1, "ram": "16KB", "join_at_version": 3}]


def test_an_explicit_spec_that_no_longer_fits_refuses_the_board_with_the_reason(tmp_path):
    cfg = config(tmp_path, [{"inprocess": 2, "ram": "128KB"}, {"inprocess": 1, "ram": "4KB", "join_at_version": 1}],
                 budget={"spec": "full"}, stop={"max_versions": 3})
    summary = asyncio.run(open_run(cfg).run())
    assert summary.reason == "max_versions" and summary.reselections == 0
    assert "RAM budget 4,096 B < the" in summary.dropped["inproc-02"]
    assert "no smaller w* fits: update spec 'full' needs" in summary.dropped["inproc-02"]


def test_join_at_version_is_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"join_at_version: expected an int >= 0, got -1"):
        config(tmp_path, [{"inprocess": 1, "join_at_version": -1}], stop={"max_versions": 3})


# ------------------------------------------------------------------------ the coordinator alone

class Scripted:
    """Answers every task with +1e-3 on each value after `seconds`; counts its provisions."""

    def __init__(self, board_id: str, ram: int, seconds: float = 0.001):
        self.info = BoardInfo(board_id, ram, "scripted")
        self.seconds, self.provisioned = seconds, []

    async def provision(self, params):
        self.provisioned.append(np.array(params))

    async def train(self, task: Task) -> Result:
        await asyncio.sleep(self.seconds)
        delta = np.full(task.values.size, 1e-3, np.float32)
        return Result(task.task_id, task.version, delta, 8, 1.0, 0.9, 1e-6)

    async def close(self):
        pass


class HalfSelector:
    """Selects the last layer's bias only, and records what it observes."""

    def __init__(self, model):
        self.model, self.observed = model, []
        self.spec = UpdateSpec.of(model, {len(model.layers) - 1: LayerUpdate("bias")})

    def reselect(self, ram_budgets, current):
        if current.spec == self.spec:
            return None
        memory = plan_memory(self.model, self.spec, 8, False)
        return Trainable(self.spec, ParameterIndex.of(self.model).indices(self.spec), memory.total, "bias", min(ram_budgets))

    def tier(self, ram_budget, base):
        return base

    def observe(self, trained, delta):
        self.observed.append((trained.label, delta.size))


def test_late_updates_of_the_old_w_star_keep_only_the_new_w_star(tmp_path):
    model = reference_model("digits_mlp").build(0)
    full = UpdateSpec.full(model)
    index = ParameterIndex.of(model)
    selector = HalfSelector(model)
    strategy = FTTE(flat_parameters(model), FTTEConfig(buffer_size=1))
    fast, slow = Scripted("fast", 1 << 20, seconds=0.02), Scripted("slow", 1 << 20, seconds=0.1)
    small = Scripted("small", 8192, seconds=0.02)
    store = RunStore(tmp_path / "run.sqlite")
    log: list[dict] = []
    trainable = Trainable(full, index.indices(full), plan_memory(model, full, 8, False).total, "full")
    coordinator = Coordinator(strategy, trainable, Hyper(batch=8), stop=StopRule(max_versions=20), selector=selector,
                              store=store, log=log.append)

    async def main():
        store.create({}, strategy.state())
        return await coordinator.run([fast, slow], later=[(2, small)])

    summary = asyncio.run(main())
    assert summary.reason == "max_versions" and summary.reselections == 1 and not summary.dropped
    switch = next(e for e in log if e["event"] == "reselect")
    bias = index.indices(selector.spec)
    slow_updates = [s.update for s in store.updates() if s.update.board_id == "slow"]
    assert slow_updates[0].base_version < switch["version"]  # trained the full model, arrived after the switch
    assert np.array_equal(slow_updates[0].indices, bias)
    assert all(np.array_equal(u.indices, bias) for u in slow_updates)
    assert len(fast.provisioned) == 2 and len(slow.provisioned) == 2 and len(small.provisioned) == 1
    outside = ~index.mask(selector.spec)  # frozen from the switch on: every board holds the same values
    for got in (fast.provisioned[1], slow.provisioned[1], small.provisioned[0]):
        assert np.array_equal(got[outside], strategy.params[outside])
    assert not np.array_equal(fast.provisioned[0][outside], strategy.params[outside])  # the old w* did move them
    assert ("full", index.size) in selector.observed and ("bias", bias.size) in selector.observed
    store.close()


def test_ftte_run_says_when_w_star_was_chosen_again(tmp_path, capsys):
    from ftte.cli import main

    path = tmp_path / "fleet.toml"
    path.write_text(f"""
[model]
name = "digits_mlp"
[strategy]
buffer_size = 3
[[boards]]
inprocess = 3
ram = "64KB"
[[boards]]
inprocess = 1
ram = "16KB"
join_at_version = 2
[stop]
max_versions = 5
[output]
dir = "{tmp_path / 'run'}"
progress = false
""")
    assert main(["run", str(path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "w* chosen again 1 time(s) as the fleet changed; now top 1 full" in out


def test_with_grow_w_star_grows_back_when_the_weakest_board_leaves(tmp_path):
    """The 16 KB board fails at its fourth task (fault injection): with [budget] grow = 0.5 the
    three 64 KB boards left get the larger w* that fits them."""
    cfg = config(tmp_path, [{"inprocess": 3, "ram": "64KB"}, {"inprocess": 1, "ram": "16KB", "fail_after": 3}],
                 budget={"grow": 0.5}, stop={"max_versions": 12})
    fleet = open_run(cfg)
    small = fleet.selection
    summary = asyncio.run(fleet.run())
    assert summary.reason == "max_versions" and set(summary.dropped) == {"inproc-03"} and summary.reselections == 1
    (reselect,) = events(tmp_path, "reselect")
    assert reselect["cause"] == "board inproc-03 left" and reselect["was_arena_bytes"] == small.memory.total
    assert small.memory.total < reselect["arena_bytes"] <= int(64 * 1024 * 0.9)
    assert sorted(p["board"] for p in events(tmp_path, "provision")) == ["inproc-00", "inproc-01", "inproc-02"]


def test_without_grow_w_star_stays_when_the_weakest_board_leaves(tmp_path):
    cfg = config(tmp_path, [{"inprocess": 3, "ram": "64KB"}, {"inprocess": 1, "ram": "16KB", "fail_after": 3}],
                 stop={"max_versions": 8})
    summary = asyncio.run(open_run(cfg).run())
    assert set(summary.dropped) == {"inproc-03"} and summary.reselections == 0 and not events(tmp_path, "provision")


# ------------------------------------------------------------------------ nested tiers

def test_nested_tiers_boards_with_more_ram_train_a_superset_and_smaller_ones_are_refreshed(tmp_path):
    """Two 16 KB and two 64 KB boards, [budget] tiers = true: w* is sized for 16 KB, the 64 KB
    boards train the larger superset their RAM fits, and every 3 versions a 16 KB board is
    provisioned again before its next task (its frozen copy of what the 64 KB boards train moved)."""
    cfg = config(tmp_path, [{"inprocess": 2, "ram": "16KB"}, {"inprocess": 2, "ram": "64KB"}],
                 budget={"tiers": True, "refresh_every": 3}, stop={"max_versions": 12})
    fleet = open_run(cfg)
    base = fleet.selection
    summary = asyncio.run(fleet.run())
    assert summary.reason == "max_versions" and not summary.dropped and summary.reselections == 0

    joins = {e["board"]: e for e in events(tmp_path, "join")}
    small, large = ["inproc-00", "inproc-01"], ["inproc-02", "inproc-03"]
    assert all(joins[b]["trainable"] == base.memory.trainable_params for b in small)
    assert all(joins[b]["trainable"] > base.memory.trainable_params for b in large)
    for update in events(tmp_path, "update"):
        assert update["bytes_down"] == 4 * joins[update["board"]]["trainable"] and update["accepted"]
    refreshes = [e for e in events(tmp_path, "provision")]
    assert refreshes and {e["board"] for e in refreshes} <= set(small) and all(e["why"] == "refresh" for e in refreshes)
    for board in small:
        versions = [0] + [e["version"] for e in refreshes if e["board"] == board]
        assert all(b - a >= 3 for a, b in zip(versions, versions[1:]))


def test_a_tier_is_a_superset_of_w_star_that_fits_the_boards_own_ram():
    from ftte.coordinator.trainable import FleetSelector, Trainable
    from ftte.fleet.select import choose_spec, usable_budget

    model = reference_model("digits_mlp").build(0)
    selector = FleetSelector(model, 0.1, 16, False, tiers=True)
    base = Trainable.of(model, choose_spec(model, usable_budget([16 * 1024], 0.1), 16, False))
    for ram in (24 * 1024, 40 * 1024, 64 * 1024):
        tier = selector.tier(ram, base)
        assert set(base.indices) < set(tier.indices) and tier.arena_bytes <= tier.budget == int(ram * 0.9)
        assert tier.arena_bytes == plan_memory(model, tier.spec, 16, False).total
    assert selector.tier(16 * 1024, base) is base
    assert FleetSelector(model, 0.1, 16, False).tier(64 * 1024, base) is base  # tiers off


# ------------------------------------------------------------------------ periodic reselection

def test_reselect_every_rotates_w_star_and_only_the_current_w_star_moves(tmp_path):
    """[budget] reselect_every = 4 with spec = "importance": every 4 versions the importance is
    measured again at the current global model and w* chosen again under the same budget. The
    trained set changes over the run, every board is provisioned again after a change, and
    between two changes the parameters outside the w* of that stretch never move."""
    cfg = config(tmp_path, [{"inprocess": 4, "ram": "16KB"}], budget={"spec": "importance", "reselect_every": 4},
                 stop={"max_versions": 24})
    fleet = open_run(cfg)
    summary = asyncio.run(fleet.run())
    assert summary.reason == "max_versions" and not summary.dropped and summary.reselections >= 1
    switches = events(tmp_path, "reselect")
    assert len(switches) == summary.reselections
    assert all(e["cause"].startswith("every 4 versions") and e["version"] % 4 == 0 for e in switches)
    assert all(e["arena_bytes"] <= e["budget"] == int(16 * 1024 * 0.9) for e in switches)

    store = RunStore(tmp_path / "run" / "run.sqlite")
    selections = store.selections()
    index = ParameterIndex.of(fleet.model)
    specs = [UpdateSpec.from_json(s.spec) for s in selections]
    assert len({tuple(index.indices(s)) for s in specs}) >= 2  # the trained set did change
    starts = [0] + [s.version for s in selections[1:]]
    ends = starts[1:] + [summary.version]
    versions = {v for v, _, _ in store.versions()}
    for spec, start, end in zip(specs, starts, ends):
        frozen = ~index.mask(spec)
        base = store.params(start)
        for v in range(start + 1, end + 1):
            if v in versions:
                assert np.array_equal(store.params(v)[frozen], base[frozen]), (spec.describe(fleet.model), v)
    for stored in store.updates():  # every folded update lies inside the w* of the stretch it was folded in
        if stored.folded_into is not None:
            stretch = max(i for i, s in enumerate(starts) if s < stored.folded_into)
            assert np.isin(stored.update.indices, index.indices(specs[stretch])).all()
    store.close()
    provisions = events(tmp_path, "provision")
    assert {e["generation"] for e in provisions} == set(range(1, len(selections)))
    assert all(e["why"] == "reselection" for e in provisions)


def test_reselect_every_is_parsed_and_needs_a_chosen_w_star(tmp_path):
    boards = [{"inprocess": 2}]
    assert config(tmp_path, boards, budget={"spec": "importance", "reselect_every": 50}).budget.reselect_every == 50
    assert config(tmp_path, boards).budget.reselect_every is None
    with pytest.raises(ConfigError, match=r"reselect_every: expected an int >= 1, got 0"):
        config(tmp_path, boards, budget={"reselect_every": 0})
    with pytest.raises(ConfigError, match=r"reselect_every: needs spec = 'auto' or 'importance'"):
        config(tmp_path, boards, budget={"spec": "full", "reselect_every": 5})
