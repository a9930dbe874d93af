"""Federated runs over the firmware itself: native boards on pseudo-terminals, and a fleet that
mixes native and QEMU boards of different RAM budgets, all through the real serial link."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

from ftte.aggregation import FedAvg, FedAvgConfig, ParameterIndex, flat_parameters
from ftte.coordinator import Coordinator, Evaluator, Hyper, StopRule, Trainable
from ftte.coordinator.session import open_run
from ftte.fleet import parse_config
from ftte.fleet.select import choose_spec, usable_budget
from ftte.link.native import EmulatedBoard
from ftte.zoo import reference_model
from qemu_boards import pio_image, qemu_board
from test_reselection import assert_provisioned_before_the_new_w_star


def test_eight_native_boards_train_the_digits_mlp_to_90_percent(tmp_path):
    """Starting point: scratch (random init, about 11% test accuracy); 64 KB boards fit full
    backprop; IID shards. Every update crosses a pty as wire frames to a native board process."""
    cfg = parse_config({
        "model": {"name": "digits_mlp"}, "start": {"mode": "scratch"},
        "boards": [{"emulated": 8, "ram": "64KB"}], "strategy": {"name": "ftte", "buffer_size": 10},
        "stop": {"max_versions": 150, "target_accuracy": 0.9},
        "output": {"dir": str(tmp_path / "run"), "progress": False}})
    fleet = open_run(cfg, False)
    started = time.perf_counter()
    summary = asyncio.run(fleet.run())
    assert fleet.start["mode"] == "scratch" and fleet.start["accuracy"] < 0.2
    assert summary.reason == "target_accuracy" and summary.accuracy >= 0.9, summary
    assert summary.refused == 0 and not summary.dropped
    print(f"\n8 native boards, FTTE, from scratch ({fleet.start['accuracy']:.1%}): {summary.accuracy:.1%} at "
          f"version {summary.version} after {summary.accepted} updates, {time.perf_counter() - started:.1f} s")


@pytest.mark.slow
def test_a_mixed_fleet_trains_the_update_that_fits_its_smallest_board():
    """Two native boards (16 KB and 64 KB) and a Cortex-M4F image in QEMU (64 KB, from its
    HELLO): w* is chosen for 16 KB, and every board trains exactly that subset. FedAvg with the
    whole fleet in each round, so that the slow QEMU board (about 1 s a task) takes part in every
    version rather than being outrun by the native ones."""
    reference = reference_model("digits_mlp")
    model, data = reference.build(0), reference.data()  # the QEMU image holds this model's layout
    shards = [np.arange(i, 600, 3) for i in range(3)]
    natives = [EmulatedBoard(f"native-{ram // 1024}k", model, data.x_train[s], data.y_train[s], ram, seed=i)
               for i, (ram, s) in enumerate(zip((16 * 1024, 64 * 1024), shards))]
    events: list[dict] = []

    async def main():
        async with qemu_board("m4f_board", pio_image("m4f_board"), model) as qemu:
            await qemu.push_data(data.x_train[shards[2]], data.y_train[shards[2]])
            boards = natives + [qemu]
            budgets = [b.info.ram_budget for b in boards]
            assert budgets == [16 * 1024, 64 * 1024, 64 * 1024]
            hyper = Hyper(lr=0.05, local_steps=4, batch=8)
            selection = choose_spec(model, usable_budget(budgets, 0.1), hyper.batch, False)
            assert selection.memory.total <= 0.9 * 16 * 1024 < 0.9 * 64 * 1024
            index = ParameterIndex.of(model).indices(selection.spec)
            strategy = FedAvg(flat_parameters(model), FedAvgConfig(fraction=1.0, min_available=3))
            coordinator = Coordinator(strategy, Trainable(selection.spec, index, selection.memory.total),
                                      hyper, evaluate=Evaluator(model, data.x_test, data.y_test),
                                      stop=StopRule(max_versions=3), task_timeout=20.0, log=events.append)
            return selection, await coordinator.run(boards)

    selection, summary = asyncio.run(main())
    assert summary.reason.startswith("max_versions") and summary.version == 3 and not summary.dropped, summary
    updates = [e for e in events if e["event"] == "update"]
    trained = [e["board"] for e in updates]
    assert len(set(trained)) == 3 and len(trained) == 9 and {"native-16k", "native-64k"} <= set(trained), trained
    assert all(e["bytes_up"] == 4 * selection.memory.trainable_params for e in updates)


def test_a_native_board_joining_with_less_ram_reselects_and_the_firmware_is_provisioned_again(tmp_path):
    """Three 64 KB native boards train the w* sized for them; a 16 KB one joins at version 2:
    the run switches to a smaller w*, and the firmware of the first three takes a second
    PROVISION over the serial link and trains the new w*."""
    cfg = parse_config({
        "model": {"name": "digits_mlp"},
        "boards": [{"emulated": 3, "ram": "64KB"}, {"emulated": 1, "ram": "16KB", "join_at_version": 2}],
        "strategy": {"name": "ftte", "buffer_size": 3}, "stop": {"max_versions": 8},
        "output": {"dir": str(tmp_path / "run"), "progress": False}})
    fleet = open_run(cfg, False)
    summary = asyncio.run(fleet.run())
    assert summary.reason == "max_versions" and summary.reselections == 1 and not summary.dropped
    assert summary.refused == 0 and summary.accuracy > fleet.start["accuracy"] - 0.02
    events = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    (reselect,) = [e for e in events if e["event"] == "reselect"]
    assert reselect["cause"] == "board emulated-03 joined with 16,384 B" and reselect["trainable"] < reselect["was_trainable"]
    assert_provisioned_before_the_new_w_star(events, reselect, ["emulated-00", "emulated-01", "emulated-02"])
