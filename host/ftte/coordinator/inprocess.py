"""A board inside the host process: its private data shard, the real C kernels (ftte.train),
and the memory check a board makes before it starts. Fault injection for tests."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from ftte.aggregation import ParameterIndex, flat_parameters, load_flat_parameters, mean_square
from ftte.coordinator.board import BoardError, BoardInfo, Result, Task
from ftte.model import Model, UpdateSpec
from ftte.train import Trainer


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean softmax cross-entropy (float64)."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-np.mean(log_p[np.arange(len(labels)), labels]))


class InProcessBoard:
    """Trains on its own copy of the model and data through ftte.train.Trainer.

    `delay` seconds are awaited per task (a link and a slow CPU, simulated), so boards interleave
    on the event loop; with `threads` the kernels run in a worker thread (cffi releases the GIL).
    `fail_after=n` raises on task n+1, `hang_after=n` never answers task n+1."""

    def __init__(self, board_id: str, model: Model, x: np.ndarray, y: np.ndarray, ram_budget: int, *,
                 seed: int = 0, delay: float = 0.0, threads: bool = False,
                 fail_after: int | None = None, hang_after: int | None = None):
        if len(x) != len(y) or len(y) == 0:
            raise ValueError(f"{board_id}: needs samples with as many labels, got {len(x)} and {len(y)}")
        self.info = BoardInfo(board_id, ram_budget, "inprocess", f"{len(y)} samples")
        self._model = model.copy()
        self._flat = flat_parameters(self._model)
        self._index = ParameterIndex.of(self._model)
        self._x, self._y = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.int32)
        self._rng = np.random.default_rng(seed)
        self._order, self._cursor = self._rng.permutation(len(self._y)), 0
        self._trainers: dict[tuple, Trainer] = {}
        self._indices: dict[UpdateSpec, np.ndarray] = {}
        self.delay, self.threads, self.fail_after, self.hang_after = delay, threads, fail_after, hang_after
        self.tasks = 0
        self.closed = False

    async def provision(self, params: np.ndarray) -> None:
        params = np.asarray(params, np.float32)
        if params.shape != self._flat.shape:
            raise BoardError(f"{self.info.board_id}: provisioned {params.size} values, the model has {self._flat.size}")
        self._flat = params.copy()

    async def train(self, task: Task) -> Result:
        if self.closed:
            raise BoardError(f"{self.info.board_id}: closed")
        self.tasks += 1
        if self.fail_after is not None and self.tasks > self.fail_after:
            raise BoardError(f"{self.info.board_id}: injected failure on task {self.tasks}")
        if self.hang_after is not None and self.tasks > self.hang_after:
            await asyncio.Event().wait()  # vanished: never answers
        await asyncio.sleep(self.delay)
        if self.threads:
            return await asyncio.to_thread(self._train, task)
        return self._train(task)

    async def close(self) -> None:
        self.closed = True

    # ------------------------------------------------------------------------------------------

    def _trainer(self, task: Task) -> Trainer:
        key = (task.spec, task.hyper.batch, task.hyper.momentum > 0)
        if key not in self._trainers:
            self._trainers[key] = Trainer(self._model, task.spec, task.hyper.batch, task.hyper.momentum > 0)
        trainer = self._trainers[key]
        if trainer.memory.total > self.info.ram_budget:  # what the firmware checks before it starts
            raise BoardError(f"{self.info.board_id}: the task needs a {trainer.memory.total:,} B arena, "
                             f"the board has {self.info.ram_budget:,} B")
        return trainer

    def _next_batch(self, size: int) -> np.ndarray:
        if self._cursor + size > len(self._order):
            self._order, self._cursor = self._rng.permutation(len(self._y)), 0
        size = min(size, len(self._order))
        chosen = self._order[self._cursor:self._cursor + size]
        self._cursor += size
        return chosen

    def _train(self, task: Task) -> Result:
        start = time.perf_counter()
        trainer = self._trainer(task)
        indices = self._indices.setdefault(task.spec, self._index.indices(task.spec))
        values = np.asarray(task.values, np.float32)
        if values.shape != indices.shape:
            raise BoardError(f"{self.info.board_id}: task carries {values.size} values, "
                             f"the spec selects {indices.size}")
        flat = self._flat.copy()
        flat[indices] = values
        load_flat_parameters(self._model, flat)
        trainer.reload()
        hyper, samples, loss_before, batch = task.hyper, 0, float("nan"), None
        for step in range(hyper.local_steps):
            batch = self._next_batch(hyper.batch)
            loss = trainer.step(self._x[batch], self._y[batch], hyper.lr, hyper.momentum)
            loss_before = loss if step == 0 else loss_before
            samples += len(batch)
        loss_after = trainer.loss(self._x[batch], self._y[batch])
        trainer.export()
        delta = flat_parameters(self._model)[indices] - values
        return Result(task.task_id, task.version, delta, samples, loss_before, loss_after,
                      mean_square(delta), time.perf_counter() - start)
