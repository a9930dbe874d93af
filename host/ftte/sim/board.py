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

from ftte.aggregation import ParameterIndex, flat_parameters, load_flat_parameters, mean_square
from ftte.coordinator.board import BoardError, BoardInfo, Result, Task
from ftte.coordinator.inprocess import cross_entropy
from ftte.model import Model, UpdateSpec
from ftte.sim.behaviour import ALWAYS, Availability
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
    """One model copy and one Trainer per (spec, batch, momentum), shared by many boards."""

    def __init__(self, model: Model, x: np.ndarray, y: np.ndarray):
        self.model = model.copy()
        self.x, self.y = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.int32)
        self._trainers: dict[tuple, Trainer] = {}
        self._work: dict[tuple, TaskWork] = {}
        self._base: np.ndarray | None = None
        self.index = ParameterIndex.of(self.model)

    def trainer(self, spec: UpdateSpec, batch: int, momentum: bool) -> Trainer:
        key = (spec, batch, momentum)
        if key not in self._trainers:
            self._trainers[key] = Trainer(self.model, spec, batch, momentum)
        return self._trainers[key]

    def work(self, spec: UpdateSpec, batch: int) -> TaskWork:
        key = (spec, batch)
        if key not in self._work:
            self._work[key] = task_work(self.model, spec, batch)
        return self._work[key]

    def train(self, job: Job) -> Trained:
        trainer = self.trainer(job.spec, job.batch, job.momentum > 0)
        flat = np.array(job.base, np.float32, copy=True)
        flat[job.indices] = job.values
        load_flat_parameters(self.model, flat)
        trainer.reload()
        x, y = self.x, self.y
        loss_before, samples, batch = float("nan"), 0, job.batches[0]
        for step, batch in enumerate(job.batches):
            loss = trainer.step(x[batch], y[batch], job.lr, job.momentum)
            loss_before = loss if step == 0 else loss_before
            samples += len(batch)
        loss_after = cross_entropy(trainer.forward(x[batch]), y[batch])
        trainer.export()
        delta = flat_parameters(self.model)[job.indices] - job.values
        return Trained(delta, samples, loss_before, loss_after)


class LocalBackend:
    """Trains in this process (the default). submit() trains at once; fetch() returns it."""

    name = "local"

    def __init__(self, trainers: Trainers):
        self.trainers = trainers

    def submit(self, job: Job):
        return self.trainers.train(job)

    def fetch(self, handle) -> Trained:
        return handle

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
        self._order, self._cursor = self._rng.permutation(len(self._shard)), 0
        self._base: np.ndarray | None = None
        self._indices: dict[UpdateSpec, np.ndarray] = {}
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
        trainers: Trainers = self.backend.trainers
        hyper = task.hyper
        trainer = trainers.trainer(task.spec, hyper.batch, hyper.momentum > 0)
        if self.check_ram and trainer.memory.total > self.info.ram_budget:  # as the firmware checks
            raise BoardError(f"{self.info.board_id}: the task needs a {trainer.memory.total:,} B arena, "
                             f"the board has {self.info.ram_budget:,} B")
        indices = self._indices.get(task.spec)
        if indices is None:
            indices = self._indices.setdefault(task.spec, trainers.index.indices(task.spec))
        if task.values.shape != indices.shape:
            raise BoardError(f"{self.info.board_id}: task carries {task.values.size} values, "
                             f"the spec selects {indices.size}")
        batches = np.stack([self._next_batch(hyper.batch) for _ in range(hyper.local_steps)])
        job = Job(self._base, indices, task.values, task.spec, batches, hyper.lr, hyper.momentum, hyper.batch)
        handle = self.backend.submit(job)

        samples = sum(len(b) for b in batches)
        down = self.link.seconds(task.values.nbytes) * self.factor
        compute = self.profile.seconds_for(trainers.work(task.spec, hyper.batch).instructions * samples) * self.factor
        up = self.link.seconds(task.values.nbytes) * self.factor
        await self._spend(down + compute + up)
        if self.dropout and self._fate.random() < self.dropout:
            raise BoardError(f"{self.info.board_id}: dropped out (simulated, p={self.dropout:g} per task)")
        self.link_seconds += down + up
        self.compute_seconds += compute
        trained = self.backend.fetch(handle)
        return Result(task.task_id, task.version, trained.delta, trained.samples, trained.loss_before,
                      trained.loss_after, mean_square(trained.delta), compute)

    async def close(self) -> None:
        self.closed = True

    # ------------------------------------------------------------------------------------------

    async def _spend(self, seconds: float) -> None:
        """`seconds` of uninterrupted up time; a task cut by a down period starts again."""
        loop = asyncio.get_running_loop()
        if seconds > self.availability.longest():
            raise BoardError(f"{self.info.board_id}: a task takes {seconds:.1f} s, longer than any up period of "
                             f"its availability ({self.availability.longest():.1f} s): it can never finish")
        while True:
            now = loop.time()
            start = self.availability.next_up(now)
            if start > now:
                await asyncio.sleep(start - now)
            now = loop.time()
            end = self.availability.up_until(now)
            if now + seconds <= end:
                await asyncio.sleep(seconds)
                self.busy_seconds += seconds
                return
            self.restarts += 1
            self.busy_seconds += end - now
            await asyncio.sleep(end - now)

    def _next_batch(self, size: int) -> np.ndarray:
        if self._cursor + size > len(self._order):
            self._order, self._cursor = self._rng.permutation(len(self._shard)), 0
        size = min(size, len(self._order))
        chosen = self._order[self._cursor:self._cursor + size]
        self._cursor += size
        return self._shard[chosen]
