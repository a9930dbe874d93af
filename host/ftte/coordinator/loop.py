"""The coordinator: keeps every board busy with the strategy's assignments, bounds every wait,
drops boards that fail or vanish, persists each accepted update before anything else happens
to it, evaluates the global model at intervals, and stops by rule.

One asyncio task per board runs: assign -> train (with a timeout) -> on_update, again at once.
The strategy (ftte.aggregation) decides everything about versions; the coordinator only
carries values between it, the boards, the store and the metrics log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ftte.aggregation import Advance, Assignment, Strategy, Update, Wait
from ftte.coordinator.board import Board, BoardInfo, Hyper, Result, Task
from ftte.coordinator.metrics import Evaluation
from ftte.model import UpdateSpec
from ftte.store import RunStore


@dataclass(frozen=True)
class StopRule:
    """Stop at the first rule met: a version reached, a test accuracy reached (checked when the
    model is evaluated), or wall time of this invocation."""

    max_versions: int | None = None
    target_accuracy: float | None = None
    max_seconds: float | None = None


@dataclass
class Summary:
    reason: str
    version: int
    accuracy: float | None = None
    loss: float | None = None
    seconds: float = 0.0
    versions_made: int = 0
    accepted: int = 0
    refused: int = 0
    bytes_down: int = 0
    bytes_up: int = 0
    dropped: dict[str, str] = field(default_factory=dict)


class Coordinator:
    def __init__(self, strategy: Strategy, spec: UpdateSpec, indices: np.ndarray, hyper: Hyper, *,
                 evaluate: Callable[[np.ndarray], Evaluation] | None = None, stop: StopRule = StopRule(),
                 task_timeout: float = 30.0, eval_every: int = 1, store: RunStore | None = None,
                 log: Callable[[dict], None] | None = None, arena_bytes: int = 0,
                 next_task_id: int = 1, elapsed: float = 0.0):
        self.strategy, self.spec, self.hyper = strategy, spec, hyper
        self.indices = np.asarray(indices, np.int64)
        self.evaluate, self.stop, self.store = evaluate, stop, store
        self.task_timeout, self.eval_every, self.arena_bytes = task_timeout, eval_every, arena_bytes
        self._log = log or (lambda event: None)
        self._next_task, self._elapsed0 = next_task_id, elapsed
        self.summary = Summary("running", strategy.version)
        self._evaluated: int | None = None
        self._live: dict[str, Board] = {}
        self._waiting: set[str] = set()
        self._finished = asyncio.Event()
        self._wake = asyncio.Event()
        self._t0 = _now()

    # ---------------------------------------------------------------- the run

    async def run(self, boards: Sequence[Board]) -> Summary:
        self._t0 = _now()
        for board in await asyncio.gather(*(self._join(b) for b in boards)):
            if board is not None:
                self._live[board.info.board_id] = board
        for gone in sorted(set(self.strategy.boards) - set(self._live)):  # resumed without some boards
            self._record(self.strategy.unregister(gone))
        self._record(None)
        self._version_event(self.strategy.version, None)
        if self.stop.max_versions is not None and self.strategy.version >= self.stop.max_versions:
            self._finish("max_versions")  # a resumed run that is already done
        if not self._live:
            self._finish("no boards joined")
        workers = [asyncio.create_task(self._drive(b)) for b in list(self._live.values())]
        try:
            await asyncio.wait_for(self._finished.wait(), self.stop.max_seconds)
        except (asyncio.TimeoutError, TimeoutError):
            self._finish("max_seconds")
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await asyncio.gather(*(self._close(b) for b in boards))
            for board in self._live.values():
                self._status(board.info, "stopped", self.summary.reason)
        if self._evaluated != self.strategy.version and self.evaluate is not None:
            self._version_event(self.strategy.version, None)
        s = self.summary
        s.version, s.seconds = self.strategy.version, self._elapsed()
        self._log({"event": "end", "time": s.seconds, "reason": s.reason, "version": s.version,
                   "accuracy": s.accuracy, "loss": s.loss, "accepted": s.accepted, "refused": s.refused,
                   "bytes_down": s.bytes_down, "bytes_up": s.bytes_up, "dropped": s.dropped})
        return s

    async def _join(self, board: Board) -> Board | None:
        info = board.info
        self._status(info, "joining")
        if info.ram_budget < self.arena_bytes:
            self._drop(info, f"RAM budget {info.ram_budget:,} B < the {self.arena_bytes:,} B arena", joined=False)
            return None
        try:
            await asyncio.wait_for(board.provision(self.strategy.params), self.task_timeout)
        except Exception as error:  # noqa: BLE001 - any failure of a board drops it
            self._drop(info, f"provision failed: {_describe(error, self.task_timeout)}", joined=False)
            return None
        self.strategy.register(info.board_id)
        self._status(info, "active")
        self._log({"event": "join", "time": self._elapsed(), "board": info.board_id, "transport": info.transport,
                   "ram_budget": info.ram_budget, "description": info.description})
        return board

    async def _drive(self, board: Board) -> None:
        board_id = board.info.board_id
        while not self._finished.is_set():
            assignment = self.strategy.assign(board_id)
            if isinstance(assignment, Wait):
                await self._wait(board_id, assignment)
                continue
            task = self._task(assignment)
            try:
                result = await asyncio.wait_for(board.train(task), self.task_timeout)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - timeout, link loss, refusal: the board goes
                self._drop(board.info, f"task {task.task_id}: {_describe(error, self.task_timeout)}")
                await self._close(board)
                return
            if self._finished.is_set():  # stopped while this board trained: the result is not taken
                return
            self._handle(board.info, task, result)
            if board_id not in self._live:  # dropped for a malformed result
                await self._close(board)
                return

    def _task(self, assignment: Assignment) -> Task:
        task = Task(self._next_task, assignment.version, self.spec,
                    np.array(assignment.params[self.indices], np.float32), self.hyper)
        self._next_task += 1
        return task

    async def _wait(self, board_id: str, wait: Wait) -> None:
        """Until something changes (an update, a version, a drop). If every live board is
        waiting, nothing ever will: the run is stalled (e.g. FedAvg's min_available unmet)."""
        self._waiting.add(board_id)
        try:
            # Sizes first: building a set of the live boards on every wake-up made a 500-board
            # FedAvg run quadratic.
            if len(self._waiting) >= len(self._live) and self._waiting.issuperset(self._live):
                self._finish(f"stalled: {wait.reason}")
                return
            await self._wake.wait()
        finally:
            self._waiting.discard(board_id)

    def _notify(self) -> None:
        self._waiting.clear()  # woken boards ask again before they count as waiting
        self._wake.set()
        self._wake = asyncio.Event()

    def _finish(self, reason: str) -> None:
        if not self._finished.is_set():
            self.summary.reason = reason
            self._finished.set()

    # ---------------------------------------------------------------- events

    def _handle(self, info: BoardInfo, task: Task, result: Result) -> None:
        s, board_id = self.summary, info.board_id
        if result.task_id != task.task_id or np.shape(result.delta) != task.values.shape:
            self._drop(info, f"answered task {task.task_id} with task {result.task_id} / "
                                 f"{np.size(result.delta)} deltas for {task.values.size} values")
            return
        update = Update(board_id, task.version, self.indices, result.delta, result.samples, result.variance,
                        task.task_id)
        try:
            outcome = self.strategy.on_update(update)
        except FloatingPointError as error:
            self._finish(f"diverged: {error}")
            return
        if outcome.accepted and self.store is not None:  # durable before anything else happens
            self.store.accept(update, self.strategy.state(), outcome.advance, result.loss_before, result.loss_after)
        s.accepted += outcome.accepted
        s.refused += not outcome.accepted
        down, up = 4 * task.values.size, 4 * np.size(result.delta)
        s.bytes_down, s.bytes_up = s.bytes_down + down, s.bytes_up + up
        self._log({"event": "update", "time": self._elapsed(), "board": board_id, "task": task.task_id,
                   "base_version": task.version, "version": outcome.version,
                   "staleness": self.strategy.version - task.version - outcome.advanced,
                   "accepted": outcome.accepted, "reason": outcome.reason.value if outcome.reason else None,
                   "samples": result.samples, "loss_before": result.loss_before, "loss_after": result.loss_after,
                   "variance": result.variance, "train_seconds": result.train_seconds,
                   "bytes_down": down, "bytes_up": up})
        if outcome.advance is not None:
            self._advanced(outcome.advance)
        self._notify()

    def _drop(self, info: BoardInfo, reason: str, joined: bool = True) -> None:
        board_id = info.board_id
        self.summary.dropped[board_id] = reason
        self._live.pop(board_id, None)
        advance = self.strategy.unregister(board_id) if joined else None
        self._status(info, "dropped", reason)
        self._record(advance)
        self._log({"event": "drop", "time": self._elapsed(), "board": board_id, "reason": reason,
                   "version": self.strategy.version})
        if advance is not None:
            self._advanced(advance)
        if joined and not self._live:
            self._finish("no boards left")
        self._notify()

    def _status(self, info: BoardInfo, status: str, reason: str = "") -> None:
        if self.store is not None:
            self.store.board(info.board_id, info.transport, info.ram_budget, info.description, status, reason)

    def _record(self, advance: Advance | None) -> None:
        if self.store is not None:
            self.store.advance(self.strategy.state(), advance)

    def _advanced(self, advance: Advance) -> None:
        self.summary.versions_made += 1
        last = self.stop.max_versions is not None and advance.version >= self.stop.max_versions
        self._version_event(advance.version, advance, evaluate=last or advance.version % self.eval_every == 0)
        if last:
            self._finish("max_versions")

    def _version_event(self, version: int, advance: Advance | None, evaluate: bool = True) -> None:
        result = self.evaluate(self.strategy.params) if evaluate and self.evaluate is not None else None
        event = {"event": "version", "time": self._elapsed(), "version": version,
                 "accuracy": None if result is None else result.accuracy,
                 "loss": None if result is None else result.loss}
        if advance is not None:
            event.update(boards=list(advance.boards), staleness=list(advance.staleness),
                         weights=[round(w, 6) for w in advance.weights])
        if result is not None:
            self._evaluated = version
            self.summary.accuracy, self.summary.loss = result.accuracy, result.loss
        self._log(event)
        target = self.stop.target_accuracy
        if result is not None and target is not None and result.accuracy >= target:
            self._finish("target_accuracy")

    def _elapsed(self) -> float:
        return round(self._elapsed0 + _now() - self._t0, 6)

    async def _close(self, board: Board) -> None:
        try:
            await asyncio.wait_for(board.close(), self.task_timeout)
        except Exception:  # noqa: BLE001 - closing must not fail the run
            pass


def _now() -> float:
    """The running event loop's clock: time.monotonic() on asyncio's own loops, simulated
    seconds on ftte.sim's virtual-clock loop (so `time` in the metrics is simulated time there)."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:  # no loop running (the constructor may be called outside one)
        return time.monotonic()


def _describe(error: BaseException, timeout: float) -> str:
    if isinstance(error, (asyncio.TimeoutError, TimeoutError)):
        return f"no answer within {timeout:g} s"
    return f"{type(error).__name__}: {error}"
