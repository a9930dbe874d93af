"""A board behind a serial link (a port, a pseudo-terminal, a socket:// URL) as the coordinator's
Board: HELLO gives its BoardInfo, provision() sends PROVISION, train() sends TASK and waits for
the UPDATE.

    board = await SerialBoard.connect("/dev/ttyACM0", model)
    await board.provision(flat_parameters(model))
    result = await board.train(task)            # ftte.coordinator.board.Task -> Result
    await board.close()
"""

from __future__ import annotations

import numpy as np

from ftte.coordinator.board import BoardError, BoardInfo, Result, Task
from ftte.link.protocol import BoardLink, LinkError, LinkTimings
from ftte.model import Model, UpdateSpec
from ftte.model.io import layout_hash
from ftte.transport.base import LinkClosed
from ftte.transport.serial import SerialTransport
from ftte.native import lib
from ftte.wire import Data, Hello, LayerSelection, Pong, Provision, crc32
from ftte.wire import Task as WireTask
from ftte.wire.transfer import f32_to_le

#: HELLO caps bits: the board holds valid weights (its weights_crc is theirs); it keeps
#: provisioned weights across a reset.
CAP_WEIGHTS: int = lib.FTTE_WIRE_CAP_WEIGHTS
CAP_PERSIST: int = lib.FTTE_WIRE_CAP_PERSIST


def selection_of(model: Model, spec: UpdateSpec) -> tuple[LayerSelection, ...]:
    """The wire selection of an update spec (per layer: mode, and the channels of a CHANNELS
    layer out of its output channels)."""
    if len(spec.layers) != len(model.layers):
        raise ValueError(f"update spec has {len(spec.layers)} layers, the model {len(model.layers)}")
    return tuple(LayerSelection(u.mode, layer.channels, u.channels) if u.mode == "channels"
                 else LayerSelection(u.mode) for layer, u in zip(model.layers, spec.layers))


def describe_hello(hello: Hello) -> str:
    v = hello.firmware_version
    return (f"firmware {v >> 16}.{(v >> 8) & 0xFF}.{v & 0xFF}, model 0x{hello.layout_hash:08x}, "
            f"arena {hello.ram_budget:,} B, samples {hello.data_capacity:,} B, max frame {hello.max_frame}"
            + (f", weights 0x{hello.weights_crc:08x} kept across resets" if hello.caps & CAP_PERSIST else ""))


class SerialBoard:
    """One connected board. `info.board_id` is the HELLO's board id in hex unless an `info` is
    given (an emulated board keeps the name it was started with)."""

    def __init__(self, link: BoardLink, model: Model, hello: Hello, info: BoardInfo | None = None):
        self.link = link
        self.model = model
        link.hello = hello
        self.layout_hash = layout_hash(model)
        self.info = info or BoardInfo(hello.board_id.hex(), hello.ram_budget, "serial",
                                      f"{link.name}: {describe_hello(hello)}")
        self.provisioned_crc: int | None = None
        self.closed = False

    @classmethod
    async def connect(cls, url: str, model: Model, *, baudrate: int = 115200,
                      timings: LinkTimings = LinkTimings(), info: BoardInfo | None = None) -> "SerialBoard":
        """Opens the port (without resetting an ESP32), shakes hands and checks that the board
        runs `model`'s layout. Raises BoardError (LinkError) when it cannot."""
        try:
            transport = await SerialTransport.open(url, baudrate)
        except LinkClosed as error:
            raise LinkError(str(error)) from None
        link = BoardLink(transport, timings)
        try:
            hello = await link.handshake()
            expected = layout_hash(model)
            if hello.layout_hash != expected:
                raise LinkError(f"{url}: the board runs model layout 0x{hello.layout_hash:08x}, the host's "
                                f"model {model.name} is 0x{expected:08x}: flash firmware built for this model")
            return cls(link, model, hello, info)
        except BaseException:
            await link.close()
            raise

    @property
    def hello(self) -> Hello:
        """The board's latest HELLO (a session restart by the link renews it)."""
        assert self.link.hello is not None
        return self.link.hello

    # ---- the Board interface ------------------------------------------------------------------

    async def provision(self, params: np.ndarray) -> None:
        """Sends the full parameter vector, unless the board says (HELLO) it holds exactly these."""
        params = np.ascontiguousarray(params, np.float32).reshape(-1)
        expected = self.model.parameter_count()
        if params.size != expected:
            raise BoardError(f"{self.info.board_id}: provision of {params.size} values, the model has {expected}")
        crc = crc32(f32_to_le(params))
        if self.hello.caps & CAP_WEIGHTS and self.hello.weights_crc == crc and self.provisioned_crc is None:
            self.provisioned_crc = crc  # already there (flash, or an earlier session)
            return
        await self.link.send_transfer(Provision(self.layout_hash, params))
        self.provisioned_crc = crc

    async def train(self, task: Task) -> Result:
        if self.closed:
            raise BoardError(f"{self.info.board_id}: closed")
        values = np.ascontiguousarray(task.values, np.float32).reshape(-1)
        h = task.hyper
        wire_task = WireTask(task.task_id, task.version, self.layout_hash, h.lr, h.momentum, h.local_steps, 0,
                             h.batch, selection_of(self.model, task.spec), values)
        await self.link.send_transfer(wire_task)
        update = await self.link.receive_update(task.task_id)
        if update.deltas.size != values.size:
            raise BoardError(f"{self.info.board_id}: {update.deltas.size} deltas for {values.size} values")
        return Result(update.task_id, update.base_version, update.deltas, update.samples_used,
                      update.loss_before, update.loss_after, update.delta_mean_sq, update.train_ms / 1000.0)

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            await self.link.close()

    # ---- more than the interface ----------------------------------------------------------------

    async def push_data(self, x: np.ndarray, y: np.ndarray, first_sample: int = 0) -> None:
        """Stores samples on the board (DATA): x [n, ...] float32, y [n] labels. first_sample 0
        replaces the store; else the samples go at that index (at most the count stored)."""
        x = np.ascontiguousarray(x, np.float32).reshape(len(y), -1)
        y = np.ascontiguousarray(y, np.int32).reshape(-1)
        need = len(y) * (4 * x.shape[1] + 4)
        room = self.hello.data_capacity - first_sample * (4 * x.shape[1] + 4)
        if need > room:
            raise BoardError(f"{self.info.board_id}: {len(y)} samples need {need:,} B, the board stores "
                             f"{max(room, 0):,} B more")
        await self.link.send_transfer(Data(first_sample, x, y))

    async def ping(self) -> Pong:
        return await self.link.ping()

    async def rehello(self) -> Hello:
        """A new session: HELLO again (what the board holds now)."""
        return await self.link.handshake()
