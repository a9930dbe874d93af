"""A simulated board: the `Board` interface of the coordinator, on simulated time.

Each task is trained for real through the C kernels (ftte.train.Trainer, as InProcessBoard
does), while its duration is awaited on the virtual clock: download of the task's values, local
training (the profile's cost model), upload of the deltas, each scaled by the board's
straggler factor. A board that is down (availability trace) waits until it is up; if it goes
down mid-task the task's progress is lost and it starts again when the board is back (an MCU
loses its RAM). With `dropout`, each task may end the board for good (it raises, and the
coordinator drops it, as it would a real board).

Training is done by a `Trainers` pool shared by every board of a simulation: one model copy and
one Trainer per (spec, batch, momentum), reloaded per task, instead of one model per board.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from ftte.aggregation import ParameterIndex, load_flat_parameters, mean_square
from ftte.coordinator.board import BoardError, BoardInfo, Result, Task
from ftte.model import Model, UpdateSpec
from ftte.sim.behaviour import ALWAYS, EDGE, Availability
from ftte.sim.profiles import BoardProfile, TaskWork, task_work
from ftte.train import Trainer


@dataclass(frozen=True)
class Job:
    """Everything one task's training needs, in plain arrays (what a Ray worker receives)."""

    base: np.ndarray      # the board's provisioned global vector (frozen part)
    indices: np.ndarray   # positions of the task's values in it
    values: np.ndarray
    spec: UpdateSpec
    batches: np.ndarray   # [steps][batch] sample indices into the data set's training split
    lr: float
    momentum: float
    batch: int


@dataclass(frozen=True)
class Trained:
    delta: np.ndarray
    samples: int
    loss_before: float
    loss_after: float


class Trainers:
    """One model copy and one Trainer per (spec, batch, momentum), shared by many boards.

    The model's arrays hold the frozen parameters of the last job's base vector (reloaded only
    when a job brings another one: in a simulation every board is provisioned once, so almost
    never). A job's trainable values go straight into the trainer's arena, and its delta is read
    from there: the arena keeps the trainable tensors in the order of `ParameterIndex.indices`
    (per layer, the rows in channel order, then the bias), so no export to the model is needed.
    """

    def __init__(self, model: Model, x: np.ndarray, y: np.ndarray):
        self.model = model.copy()
        self.x, self.y = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.int32)
        self._trainers: dict[tuple, tuple] = {}  # (id(spec), batch, momentum) -> (trainer, slots, spec)
        self._work: dict[tuple, TaskWork] = {}
        self._indices: dict[int, tuple[UpdateSpec, np.ndarray]] = {}
        self._base: np.ndarray | None = None  # the vector the model's arrays hold
        self.index = ParameterIndex.of(self.model)

    def trainer(self, spec: UpdateSpec, batch: int, momentum: bool) -> Trainer:
        return self._trainer(spec, batch, momentum)[0]

    def _trainer(self, spec: UpdateSpec, batch: int, momentum: bool) -> tuple[Trainer, np.ndarray | slice]:
        key = (id(spec), batch, momentum)  # hashing a spec walks every layer: by identity first
        hit = self._trainers.get(key)
        if hit is not None and hit[2] is spec:
            return hit[0], hit[1]
        trainer = Trainer(self.model, spec, batch, momentum)
        slots = arena_slots(trainer)
        if len(_positions(slots)) != len(self.index.indices(spec)):
            raise AssertionError(f"the arena holds {len(_positions(slots))} trainable values, the spec selects "
                                 f"{len(self.index.indices(spec))}")
        self._trainers[key] = (trainer, slots, spec)
        return trainer, slots

    def indices(self, spec: UpdateSpec) -> np.ndarray:
        """ParameterIndex.indices(spec), worked out once per spec (by identity, as `_trainer`)."""
        hit = self._indices.get(id(spec))
        if hit is None or hit[0] is not spec:
            hit = self._indices[id(spec)] = (spec, self.index.indices(spec))
        return hit[1]

    def work(self, spec: UpdateSpec, batch: int, isa: str = "m4f", momentum: bool = False) -> TaskWork:
        key = (spec, batch, isa, momentum)
        if key not in self._work:
            self._work[key] = task_work(self.model, spec, batch, isa, momentum)
        return self._work[key]

    def train(self, job: Job) -> Trained:
        trainer, slots = self._trainer(job.spec, job.batch, job.momentum > 0)
        self._load(job.base)
        trainer.reload()                    # trainable rows of the base, velocity zeroed
        trainer.arena[slots] = job.values   # then the task's values over them
        chosen = job.batches.reshape(-1)
        x, y = self.x[chosen], self.y[chosen]
        size = job.batches.shape[1]
        losses, loss_after = trainer.task(x, y, size, job.lr, job.momentum)
        delta = trainer.arena[slots] - job.values
        delta.flags.writeable = False  # nobody else holds it: the strategy may keep it without a copy
        return Trained(delta, len(chosen), losses[0], loss_after)

    def _load(self, base: np.ndarray) -> None:
        if base is self._base or (self._base is not None and np.array_equal(base, self._base)):
            return
        load_flat_parameters(self.model, base)
        self._base = base


def arena_slots(trainer: Trainer) -> np.ndarray | slice:
    """Positions in `trainer.arena` (float32 elements) of the trainable values, in
    `ParameterIndex.indices` order; a slice when they are contiguous."""
    base = trainer.arena.ctypes.data
    parts = []
    for t in trainer.tensors:
        for view in (t.weights, t.bias):
            if view is not None:
                first = (view.ctypes.data - base) // 4
                parts.append(np.arange(first, first + view.size))
    slots = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    if len(slots) and np.all(np.diff(slots) == 1):
        return slice(int(slots[0]), int(slots[-1]) + 1)
    return slots


def _positions(slots: np.ndarray | slice) -> np.ndarray:
    return np.arange(slots.start, slots.stop) if isinstance(slots, slice) else slots


class LocalBackend:
    """Trains in this process (the default). Training is pure, so it is done when the board
    collects it (`fetch`): a task cut short by the end of the run or a drop-out costs nothing."""

    name = "local"

    def __init__(self, trainers: Trainers):
        self.trainers = trainers

    def submit(self, job: Job) -> Job:
        return job

    def fetch(self, handle: Job) -> Trained:
        return self.trainers.train(handle)

    def close(self) -> None:
        pass


class SimulatedBoard:
    """A board of `profile` holding the training samples `shard` (indices into the pool's data).

    `factor` slows compute and links (straggler), `availability` says when it is up, `dropout`
    is the probability that a task ends the board for good."""

    def __init__(self, board_id: str, profile: BoardProfile, shard: np.ndarray, backend, *,
                 ram_budget: int | None = None, factor: float = 1.0, availability: Availability = ALWAYS,
                 dropout: float = 0.0, seed: int = 0, check_ram: bool = True):
        if len(shard) == 0:
            raise ValueError(f"{board_id}: needs at least one sample")
        ram = profile.train_ram if ram_budget is None else ram_budget
        self.info = BoardInfo(board_id, ram, "simulated",
                              f"{profile.name} over {profile.link.name}, x{factor:.2f}, {len(shard)} samples")
        self.profile, self.link, self.factor = profile, profile.link, float(factor)
        self.availability, self.dropout, self.check_ram = availability, dropout, check_ram
        self.backend = backend
        self._shard = np.asarray(shard, np.int64)
        self._rng = np.random.default_rng([seed, 1])
        self._fate = np.random.default_rng([seed, 2])
        self._stream, self._cursor = np.zeros((0, 0), np.int64), 0  # batches of the passes drawn so far
        self._base: np.ndarray | None = None
        self._plans: dict[tuple, tuple] = {}  # (id(spec), hyper, bytes) -> (spec, (indices, down, compute, up))
        self.tasks = self.restarts = 0
        self.busy_seconds = self.link_seconds = self.compute_seconds = 0.0
        self.closed = False

    async def provision(self, params: np.ndarray) -> None:
        params = np.asarray(params, np.float32)
        await asyncio.sleep(self.link.seconds(params.nbytes) * self.factor)
        self._base = params

    async def train(self, task: Task) -> Result:
        if self.closed or self._base is None:
            raise BoardError(f"{self.info.board_id}: {'closed' if self.closed else 'not provisioned'}")
        self.tasks += 1
        hyper = task.hyper
        indices, down, compute, up = self._plan(task)
        batches = self._next_batches(hyper.batch, hyper.local_steps)
        handle = self.backend.submit(Job(self._base, indices, task.values, task.spec, batches, hyper.lr,
                                         hyper.momentum, hyper.batch))
        await self._spend(down + compute + up)
        if self.dropout and self._fate.random() < self.dropout:
            raise BoardError(f"{self.info.board_id}: dropped out (simulated, p={self.dropout:g} per task)")
        self.link_seconds += down + up
        self.compute_seconds += compute
        trained = self.backend.fetch(handle)
        return Result(task.task_id, task.version, trained.delta, trained.samples, trained.loss_before,
                      trained.loss_after, mean_square(trained.delta), compute)

    def _plan(self, task: Task) -> tuple[np.ndarray, float, float, float]:
        """(indices, download, compute, upload seconds) of a task: checked and costed once per
        kind of task (spec, hyperparameters, size), as the firmware checks each task's arena."""
        key = (id(task.spec), task.hyper, task.values.nbytes)
        hit = self._plans.get(key)
        if hit is not None and hit[0] is task.spec:
            return hit[1]
        trainers: Trainers = self.backend.trainers
        hyper = task.hyper
        trainer = trainers.trainer(task.spec, hyper.batch, hyper.momentum > 0)
        if self.check_ram and trainer.memory.total > self.info.ram_budget:  # as the firmware checks
            raise BoardError(f"{self.info.board_id}: the task needs a {trainer.memory.total:,} B arena, "
                             f"the board has {self.info.ram_budget:,} B")
        indices = trainers.indices(task.spec)
        if task.values.shape != indices.shape:
            raise BoardError(f"{self.info.board_id}: task carries {task.values.size} values, "
                             f"the spec selects {indices.size}")
        samples = hyper.local_steps * min(hyper.batch, len(self._shard))
        link = self.link.seconds(task.values.nbytes) * self.factor
        work = trainers.work(task.spec, hyper.batch, self.profile.isa, hyper.momentum > 0)
        compute = self.profile.seconds_for(work.instructions * samples) * self.factor
        plan = (indices, link, compute, link)
        self._plans[key] = (task.spec, plan)
        return plan

    async def close(self) -> None:
        self.closed = True

    # ------------------------------------------------------------------------------------------

    async def _spend(self, seconds: float) -> None:
        """`seconds` of uninterrupted up time; a task cut by a down period starts again."""
        if self.availability.always:
            await asyncio.sleep(seconds)
            self.busy_seconds += seconds
            return
        loop = asyncio.get_running_loop()
        if seconds > self.availability.longest():
            raise BoardError(f"{self.info.board_id}: a task takes {seconds:.1f} s, longer than any up period of "
                             f"its availability ({self.availability.longest():.1f} s): it can never finish")
        while True:
            now = loop.time()
            start, end = self.availability.next_interval(now)
            if start > now + EDGE:
                await asyncio.sleep(start - now)
                now = loop.time()
            if now + seconds <= end + EDGE:
                await asyncio.sleep(seconds)
                self.busy_seconds += seconds
                return
            self.restarts += 1
            self.busy_seconds += end - now
            await asyncio.sleep(end - now)

    def _next_batches(self, size: int, steps: int) -> np.ndarray:
        """[steps][size] sample indices: consecutive batches of passes over the shard, each pass
        a fresh permutation cut into whole batches (a shard smaller than a batch is one batch of
        all of it). Passes are drawn ahead, several tasks' worth at a time; the generator only
        ever draws these permutations, so the batches are the same as drawing them one by one."""
        if self._stream.shape[1] != min(size, len(self._shard)):
            self._stream, self._cursor = np.zeros((0, min(size, len(self._shard))), np.int64), 0
        if self._cursor + steps > len(self._stream):
            self._refill(size, 4 * steps)
        batches = self._stream[self._cursor:self._cursor + steps]
        self._cursor += steps
        return batches

    def _refill(self, size: int, rows: int) -> None:
        n = len(self._shard)
        take = min(size, n)
        per_pass = n // take if n >= size else 1
        parts, have = [self._stream[self._cursor:]], len(self._stream) - self._cursor
        while have < rows:
            order = self._rng.permutation(n)[:per_pass * take]
            parts.append(self._shard[order].reshape(per_pass, take))
            have += per_pass
        self._stream, self._cursor = np.concatenate(parts), 0
