"""A board on a serial port (or a pyserial URL such as socket://host:port) as a coordinator Board
that the host gives its data: `[[boards]] port = "/dev/ttyUSB0"` in fleet.toml.

    board = PortBoard("port-00", "/dev/ttyACM0", model, x_shard, y_shard, ram_budget=65536)
    await board.provision(params)   # connect (HELLO), check model and arena, push the shard (DATA),
                                    # then PROVISION unless the board already holds these weights
    result = await board.train(task)

The board is reached exactly as `ftte devices` and SerialBoard reach a real one (no ESP32 reset
on open). EmulatedBoard (native.py) is this class over a native firmware process it starts.
"""

from __future__ import annotations

import contextlib
import logging

import numpy as np

from ftte.coordinator.board import BoardError, BoardInfo, Result, Task
from ftte.link.board import SerialBoard
from ftte.link.protocol import LinkTimings
from ftte.model import Model

log = logging.getLogger("ftte.link")


class PortBoard:
    """A coordinator Board behind a serial link, given its data shard (in a seeded shuffled
    order: the firmware's batches walk its store in order) when it joins."""

    def __init__(self, name: str, url: str | None, model: Model, x: np.ndarray, y: np.ndarray, ram_budget: int, *,
                 seed: int = 0, timings: LinkTimings = LinkTimings(), transport: str = "serial",
                 description: str | None = None):
        if len(x) != len(y) or len(y) == 0:
            raise ValueError(f"{name}: needs samples with as many labels, got {len(x)} and {len(y)}")
        self.info = BoardInfo(name, ram_budget, transport, description or f"{url}, {len(y)} samples")
        self.url = url
        self._model = model
        self._x, self._y = np.asarray(x, np.float32), np.asarray(y, np.int32)
        self._seed, self._timings = seed, timings
        self.board: SerialBoard | None = None
        self.samples_pushed = 0

    async def _open(self) -> str:
        """The port or URL to connect to (EmulatedBoard starts its process here)."""
        assert self.url is not None
        return self.url

    async def _start(self) -> SerialBoard:
        url = await self._open()
        board = await SerialBoard.connect(url, self._model, timings=self._timings, info=self.info)
        try:
            self._check_arena(url, board)
            await self._push_shard(url, board)
        except BaseException:
            await board.close()
            raise
        self.board = board
        return board

    def _check_arena(self, url: str, board: SerialBoard) -> None:
        announced = board.hello.ram_budget
        if announced < self.info.ram_budget:
            raise BoardError(f"{self.info.board_id} ({url}): the board announces {announced:,} B of training "
                             f"arena, fleet.toml gives it ram = {self.info.ram_budget:,} B: set ram to at most "
                             f"{announced:,} for this board")

    async def _push_shard(self, url: str, board: SerialBoard) -> None:
        """DATA: the shard in a seeded random order, cut to what the board stores (a warning says so)."""
        per_sample = 4 * int(np.prod(self._x.shape[1:])) + 4
        fits = board.hello.data_capacity // per_sample
        if fits == 0:
            raise BoardError(f"{self.info.board_id} ({url}): the board stores no sample of {per_sample} B "
                             f"({board.hello.data_capacity:,} B of sample storage)")
        order = np.random.default_rng(self._seed).permutation(len(self._y))
        if len(order) > fits:
            log.warning("%s (%s): its shard has %d samples, the board stores %d: %d pushed",
                        self.info.board_id, url, len(order), fits, fits)
            order = order[:fits]
        await board.push_data(self._x[order], self._y[order])
        self.samples_pushed = len(order)

    # ---- the Board interface ------------------------------------------------------------------

    async def provision(self, params: np.ndarray) -> None:
        board = self.board or await self._start()
        await board.provision(params)

    async def train(self, task: Task) -> Result:
        if self.board is None:
            raise BoardError(f"{self.info.board_id}: not connected (provision first)")
        return await self.board.train(task)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.board is not None:
                await self.board.close()
