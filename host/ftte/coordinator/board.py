"""The one interface the coordinator knows boards by, whatever carries the bytes.

A transport (in-process, serial, BLE, the simulator) implements `Board`: three coroutines and
an `info` record learned when the board was connected (on a real link: its HELLO). Nothing
else about transports reaches the coordinator. See docs/coordinator.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ftte.model.spec import UpdateSpec


class BoardError(RuntimeError):
    """A board cannot do what it was asked (refused the task, lost the link, ...). The
    coordinator drops a board that raises anything, this or otherwise."""


@dataclass(frozen=True)
class BoardInfo:
    board_id: str              # stable name: serial number, "inproc-03", ...
    ram_budget: int            # bytes the board can give the training arena
    transport: str = "inprocess"
    description: str = ""


@dataclass(frozen=True)
class Hyper:
    """Local training hyperparameters, sent with every task (wire TASK header)."""

    lr: float = 0.05
    local_steps: int = 10
    batch: int = 16
    momentum: float = 0.0


@dataclass(frozen=True, eq=False)
class Task:
    """Train `spec` starting from `values` (the global model's values of exactly the parameters
    `spec` selects, in ParameterIndex order = arena order) for `hyper.local_steps` steps."""

    task_id: int
    version: int
    spec: UpdateSpec
    values: np.ndarray  # float32
    hyper: Hyper


@dataclass(frozen=True, eq=False)
class Result:
    """What a board sends back: trained - received for the task's parameters (same order)."""

    task_id: int
    base_version: int
    delta: np.ndarray    # float32, len(task.values)
    samples: int         # samples processed (local_steps x batch)
    loss_before: float   # loss of the first batch before any step
    loss_after: float    # loss of the last batch after the last step
    variance: float      # mean squared delta (the wire's delta_mean_sq)
    train_seconds: float = 0.0


@runtime_checkable
class Board(Protocol):
    """A connected board. Every coroutine may raise (the coordinator drops the board) and may
    never return (the coordinator's timeout drops it)."""

    info: BoardInfo

    async def provision(self, params: np.ndarray) -> None:
        """Install the full global parameter vector (the frozen part is used from then on;
        the wire's PROVISION)."""

    async def train(self, task: Task) -> Result:
        """Run one task and return its update."""

    async def close(self) -> None:
        """Release the link; must not raise."""
