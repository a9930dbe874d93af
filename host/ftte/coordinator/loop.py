"""The coordinator: keeps every board busy with the strategy's assignments, bounds every wait,
drops boards that fail or vanish, persists each accepted update before anything else happens
to it, evaluates the global model at intervals, and stops by rule.

One asyncio task per board runs: assign -> train (with a timeout) -> on_update, again at once.
The strategy (ftte.aggregation) decides everything about versions; the coordinator only
carries values between it, the boards, the store and the metrics log. It also owns what the
boards train (w*, a `Trainable`): a board that joins with less RAM than w*'s arena makes it
choose w* again (docs/coordinator.md, "Reselection").
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ftte.aggregation import Advance, Assignment, Outcome, Strategy, Update, Wait
from ftte.coordinator.board import Board, BoardInfo, Hyper, Result, Task
from ftte.coordinator.metrics import Evaluation
from ftte.coordinator.trainable import Selector, Trainable
from ftte.store import RunStore, SelectionRecord


@dataclass(frozen=True)
class StopRule:
    """Stop at the first rule met: a version reached, a test accuracy reached (checked when the
    model is evaluated), or wall time of this invocation."""

    max_versions: int | None = None
    target_accuracy: float | None = None
    max_seconds: float | None = None


@dataclass
class Parked:
    """A board waiting for work: what the strategy last told it, and the future that wakes it."""

    wait: Wait
    woken: asyncio.Future


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
    reselections: int = 0
    bytes_down: int = 0
    bytes_up: int = 0
    dropped: dict[str, str] = field(default_factory=dict)


class Coordinator:
    def __init__(self, strategy: Strategy, trainable: Trainable, hyper: Hyper, *,
                 evaluate: Callable[[np.ndarray], Evaluation] | None = None, stop: StopRule = StopRule(),
                 task_timeout: float = 30.0, eval_every: int = 1, store: RunStore | None = None,
                 log: Callable[[dict], None] | None = None, next_task_id: int = 1, elapsed: float = 0.0,
                 selector: Selector | None = None, generation: int = 0, refresh_every: int | None = None,
                 reselect_every: int | None = None):
        self.strategy, self.hyper = strategy, hyper
        self.trainable = trainable  # w*: what every board trains (nested tiers: at least)
        self.generation = generation  # counts the selections of w* (a resumed run goes on counting)
        self.selector = selector      # None: w* never changes, a board with too little RAM is refused
        self.evaluate, self.stop, self.store = evaluate, stop, store
        self.task_timeout, self.eval_every = task_timeout, eval_every
        self._timeout = None if math.isinf(task_timeout) else task_timeout  # None: await without a wrapper task
        self._log = log or (lambda event: None)
        self._next_task, self._elapsed0 = next_task_id, elapsed
        self.summary = Summary("running", strategy.version)
        self._evaluated: int | None = None
        self._live: dict[str, Board] = {}
        self._budgets: dict[str, int] = {}      # RAM of every admitted board (joining or live)
        self._provisioned: dict[str, tuple[int, int]] = {}  # board -> (generation, version) of its frozen part
        self._tiers: dict[str, Trainable] = {}  # board -> what it trains (w*, or a superset: nested tiers)
        self._top = 0                           # the most parameters any board trains
        self.refresh_every = refresh_every      # versions a board on a smaller tier keeps its frozen part
        self.reselect_every = reselect_every    # versions between periodic reselections of w* (needs a selector)
        self._switching = False
        self._later: list[tuple[int, Board]] = []
        self._workers: list[asyncio.Task] = []
        self._parked: dict[str, dict[str, Parked]] = {"update": {}, "version": {}}  # by Wait.until, in arrival order
        self._finished = asyncio.Event()
        self._t0 = _now()

    # ---------------------------------------------------------------- the run

    async def run(self, boards: Sequence[Board], later: Sequence[tuple[int, Board]] = ()) -> Summary:
        """Train until a stop rule holds. `later`: (version, board) pairs; each board joins when
        the global model reaches that version (late joiners, for experiments)."""
        self._t0 = _now()
        self._later = sorted(later, key=lambda pair: pair[0])
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
        self._workers = [asyncio.create_task(self._drive(b)) for b in list(self._live.values())]
        self._join_due()
        try:
            await asyncio.wait_for(self._finished.wait(), self.stop.max_seconds)
        except (asyncio.TimeoutError, TimeoutError):
            self._finish("max_seconds")
        finally:
            for worker in self._workers:
                worker.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            await asyncio.gather(*(self._close(b) for b in [*boards, *(b for _, b in later)]))
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
        if not self._admit(info):
            return None
        provisioned = (self.generation, self.strategy.version)
        try:
            await asyncio.wait_for(board.provision(self.strategy.params), self._timeout)
        except Exception as error:  # noqa: BLE001 - any failure of a board drops it
            self._drop(info, f"provision failed: {_describe(error, self.task_timeout)}", joined=False)
            return None
        self._provisioned[info.board_id] = provisioned
        self.strategy.register(info.board_id)
        self._notify()  # the fleet changed
        self._status(info, "active")
        trains = self._tiers.get(info.board_id, self.trainable)
        self._log({"event": "join", "time": self._elapsed(), "board": info.board_id, "transport": info.transport,
                   "ram_budget": info.ram_budget, "description": info.description, "trains": trains.label,
                   "trainable": int(trains.indices.size)})
        return board

    def _admit(self, info: BoardInfo) -> bool:
        """Room for this board: w* fits its RAM, or a w* chosen again for the fleet with it does."""
        arena = self.trainable.arena_bytes
        if info.ram_budget < arena:
            if self.selector is None:
                self._drop(info, f"RAM budget {info.ram_budget:,} B < the {arena:,} B arena", joined=False)
                return False
            try:
                chosen = self.selector.reselect([*self._budgets.values(), info.ram_budget], self.trainable)
                if chosen is None or chosen.arena_bytes > info.ram_budget:
                    raise ValueError(f"the selector chose a {(chosen or self.trainable).arena_bytes:,} B arena")
            except ValueError as error:
                self._drop(info, f"RAM budget {info.ram_budget:,} B < the {arena:,} B arena, and no smaller "
                                 f"w* fits: {error}", joined=False)
                return False
            self._switch(chosen, f"board {info.board_id} joined with {info.ram_budget:,} B")
        self._budgets[info.board_id] = info.ram_budget
        self._retier([info.board_id])
        return True

    def _retier(self, boards) -> None:
        """What each of `boards` trains under the current w* (nested tiers: its own superset)."""
        boards = list(boards)
        for board_id in boards:
            base = self.trainable
            self._tiers[board_id] = base if self.selector is None else self.selector.tier(self._budgets[board_id], base)
        if 0 < len(boards) < len(self._tiers):  # boards joined: the top can only rise (no scan per join)
            self._top = max(self._top, *(self._tiers[b].indices.size for b in boards))
        else:  # a drop or a new w*: from scratch
            self._top = max((t.indices.size for t in self._tiers.values()), default=0)

    def _switch(self, chosen: Trainable, cause: str) -> None:
        """Train `chosen` from now on. What the buffer holds (of the old w*) is folded in first, so
        that from here the parameters outside the new w* stay exactly as boards get them when
        they are provisioned again; updates of the old w* still in flight keep only their
        coordinates inside the new one (`_handle`)."""
        self._switching = True
        try:
            advance = self.strategy.flush()
            self._record(advance)
            if advance is not None:
                self._advanced(advance)
        finally:
            self._switching = False
        old, self.trainable = self.trainable, chosen
        self.generation += 1
        self._retier(list(self._budgets))
        self._notify(everyone=True)  # waiting boards must be provisioned again
        self.summary.reselections += 1
        if self.store is not None:
            self.store.selection(SelectionRecord(self.generation, self.strategy.version, chosen.spec.to_json(),
                                                 chosen.label, chosen.arena_bytes, chosen.budget, cause))
        self._log({"event": "reselect", "time": self._elapsed(), "version": self.strategy.version,
                   "generation": self.generation, "cause": cause, "spec": chosen.label,
                   "trainable": int(chosen.indices.size), "was_trainable": int(old.indices.size),
                   "arena_bytes": chosen.arena_bytes, "was_arena_bytes": old.arena_bytes, "budget": chosen.budget})

    def _join_due(self) -> None:
        """Start joining the late boards whose version has come."""
        while self._later and self._later[0][0] <= self.strategy.version and not self._finished.is_set():
            _, board = self._later.pop(0)
            self._workers.append(asyncio.create_task(self._join_late(board)))

    async def _join_late(self, board: Board) -> None:
        if await self._join(board) is not None and not self._finished.is_set():
            self._live[board.info.board_id] = board
            await self._drive(board)

    def _stale(self, board_id: str) -> str | None:
        """Why a board must be provisioned again before its next task, if it must: w* changed
        since, or (nested tiers) larger tiers have moved what it holds frozen for
        `refresh_every` versions."""
        generation, version = self._provisioned.get(board_id, (-1, 0))
        if generation != self.generation:
            return "reselection"
        mine = self._tiers.get(board_id)
        if (self.refresh_every is not None and mine is not None and mine.indices.size < self._top
                and self.strategy.version - version >= self.refresh_every):
            return "refresh"
        return None

    async def _reprovision(self, board: Board, why: str) -> bool:
        """Bring a board's frozen parameters up to date with the global model."""
        provisioned = (self.generation, self.strategy.version)
        try:
            await asyncio.wait_for(board.provision(self.strategy.params), self._timeout)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - any failure of a board drops it
            self._drop(board.info, f"provision ({why}) failed: {_describe(error, self.task_timeout)}")
            await self._close(board)
            return False
        self._provisioned[board.info.board_id] = provisioned
        self._log({"event": "provision", "time": self._elapsed(), "board": board.info.board_id, "why": why,
                   "generation": provisioned[0], "version": provisioned[1], "bytes_down": 4 * self.strategy.size})
        self.summary.bytes_down += 4 * self.strategy.size
        return True

    async def _drive(self, board: Board) -> None:
        board_id = board.info.board_id
        assignment: Assignment | Wait | None = None  # handed over by _notify when it woke this board
        while not self._finished.is_set():
            why = self._stale(board_id)
            if why is not None:
                if not await self._reprovision(board, why):
                    return
                assignment = None
                continue
            if assignment is None or assignment.version != self.strategy.version:
                assignment = self.strategy.assign(board_id)
            if isinstance(assignment, Wait):
                assignment = await self._wait(board_id, assignment)
                continue
            trained = self._tiers.get(board_id, self.trainable)
            task = self._task(assignment, trained)
            assignment = None
            try:
                result = await asyncio.wait_for(board.train(task), self._timeout)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - timeout, link loss, refusal: the board goes
                self._drop(board.info, f"task {task.task_id}: {_describe(error, self.task_timeout)}")
                await self._close(board)
                return
            if self._finished.is_set():  # stopped while this board trained: the result is not taken
                return
            self._handle(board.info, task, trained, result)
            if board_id not in self._live:  # dropped for a malformed result
                await self._close(board)
                return

    def _task(self, assignment: Assignment, trained: Trainable) -> Task:
        task = Task(self._next_task, assignment.version, trained.spec, trained.take(assignment.params), self.hyper)
        self._next_task += 1
        return task

    async def _wait(self, board_id: str, wait: Wait) -> Assignment | None:
        """Park a board until `_notify` has something for it: the assignment it asked the
        strategy for on the board's behalf, or None (ask again: it must be provisioned first).
        If every live board is parked, nothing ever will be: the run is stalled (e.g. FedAvg's
        min_available unmet)."""
        parked = Parked(wait, asyncio.get_running_loop().create_future())
        self._parked[_until(wait)][board_id] = parked
        try:
            if self._all_waiting():
                self._finish(f"stalled: {wait.reason}")
                return None
            return await parked.woken
        finally:
            self._unpark(board_id, parked)

    def _unpark(self, board_id: str, parked: Parked) -> None:
        group = self._parked[_until(parked.wait)]
        if group.get(board_id) is parked:
            del group[board_id]

    def _all_waiting(self) -> bool:
        update, version = self._parked["update"], self._parked["version"]
        if len(update) + len(version) < len(self._live):  # sizes first: no scan per wake-up
            return False
        return all(b in update or b in version for b in self._live)

    def _notify(self, version: bool = True, everyone: bool = False) -> None:
        """Something changed: an update (`version` False), or a new version, join, drop or
        reselection. Each parked board this may concern (its Wait's `until`) is asked for on its
        behalf, in the order they parked, and woken only when there is something to do: an
        assignment, or provisioning first. Of the boards waiting for a version, only those the
        strategy `wakes` are asked (FedAvg: its new cohort), unless `everyone` must be provisioned
        again or tiers refresh by version."""
        last: Wait | None = None
        for until in ("update", "version") if version else ("update",):
            group = self._parked[until]
            if not group:
                continue
            asked = (list(group) if until == "update" or everyone or self.refresh_every is not None
                     else self.strategy.wakes(list(group)))
            for board_id in asked:
                parked = group.get(board_id)
                if parked is None:
                    continue
                if self._stale(board_id) is not None:
                    answer: Assignment | Wait | None = None
                else:
                    answer = self.strategy.assign(board_id)
                    if isinstance(answer, Wait):
                        last = answer
                        if _until(answer) != until:  # it now waits for something else
                            self._unpark(board_id, parked)
                            parked.wait = answer
                            self._parked[_until(answer)][board_id] = parked
                        continue
                self._unpark(board_id, parked)  # a woken board is not waiting any more
                parked.woken.set_result(answer)
        if self._all_waiting() and self._live:
            self._finish(f"stalled: {(last or _last_wait(self._parked)).reason}")

    def _finish(self, reason: str) -> None:
        if not self._finished.is_set():
            self.summary.reason = reason
            self._finished.set()

    # ---------------------------------------------------------------- events

    def _handle(self, info: BoardInfo, task: Task, trained: Trainable, result: Result) -> None:
        s, board_id = self.summary, info.board_id
        if result.task_id != task.task_id or np.shape(result.delta) != task.values.shape:
            self._drop(info, f"answered task {task.task_id} with task {result.task_id} / "
                                 f"{np.size(result.delta)} deltas for {task.values.size} values")
            return
        update = Update(board_id, task.version, trained.indices, result.delta, result.samples, result.variance,
                        task.task_id)
        now = self._tiers.get(board_id, self.trainable)
        if trained is not now:  # trained under an earlier w*: keep what the board trains now
            update = _restrict(update, now.indices)
        try:
            outcome = (self.strategy.on_update(update) if update.indices.size
                       else Outcome(False, self.strategy.version, detail="w* changed: none of its parameters is left"))
        except FloatingPointError as error:
            self._finish(f"diverged: {error}")
            return
        if outcome.accepted and self.store is not None:  # durable before anything else happens
            self.store.accept(update, self.strategy.state(), outcome.advance, result.loss_before, result.loss_after)
        if outcome.accepted and self.selector is not None:
            self.selector.observe(trained, result.delta)
        s.accepted += outcome.accepted
        s.refused += not outcome.accepted
        down, up = 4 * task.values.size, 4 * np.size(result.delta)
        s.bytes_down, s.bytes_up = s.bytes_down + down, s.bytes_up + up
        self._log({"event": "update", "time": self._elapsed(), "board": board_id, "task": task.task_id,
                   "base_version": task.version, "version": outcome.version,
                   "staleness": self.strategy.version - task.version - outcome.advanced,
                   "accepted": outcome.accepted, "reason": _reason(outcome),
                   "samples": result.samples, "loss_before": result.loss_before, "loss_after": result.loss_after,
                   "variance": result.variance, "train_seconds": result.train_seconds,
                   "bytes_down": down, "bytes_up": up})
        if outcome.advance is not None:
            self._advanced(outcome.advance)
        self._notify(version=outcome.advance is not None)

    def _drop(self, info: BoardInfo, reason: str, joined: bool = True) -> None:
        board_id = info.board_id
        self.summary.dropped[board_id] = reason
        self._live.pop(board_id, None)
        self._budgets.pop(board_id, None)
        self._tiers.pop(board_id, None)
        self._retier(())
        advance = self.strategy.unregister(board_id) if joined else None
        self._status(info, "dropped", reason)
        self._record(advance)
        self._log({"event": "drop", "time": self._elapsed(), "board": board_id, "reason": reason,
                   "version": self.strategy.version})
        if advance is not None:
            self._advanced(advance)
        if joined and not self._live:
            self._finish("no boards left")
        elif joined:
            self._regrow(f"board {board_id} left")
        self._notify()

    def _regrow(self, cause: str) -> None:
        """A board left: the selector may find room for a larger w* (its `grow` option)."""
        if self.selector is None or self._finished.is_set() or not self._budgets:
            return
        try:
            chosen = self.selector.reselect(list(self._budgets.values()), self.trainable)
        except ValueError as error:  # the fleet got no smaller, so w* still fits: keep it
            self._log({"event": "reselect_failed", "time": self._elapsed(), "cause": cause, "reason": str(error)})
            return
        if chosen is not None:
            self._switch(chosen, cause)

    def _rotate(self, version: int) -> None:
        """Every `reselect_every` versions: w* chosen again at the current global model."""
        chosen = self.selector.rotate(list(self._budgets.values()), self.strategy.params, self.trainable)
        if chosen is not None:
            self._switch(chosen, f"every {self.reselect_every} versions (version {version})")

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
        elif (self.reselect_every and advance.version % self.reselect_every == 0 and self.selector is not None
              and not self._switching and not self._finished.is_set()):
            self._rotate(advance.version)
        self._join_due()

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
            await asyncio.wait_for(board.close(), self._timeout)
        except Exception:  # noqa: BLE001 - closing must not fail the run
            pass


def _now() -> float:
    """The running event loop's clock: time.monotonic() on asyncio's own loops, simulated
    seconds on ftte.sim's virtual-clock loop (so `time` in the metrics is simulated time there)."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:  # no loop running (the constructor may be called outside one)
        return time.monotonic()


def _last_wait(parked: dict[str, dict[str, Parked]]) -> Wait:
    """The Wait of the board that parked last (what a stall is reported with)."""
    return next(reversed(parked["version"].values() or parked["update"].values())).wait


def _until(wait: Wait) -> str:
    return "version" if wait.until == "version" else "update"


def _restrict(update: Update, indices: np.ndarray) -> Update:
    """The part of an update inside `indices` (the current w*); its variance is computed again."""
    keep = np.isin(update.indices, indices, assume_unique=True)
    return Update(update.board_id, update.base_version, update.indices[keep], np.asarray(update.delta)[keep],
                  update.samples, None, update.task_id)


def _reason(outcome: Outcome) -> str | None:
    if outcome.reason is not None:
        return outcome.reason.value
    return None if outcome.accepted else "selection_changed"  # the coordinator's own refusal (_handle)


def _describe(error: BaseException, timeout: float) -> str:
    if isinstance(error, (asyncio.TimeoutError, TimeoutError)):
        return f"no answer within {timeout:g} s"
    return f"{type(error).__name__}: {error}"
