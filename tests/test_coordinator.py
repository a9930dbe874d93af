"""The coordinator over in-process boards (the real C kernels): accuracy, every strategy end to
end, boards that fail or vanish, stalls, metrics, the CLI, and resuming after kill -9."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ftte.aggregation import FedAvg, FedAvgConfig, FTTE, FTTEConfig, ParameterIndex, flat_parameters
from ftte.cli import main
from ftte.coordinator import (
    Board, BoardInfo, Coordinator, Evaluator, Hyper, InProcessBoard, Result, StopRule, Task, Trainable,
)
from ftte.coordinator.session import open_run
from ftte.fleet import load_config, parse_config
from ftte.model import UpdateSpec
from ftte.store import RunStore
from ftte.zoo import reference_model


def config(tmp_path: Path, boards: list[dict], strategy: dict | None = None, **sections):
    raw = {"model": {"name": "digits_mlp"}, "start": {"mode": "scratch"}, "boards": boards,
           "strategy": strategy or {"name": "ftte"}, "output": {"dir": str(tmp_path / "run"), "progress": False}}
    raw.update(sections)
    return parse_config(raw)


def run(cfg, resume=False):
    fleet = open_run(cfg, resume)
    return fleet, asyncio.run(fleet.run())


def events(tmp_path: Path, kind: str | None = None) -> list[dict]:
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    return [e for e in lines if kind is None or e["event"] == kind]


def test_eight_boards_train_the_digits_mlp_from_scratch_to_90_percent(tmp_path):
    """Starting point: scratch (random init, 11% test accuracy); every parameter trains (64 KB
    boards fit full backprop at batch 16); IID shards of 90% of the training set (the host
    keeps the default 10% server share, unused from scratch)."""
    cfg = config(tmp_path, [{"inprocess": 8, "ram": "64KB"}], {"name": "ftte", "buffer_size": 10},
                 stop={"max_versions": 150, "target_accuracy": 0.9})
    start = time.perf_counter()
    fleet, summary = run(cfg)
    seconds = time.perf_counter() - start
    assert fleet.start["mode"] == "scratch" and fleet.start["accuracy"] < 0.2
    assert fleet.selection.memory.trainable_params == reference_model("digits_mlp").build(0).parameter_count()
    assert summary.reason == "target_accuracy" and summary.accuracy >= 0.9, summary
    assert summary.refused == 0 and not summary.dropped
    print(f"\n8 boards, FTTE, from scratch ({fleet.start['accuracy']:.1%}): {summary.accuracy:.1%} at version "
          f"{summary.version} after {summary.accepted} updates, {seconds:.2f} s")
    versions = events(tmp_path, "version")
    assert versions[0]["version"] == 0 and versions[-1]["accuracy"] == summary.accuracy
    assert all(e["bytes_down"] == e["bytes_up"] == 4 * 6570 for e in events(tmp_path, "update"))


@pytest.mark.parametrize("strategy", [
    {"name": "ftte", "buffer_size": 4}, {"name": "fedbuff", "buffer_size": 4},
    {"name": "fedasync", "alpha": 0.5}, {"name": "fedavg", "fraction": 0.5},
])
def test_every_strategy_runs_end_to_end(tmp_path, strategy):
    """Starting point: pretrained on the host's 10% share; 32 KB boards train the top 2 layers;
    Dirichlet(0.5) label skew."""
    cfg = config(tmp_path, [{"inprocess": 6, "ram": "32KB"}], strategy, start={"mode": "pretrained"},
                 data={"partition": "dirichlet", "alpha": 0.5}, stop={"max_versions": 30}, run={"eval_every": 5})
    fleet, summary = run(cfg)
    assert fleet.selection.label == "top 2 layers full"
    assert summary.reason == "max_versions" and summary.version == 30
    assert summary.accuracy > fleet.start["accuracy"] - 0.02  # fine-tuning does not wreck w*
    store = RunStore(tmp_path / "run" / "run.sqlite")
    assert [v for v, _, _ in store.versions()] == list(range(31))
    assert all(u.folded_into is not None for u in store.updates()[:-10])
    evaluated = [e["version"] for e in events(tmp_path, "version") if e["accuracy"] is not None]
    assert evaluated == [0, 5, 10, 15, 20, 25, 30]
    assert events(tmp_path)[0]["event"] == "start" and events(tmp_path)[-1]["event"] == "end"


@pytest.mark.parametrize("strategy", ["ftte", "fedavg"])
def test_boards_that_raise_or_vanish_are_dropped_and_the_run_finishes(tmp_path, strategy):
    cfg = config(tmp_path, [{"inprocess": 3, "delay": 0.005}, {"inprocess": 1, "fail_after": 2},
                            {"inprocess": 1, "hang_after": 1}],
                 {"name": strategy}, run={"task_timeout": 0.2}, stop={"max_versions": 20})
    fleet, summary = run(cfg)
    assert summary.reason == "max_versions" and summary.version == 20
    assert set(summary.dropped) == {"inproc-03", "inproc-04"}
    assert "injected failure on task 3" in summary.dropped["inproc-03"]
    assert "no answer within 0.2 s" in summary.dropped["inproc-04"]
    assert fleet.strategy.boards == ("inproc-00", "inproc-01", "inproc-02")
    store = RunStore(tmp_path / "run" / "run.sqlite")
    assert store.boards()["inproc-04"][0] == "dropped" and store.boards()["inproc-00"][0] == "stopped"
    assert {e["board"] for e in events(tmp_path, "drop")} == {"inproc-03", "inproc-04"}


def test_a_fleet_that_dies_stops_the_run(tmp_path):
    cfg = config(tmp_path, [{"inprocess": 2, "fail_after": 1}], stop={"max_versions": 20})
    _, summary = run(cfg)
    assert summary.reason == "no boards left" and len(summary.dropped) == 2


def test_fedavg_waiting_for_boards_that_never_come_is_a_stall(tmp_path):
    cfg = config(tmp_path, [{"inprocess": 2}], {"name": "fedavg", "min_available": 3})
    _, summary = run(cfg)
    assert summary.reason.startswith("stalled: 2 of 3 boards registered") and summary.version == 0


def test_boards_can_train_in_worker_threads(tmp_path):
    cfg = config(tmp_path, [{"inprocess": 4, "threads": True}], stop={"max_versions": 5})
    _, summary = run(cfg)
    assert summary.reason == "max_versions" and summary.accepted >= 50 and not summary.dropped


def test_wall_time_stops_the_run(tmp_path):
    cfg = config(tmp_path, [{"inprocess": 2, "delay": 0.01}], stop={"max_versions": 0, "max_seconds": 0.3})
    _, summary = run(cfg)
    assert summary.reason == "max_seconds" and 0.3 <= summary.seconds < 2


async def drive(boards: list[Board], strategy, stop: StopRule, arena_bytes: int = 0, **kwargs):
    model = reference_model("digits_mlp").build(0)
    spec = UpdateSpec.full(model)
    data = reference_model("digits_mlp").data()
    trainable = Trainable(spec, ParameterIndex.of(model).indices(spec), arena_bytes)
    coordinator = Coordinator(strategy, trainable, Hyper(batch=8), evaluate=Evaluator(model, data.x_test, data.y_test),
                              stop=stop, **kwargs)
    return await coordinator.run(boards)


class ScriptedBoard:
    """A transport-free Board: answers with a fixed delta, or misbehaves as told."""

    def __init__(self, board_id: str, mode: str = "ok"):
        self.info = BoardInfo(board_id, 1 << 20, "scripted")
        self.mode, self.closed = mode, 0

    async def provision(self, params):
        if self.mode == "deaf":
            await asyncio.sleep(3600)

    async def train(self, task: Task) -> Result:
        await asyncio.sleep(0.001)
        n = task.values.size - (self.mode == "short")
        task_id = task.task_id + (self.mode == "wrong_task")
        delta = np.full(n, 1e-3, np.float32)
        return Result(task_id, task.version, delta, 8, 1.0, 0.9, 1e-6)

    async def close(self):
        self.closed += 1


def test_any_board_implementation_works_and_misbehaving_ones_are_dropped():
    boards = [ScriptedBoard("ok1"), ScriptedBoard("ok2"), ScriptedBoard("short"), ScriptedBoard("wrong", "wrong_task"),
              ScriptedBoard("deaf", "deaf")]
    boards[2].mode = "short"
    assert all(isinstance(b, Board) for b in boards)
    model = reference_model("digits_mlp").build(0)
    strategy = FTTE(flat_parameters(model), FTTEConfig(buffer_size=2, server_lr=1.0))
    summary = asyncio.run(drive(boards, strategy, StopRule(max_versions=4), task_timeout=0.2))
    assert summary.version == 4 and set(summary.dropped) == {"short", "wrong", "deaf"}
    assert "provision failed: no answer within 0.2 s" in summary.dropped["deaf"]
    assert "answered task" in summary.dropped["short"] and "answered task" in summary.dropped["wrong"]
    assert all(b.closed >= 1 for b in boards)
    assert np.allclose(strategy.params - flat_parameters(model), 4e-3, atol=1e-6)  # 4 versions of +1e-3


def test_a_board_too_small_for_the_update_is_refused_at_join():
    model = reference_model("digits_mlp").build(0)
    data = reference_model("digits_mlp").data()
    boards = [InProcessBoard(f"b{i}", model, data.x_train[i::3], data.y_train[i::3], ram)
              for i, ram in enumerate([64 * 1024, 64 * 1024, 1024])]
    strategy = FTTE(flat_parameters(model), FTTEConfig(buffer_size=2))
    summary = asyncio.run(drive(boards, strategy, StopRule(max_versions=3), arena_bytes=40_000))
    assert summary.version == 3 and "RAM budget 1,024 B < the 40,000 B arena" in summary.dropped["b2"]
    assert strategy.boards == ("b0", "b1")


def test_in_process_board_checks_its_budget_itself():
    model = reference_model("digits_mlp").build(0)
    data = reference_model("digits_mlp").data()
    board = InProcessBoard("b", model, data.x_train[:50], data.y_train[:50], 1024)
    strategy = FedAvg(flat_parameters(model), FedAvgConfig())
    summary = asyncio.run(drive([board], strategy, StopRule(max_versions=3)))
    assert summary.reason == "no boards left" and "the board has 1,024 B" in summary.dropped["b"]


def test_cli_inprocess_and_emulated(tmp_path, capsys):
    assert main(["run", "--inprocess", "3", "--out", str(tmp_path / "q"), "--max-versions", "5",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "starting point: pretrained" in out and "stopped (max_versions) at version 5" in out
    assert main(["run", "--inprocess", "3", "--out", str(tmp_path / "q"), "--max-versions", "5"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(["run", "--inprocess", "3", "--out", str(tmp_path / "q"), "--max-versions", "8", "--resume",
                 "--no-progress"]) == 0
    assert "resumed at version 5" in capsys.readouterr().out
    assert main(["run", "--inprocess", "3", "--out", str(tmp_path / "q"), "--max-versions", "8", "--resume",
                 "--no-progress"]) == 0  # already done: no new version
    assert "stopped (max_versions) at version 8" in capsys.readouterr().out
    assert main(["run", "--inprocess", "3", "--out", str(tmp_path / "q"), "--strategy", "fedavg", "--resume"]) == 2
    assert "differs from the stored run in [strategy]" in capsys.readouterr().err
    assert main(["run", "--inprocess", "3", "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert main(["run", "--emulated", "2", "--out", str(tmp_path / "e"), "--max-versions", "3",
                 "--no-progress"]) == 0
    assert "stopped (max_versions) at version 3" in capsys.readouterr().out
    assert main(["run"]) == 2




# ------------------------------------------------------------------------------------------
# kill -9 and --resume
# ------------------------------------------------------------------------------------------

FLEET = """
[model]
name = "digits_mlp"
[start]
mode = "scratch"
[strategy]
name = "ftte"
buffer_size = 6
[[boards]]
inprocess = 4
ram = "64KB"
delay = 0.02
[stop]
max_versions = 60
[output]
dir = "run"
progress = false
"""


def poll(db: Path) -> tuple[int, int]:
    """(latest version, accepted updates not yet folded), read while the writer runs (WAL)."""
    with sqlite3.connect(db, timeout=5) as con:
        version = con.execute("SELECT MAX(version) FROM versions").fetchone()[0]
        pending = con.execute("SELECT COUNT(*) FROM updates WHERE folded_into IS NULL").fetchone()[0]
    return version or 0, pending


def test_resume_after_kill_9_loses_no_accepted_update(tmp_path):
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET)
    db = tmp_path / "run" / "run.sqlite"
    process = subprocess.Popen([sys.executable, "-c", "import sys; from ftte.cli import main; sys.exit(main())",
                                "run", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:  # kill once versions exist and updates sit accepted but not aggregated
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the run never got going"
            if db.exists():
                try:
                    version, pending = poll(db)
                except sqlite3.OperationalError:  # schema not created yet
                    version = pending = 0
                if version >= 3 and pending >= 2:
                    break
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL

    store = RunStore(db)
    before, versions_before = store.updates(), store.versions()
    store.close()
    pending_before = [u for u in before if u.folded_into is None]
    assert pending_before and versions_before[-1][0] < 60  # killed between accept and aggregate

    fleet = open_run(load_config(path), resume=True)
    restored = fleet.strategy.pending  # the buffer as it was at the kill, bit for bit
    assert [(u.board_id, u.task_id) for u in restored] == \
           [(s.update.board_id, s.update.task_id) for s in pending_before]
    assert all(np.array_equal(u.delta, s.update.delta) for u, s in zip(restored, pending_before))
    assert fleet.strategy.version == versions_before[-1][0]
    summary = asyncio.run(fleet.run())
    assert summary.reason == "max_versions" and summary.version == 60

    store = RunStore(db)
    after = {s.id: s for s in store.updates()}
    for s in before:  # every update accepted before the kill is still there, unchanged, and folded in
        kept = after[s.id]
        assert (kept.update.board_id, kept.update.task_id) == (s.update.board_id, s.update.task_id)
        assert np.array_equal(kept.update.delta, s.update.delta)
        assert kept.folded_into == (s.folded_into or versions_before[-1][0] + 1)
    assert store.versions()[:len(versions_before)] == versions_before
    assert [e["session"] for e in store.metrics("start")] == [1, 2]
