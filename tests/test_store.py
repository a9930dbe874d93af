"""run.sqlite: an accepted update is durable in the transaction that accepts it, and a strategy
rebuilt from the store (last snapshot + unfolded updates) is the one that was running."""

from __future__ import annotations

import numpy as np
import pytest

from ftte.aggregation import FTTE, FedAsync, FedAsyncConfig, FedAvg, FedAvgConfig, FTTEConfig, Update, restore
from ftte.store import RunStore

P = 12


def update(board: str, base: int, seed: int, task: int) -> Update:
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.choice(P, 6, replace=False))
    return Update(board, base, indices, rng.normal(0, 0.1, 6).astype(np.float32), 10, None, task)


def drive(strategy, store: RunStore | None, events: list[Update]) -> None:
    for u in events:
        outcome = strategy.on_update(u)
        assert outcome.accepted, outcome
        if store is not None:
            store.accept(u, strategy.state(), outcome.advance, 0.5, 0.25)


def same_state(a, b) -> None:
    sa, sb = a.state(), b.state()
    assert (sa.strategy, sa.version, sa.boards, sa.config, sa.extra) == (sb.strategy, sb.version, sb.boards,
                                                                         sb.config, sb.extra)
    assert np.array_equal(sa.params, sb.params)
    assert [(u.board_id, u.task_id, u.base_version, u.samples, u.variance) for u in sa.buffer] == \
           [(u.board_id, u.task_id, u.base_version, u.samples, u.variance) for u in sb.buffer]
    assert all(np.array_equal(x.delta, y.delta) and np.array_equal(x.indices, y.indices)
               for x, y in zip(sa.buffer, sb.buffer))
    assert sa.arrays.keys() == sb.arrays.keys()
    assert all(np.array_equal(sa.arrays[k], sb.arrays[k]) for k in sa.arrays)


def make(kind: str):
    theta = np.linspace(-1, 1, P, dtype=np.float32)
    if kind == "ftte":
        s = FTTE(theta, FTTEConfig(buffer_size=3, server_momentum=0.5))
    elif kind == "fedasync":
        s = FedAsync(theta, FedAsyncConfig(max_staleness=4, reference="base"))
    else:
        s = FedAvg(theta, FedAvgConfig(fraction=0.5), rng=np.random.default_rng(3))
    for board in "abcd":
        s.register(board)
    return s


def events(strategy, count: int) -> list[Update]:
    """Updates as a fleet would send them: each from the board's assigned version."""
    out, task = [], 0
    while len(out) < count:
        for board in "abcd":
            a = strategy.assign(board)
            if hasattr(a, "params"):
                task += 1
                u = update(board, a.version, task, task)
                out.append(u)
                outcome = strategy.on_update(u)
                assert outcome.accepted
            if len(out) == count:
                break
    return out


@pytest.mark.parametrize("kind", ["ftte", "fedasync", "fedavg"])
def test_a_store_killed_mid_buffer_resumes_the_same_strategy(tmp_path, kind):
    stream = events(make(kind), 7)            # 7 updates: the buffer/round is part-full at the end
    live = make(kind)
    store = RunStore(tmp_path / "run.sqlite")
    store.create({"config": {"k": kind}}, live.state())
    for u in stream:
        live.assign(u.board_id)               # FedAvg samples its cohort on assign
        drive(live, store, [u])
    assert live.pending or kind == "fedasync"  # accepted, not yet aggregated (FedAsync folds at once)
    del store                                 # no close(): as if the process were killed
    reopened = RunStore(tmp_path / "run.sqlite")
    resumed = restore(reopened.load_state())
    same_state(live, resumed)
    # ... and it goes on exactly as the original would
    for board in "abcd":
        a, b = live.assign(board), resumed.assign(board)
        assert type(a) is type(b)
        if hasattr(a, "params"):
            u = update(board, a.version, 100 + ord(board), 100 + ord(board))
            assert live.on_update(u).accepted == resumed.on_update(u).accepted
    same_state(live, resumed)
    assert reopened.meta("config") == {"k": kind}


def test_rows_record_what_was_folded_into_which_version(tmp_path):
    s = make("ftte")
    store = RunStore(tmp_path / "run.sqlite")
    store.create({}, s.state())
    drive(s, store, [update(b, 0, i, i) for i, b in enumerate("abcab", 1)])  # K = 3: v1 folds 3, 2 pending
    rows = store.updates()
    assert [r.folded_into for r in rows] == [1, 1, 1, None, None]
    assert [r.update.task_id for r in store.updates(pending=True)] == [4, 5]
    assert [(v, boards) for v, boards, _ in store.versions()] == [(0, []), (1, ["a", "b", "c"])]
    assert np.array_equal(store.params(1), s.params) and rows[0].loss_before == 0.5
    assert store.max_task_id() == 5


def test_accept_is_one_transaction(tmp_path, monkeypatch):
    s = make("ftte")
    store = RunStore(tmp_path / "run.sqlite")
    store.create({}, s.state())
    drive(s, store, [update("a", 0, 1, 1), update("b", 0, 2, 2)])
    boom = RuntimeError("disk full")

    def failing_version(*args):
        raise boom

    monkeypatch.setattr(RunStore, "_version", staticmethod(failing_version))
    u = update("c", 0, 3, 3)
    outcome = s.on_update(u)
    assert outcome.advanced
    with pytest.raises(RuntimeError):
        store.accept(u, s.state(), outcome.advance)
    # nothing of the failed transaction is visible: not the update, not the folding
    assert [r.update.task_id for r in store.updates()] == [1, 2]
    assert [r.folded_into for r in store.updates()] == [None, None]


def test_one_run_per_file_and_pruning(tmp_path):
    s = make("fedasync")
    store = RunStore(tmp_path / "run.sqlite", keep_versions=2)
    store.create({}, s.state())
    with pytest.raises(ValueError, match="already holds a run"):
        store.create({}, s.state())
    drive(s, store, [update(b, s.version, i, i) for i, b in enumerate("abcd", 1)])  # versions 1..4
    assert np.array_equal(store.params(0), np.linspace(-1, 1, P, dtype=np.float32))  # w0 is kept
    assert np.array_equal(store.params(4), s.params) and store.params(3) is not None
    with pytest.raises(KeyError, match="version 2 are not stored"):
        store.params(2)
    with pytest.raises(ValueError, match="holds no run"):
        RunStore(tmp_path / "empty.sqlite").load_state()


def test_boards_and_metrics(tmp_path):
    store = RunStore(tmp_path / "run.sqlite")
    store.board("a", "inprocess", 1024, "x", "active")
    store.board("a", "inprocess", 1024, "x", "dropped", "timeout")
    store.log({"event": "version", "time": 1.5, "version": 1})
    store.log({"event": "update", "time": 2.0})
    assert store.boards() == {"a": ("dropped", "timeout")}
    assert [m["version"] for m in store.metrics("version")] == [1] and store.elapsed() == 2.0
