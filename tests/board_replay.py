"""What a board computes for a task, replayed in-process with ftte.train.Trainer (the same C
kernels): the reference of the emulated-board tests (test_native_board.py, test_serial_link.py).

The firmware's rules (docs/firmware.md): the board's weights are the provisioned ones,
overwritten by each task's values at the positions it selects; its batches walk the sample store
in order from a cursor that persists across tasks and wraps at the end of the store; loss_before
is the first step's loss, loss_after the loss of the last batch after the last step.
"""

from __future__ import annotations

import numpy as np

from ftte.aggregation import ParameterIndex, flat_parameters, load_flat_parameters
from ftte.coordinator.board import Hyper
from ftte.model import Model, UpdateSpec
from ftte.train import Trainer


class Replay:
    """What the board computes, replayed in-process with ftte.train.Trainer: the board's weights
    (provisioned, then each task's values at the positions it selects), and its batches (the
    store in order from a cursor that persists across tasks and wraps at the end)."""

    def __init__(self, model: Model, params: np.ndarray, x: np.ndarray, y: np.ndarray):
        self.model, self.weights, self.x, self.y, self.cursor = model.copy(), params.copy(), x, y, 0

    def task(self, spec: UpdateSpec, values: np.ndarray, hyper: Hyper, steps: int | None = None):
        index = ParameterIndex.of(self.model).indices(spec)
        self.weights[index] = values
        load_flat_parameters(self.model, self.weights)
        trainer = Trainer(self.model, spec, hyper.batch, hyper.momentum > 0)
        losses, used, last = [], 0, None
        for _ in range(hyper.local_steps if steps is None else steps):
            n = min(hyper.batch, len(self.y) - self.cursor)
            last = slice(self.cursor, self.cursor + n)
            losses.append(trainer.step(self.x[last], self.y[last], hyper.lr, hyper.momentum))
            used += n
            self.cursor = 0 if self.cursor + n >= len(self.y) else self.cursor + n
        logits = trainer.forward(self.x[last]).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        loss_after = float(-np.mean(log_p[np.arange(len(self.y[last])), self.y[last]]))
        trainer.export()
        delta = flat_parameters(self.model)[index] - values
        load_flat_parameters(self.model, self.weights)
        return delta, losses[0], loss_after, used


def assert_same_bits(board_delta: np.ndarray, replayed: np.ndarray) -> None:
    assert board_delta.dtype == np.float32 and board_delta.shape == replayed.shape
    differ = np.flatnonzero(board_delta.view(np.uint32) != replayed.astype(np.float32).view(np.uint32))
    assert differ.size == 0, (f"{differ.size} of {board_delta.size} deltas differ, the largest by "
                              f"{np.abs(board_delta - replayed).max():.3g} (a stale ftte._native? rebuild it: "
                              "python host/ftte/_build_native.py)")
