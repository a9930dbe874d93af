"""A run's durable state in one SQLite file (WAL): config, global versions, the strategy's
state, every accepted update, the board registry, every trainable subset w* the run chose (a
generation each) and the metrics.

The rule that makes `ftte run --resume` lose nothing: an update is written, with its deltas,
in the same transaction that records its acceptance (and, if it made the version advance, the
new version, the strategy's arrays and which pending updates were folded in). The coordinator
commits before it does anything else with the update (a serial link ACKs only then). On
resume the strategy is rebuilt from the last snapshot plus the accepted updates not yet folded
into a version: exactly its buffer at the moment of the kill.

WAL with synchronous=NORMAL survives the coordinator being killed (kill -9) at any point; a
power cut may lose the last transactions (set durable=True for synchronous=FULL).
"""

from __future__ import annotations

import io
import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ftte.aggregation import Advance, StrategyState, Update

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS versions (
    version INTEGER PRIMARY KEY, created REAL NOT NULL, params BLOB,
    boards TEXT NOT NULL, staleness TEXT NOT NULL, weights TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS strategy (
    id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT NOT NULL, config TEXT NOT NULL,
    version INTEGER NOT NULL, boards TEXT NOT NULL, extra TEXT NOT NULL, arrays BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS updates (
    id INTEGER PRIMARY KEY, board TEXT NOT NULL, task_id INTEGER, base_version INTEGER NOT NULL,
    indices BLOB NOT NULL, delta BLOB NOT NULL, samples INTEGER NOT NULL, variance REAL NOT NULL,
    loss_before REAL, loss_after REAL, accepted_at REAL NOT NULL, folded_into INTEGER);
CREATE INDEX IF NOT EXISTS updates_pending ON updates (folded_into);
CREATE TABLE IF NOT EXISTS boards (
    board_id TEXT PRIMARY KEY, transport TEXT NOT NULL, ram_budget INTEGER NOT NULL,
    description TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS selections (
    generation INTEGER PRIMARY KEY, version INTEGER NOT NULL, spec TEXT NOT NULL, label TEXT NOT NULL,
    arena INTEGER NOT NULL, budget INTEGER NOT NULL, cause TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS metrics (id INTEGER PRIMARY KEY, event TEXT NOT NULL, data TEXT NOT NULL);
"""


@dataclass(frozen=True, eq=False)
class StoredUpdate:
    id: int
    update: Update
    folded_into: int | None
    loss_before: float | None
    loss_after: float | None


@dataclass(frozen=True)
class SelectionRecord:
    """One w* of a run: from global `version` on (generation numbers count the selections),
    `spec` as UpdateSpec.to_json() gives it, its C-planned `arena` in bytes, the usable `budget`
    it was sized for, and what caused it ("start", "board <id> joined with <n> B")."""

    generation: int
    version: int
    spec: list
    label: str
    arena: int
    budget: int
    cause: str


def _f32(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, "<f4").astype(np.float32)


def _pack(arrays: dict[str, np.ndarray]) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def _unpack(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


class RunStore:
    """One run's SQLite file. Not thread-safe: the coordinator's event loop owns it."""

    def __init__(self, path: str | Path, keep_versions: int = 0, durable: bool = False):
        self.path = Path(path)
        self.keep_versions = keep_versions
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ---------------------------------------------------------------- run and meta

    @property
    def has_run(self) -> bool:
        return self._db.execute("SELECT 1 FROM strategy").fetchone() is not None

    def create(self, meta: dict[str, Any], state: StrategyState) -> None:
        """A new run: its meta values (config, spec, starting point...) and version `state.version`."""
        if self.has_run:
            raise ValueError(f"{self.path} already holds a run; resume it or choose another output dir")
        with self._tx() as db:
            db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
            self._version(db, state.version, state.params, (), (), ())
            self._snapshot(db, state, arrays=True)

    def meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    # ---------------------------------------------------------------- events

    def accept(self, update: Update, state: StrategyState, advance: Advance | None,
               loss_before: float | None = None, loss_after: float | None = None) -> int:
        """Records an accepted update (and the version it made, if any) in one transaction."""
        update = update.normalised()  # the variance filled in, as the strategy keeps it
        with self._tx() as db:
            row = db.execute(
                "INSERT INTO updates (board, task_id, base_version, indices, delta, samples, variance, "
                "loss_before, loss_after, accepted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (update.board_id, update.task_id, int(update.base_version),
                 np.asarray(update.indices, "<i4").tobytes(), np.asarray(update.delta, "<f4").tobytes(),
                 update.samples, update.variance,
                 loss_before, loss_after, time.time())).lastrowid
            self._apply(db, state, advance)
            return int(row)

    def advance(self, state: StrategyState, advance: Advance | None) -> None:
        """A change not caused by an update (a dropped board closed FedAvg's round, a flush,
        a board joined or left): the new snapshot, and the version if one was made."""
        with self._tx() as db:
            self._apply(db, state, advance)

    def board(self, board_id: str, transport: str, ram_budget: int, description: str, status: str,
              reason: str = "") -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO boards VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (board_id, transport, ram_budget, description, status, reason, time.time()))

    def selection(self, record: "SelectionRecord") -> None:
        """The run trains a new w* from now on (generation 0: the first one)."""
        with self._tx() as db:
            db.execute("INSERT INTO selections VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (record.generation, record.version, json.dumps(record.spec), record.label, record.arena,
                        record.budget, record.cause, time.time()))

    def selections(self) -> list["SelectionRecord"]:
        """Every w* of the run, oldest first; the last is the one training now."""
        rows = self._db.execute("SELECT generation, version, spec, label, arena, budget, cause FROM selections "
                                "ORDER BY generation")
        return [SelectionRecord(g, v, json.loads(s), lbl, a, b, c) for g, v, s, lbl, a, b, c in rows]

    def log(self, event: dict) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO metrics (event, data) VALUES (?, ?)", (event["event"], json.dumps(event)))

    def _apply(self, db: sqlite3.Connection, state: StrategyState, advance: Advance | None) -> None:
        if advance is not None:
            still = {(u.board_id, u.task_id) for u in state.buffer}
            pending = db.execute("SELECT id, board, task_id FROM updates WHERE folded_into IS NULL").fetchall()
            db.executemany("UPDATE updates SET folded_into = ? WHERE id = ?",
                           [(advance.version, i) for i, b, t in pending if (b, t) not in still])
            self._version(db, advance.version, advance.params, advance.boards, advance.staleness, advance.weights)
            if self.keep_versions:
                db.execute("UPDATE versions SET params = NULL WHERE version > 0 AND version <= ?",
                           (advance.version - self.keep_versions,))
        self._snapshot(db, state, arrays=advance is not None)

    @staticmethod
    def _version(db, version: int, params: np.ndarray, boards, staleness, weights) -> None:
        db.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?)",
                   (version, time.time(), np.asarray(params, "<f4").tobytes(), json.dumps(list(boards)),
                    json.dumps([int(s) for s in staleness]), json.dumps([float(w) for w in weights])))

    @staticmethod
    def _snapshot(db, state: StrategyState, arrays: bool) -> None:
        """Everything of the state but the buffer (the unfolded rows of `updates` are the buffer)
        and params (the `versions` row). Arrays change only when the version does."""
        values = (state.strategy, json.dumps(state.config), state.version, json.dumps(list(state.boards)),
                  json.dumps(state.extra))
        if arrays:
            db.execute("INSERT OR REPLACE INTO strategy VALUES (1, ?, ?, ?, ?, ?, ?)",
                       (*values, _pack({k: np.asarray(v) for k, v in state.arrays.items()})))
        else:
            db.execute("UPDATE strategy SET name = ?, config = ?, version = ?, boards = ?, extra = ? WHERE id = 1",
                       values)

    # ---------------------------------------------------------------- reading back

    def load_state(self) -> StrategyState:
        """The strategy state to resume from: snapshot + params of its version + pending updates."""
        row = self._db.execute("SELECT name, config, version, boards, extra, arrays FROM strategy").fetchone()
        if row is None:
            raise ValueError(f"{self.path} holds no run to resume")
        name, config, version, boards, extra, arrays = row
        buffer = tuple(s.update for s in self.updates(pending=True))
        return StrategyState(name, json.loads(config), version, self.params(version), tuple(json.loads(boards)),
                             buffer, _unpack(arrays), json.loads(extra))

    def params(self, version: int) -> np.ndarray:
        row = self._db.execute("SELECT params FROM versions WHERE version = ?", (version,)).fetchone()
        if row is None or row[0] is None:
            raise KeyError(f"parameters of version {version} are not stored in {self.path}")
        return _f32(row[0])

    def versions(self) -> list[tuple[int, list[str], list[int]]]:
        """(version, boards folded in, their staleness), in order."""
        rows = self._db.execute("SELECT version, boards, staleness FROM versions ORDER BY version")
        return [(v, json.loads(b), json.loads(s)) for v, b, s in rows]

    def updates(self, pending: bool = False) -> list[StoredUpdate]:
        """Accepted updates in acceptance order (only those not folded yet with pending=True)."""
        query = ("SELECT id, board, task_id, base_version, indices, delta, samples, variance, folded_into, "
                 "loss_before, loss_after FROM updates" + (" WHERE folded_into IS NULL" if pending else "")
                 + " ORDER BY id")
        return [StoredUpdate(i, Update(b, base, np.frombuffer(ix, "<i4").astype(np.int64), _f32(d), n, v, t), f, lb, la)
                for i, b, t, base, ix, d, n, v, f, lb, la in self._db.execute(query)]

    def max_task_id(self) -> int:
        return int(self._db.execute("SELECT COALESCE(MAX(task_id), 0) FROM updates").fetchone()[0])

    def elapsed(self) -> float:
        """The latest run time any metric recorded (seconds over all sessions so far)."""
        row = self._db.execute("SELECT MAX(json_extract(data, '$.time')) FROM metrics").fetchone()
        return float(row[0] or 0.0)

    def boards(self) -> dict[str, tuple[str, str]]:
        """board id -> (status, reason)."""
        return {b: (s, r) for b, s, r in self._db.execute("SELECT board_id, status, reason FROM boards")}

    def metrics(self, event: str | None = None) -> list[dict]:
        query, args = "SELECT data FROM metrics", ()
        if event is not None:
            query, args = query + " WHERE event = ?", (event,)
        return [json.loads(d) for (d,) in self._db.execute(query + " ORDER BY id", args)]
