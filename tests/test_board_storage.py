"""Provisioned weights that survive a reset (firmware/core/src/storage.c), on the native board
with --storage FILE standing in for a board's flash:

- a board provisioned once, killed and started again reports the stored weights in HELLO
  (weights_crc, WEIGHTS and PERSIST), so the host sends no new PROVISION, and its next task is
  bit-identical to the in-process kernels started from those weights;
- a damaged record (flipped bit, truncated head or body, empty, garbage, another model's) is
  detected and ignored: the board boots with its compiled-in weights, says so, and trains;
- a save that fails clears PERSIST; a board without storage never announces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest

from ftte.aggregation import ParameterIndex, flat_parameters
from ftte.coordinator.board import Hyper, Task
from ftte.link import LinkTimings, SerialBoard, describe_hello
from ftte.link.native import NativeBoardProcess
from ftte.model import LayerUpdate, Model, UpdateSpec
from ftte.native import lib
from ftte.wire import crc32
from ftte.wire.transfer import f32_to_le
from ftte.zoo import reference_model

from board_replay import Replay, assert_same_bits

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CC", "cc")) is None and
                                not os.environ.get("FTTE_NATIVE_BOARD"), reason="no C compiler")

PERSIST, WEIGHTS = lib.FTTE_WIRE_CAP_PERSIST, lib.FTTE_WIRE_CAP_WEIGHTS
HEAD = 24  # FTTE_BOARD_STORED_HEAD_BYTES


@pytest.fixture(scope="module")
def model() -> Model:
    return reference_model("digits_mlp").build(0)


@pytest.fixture(scope="module")
def samples() -> tuple[np.ndarray, np.ndarray]:
    data = reference_model("digits_mlp").data()
    return data.x_train[:64].reshape(64, -1).astype(np.float32), data.y_train[:64].astype(np.int32)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


@contextlib.asynccontextmanager
async def board_on(binary: Path, model: Model, storage: Path | None, log: list[str] | None = None):
    """A native board keeping its weights in `storage`; its stderr goes to `log` when it ends."""
    proc = await NativeBoardProcess.start(binary, storage=storage)
    board = None
    try:
        board = await SerialBoard.connect(proc.path, model, timings=LinkTimings(timeout=1.0, retries=3))
        yield proc, board
    finally:
        if board is not None:
            await board.close()
        await proc.stop()
        if log is not None:
            log.append(await proc.diagnostics())


def crc_of(params: np.ndarray) -> int:
    return crc32(f32_to_le(np.asarray(params, np.float32)))


SPEC = lambda m: UpdateSpec.of(m, {5: LayerUpdate("full"), 3: LayerUpdate("channels", (1, 5, 30))})  # noqa: E731


async def train_one(board: SerialBoard, model: Model, base: np.ndarray, x, y, task_id: int = 1):
    """One task on the board, checked bit for bit against the in-process replay from `base`."""
    spec = SPEC(model)
    index = ParameterIndex.of(model).indices(spec)
    values = (base[index] + np.float32(0.01)).astype(np.float32)
    hyper = Hyper(lr=0.1, local_steps=5, batch=16)
    result = await board.train(Task(task_id, 3, spec, values, hyper))
    delta, *_ = Replay(model, base, x, y).task(spec, values, hyper)
    assert_same_bits(result.delta, delta)


def test_weights_survive_a_restart_and_train_without_a_new_provision(binary, model, samples, tmp_path):
    x, y = samples
    flash = tmp_path / "board.flash"
    params = flat_parameters(model) * np.float32(1.5)
    logs: list[str] = []

    async def main():
        async with board_on(binary, model, flash, logs) as (proc, board):
            assert board.hello.caps & PERSIST and board.hello.caps & WEIGHTS
            assert board.hello.weights_crc == crc_of(flat_parameters(model))  # compiled in
            await board.provision(params)
            await board.ping()  # answered after the save (which follows the last ACK)
            proc.kill()  # a reset: no goodbye, nothing flushed by the board afterwards
            await proc.process.wait()
        assert flash.stat().st_size == HEAD + 4 * params.size

        async with board_on(binary, model, flash, logs) as (_, board):
            hello = board.hello
            assert hello.layout_hash == board.layout_hash
            assert hello.weights_crc == crc_of(params) and hello.caps & (PERSIST | WEIGHTS) == PERSIST | WEIGHTS
            assert f"weights 0x{crc_of(params):08x} kept across resets" in describe_hello(hello)  # ftte devices
            await board.push_data(x, y)
            sent = board.link.frames_sent
            await board.provision(params)  # the coordinator's join: nothing to send
            assert board.link.frames_sent == sent
            await train_one(board, model, params, x, y)

    run(main())
    assert "nothing stored" in logs[0] and "saved to" in logs[0]
    assert "stored weights loaded" in logs[1], logs[1]


@pytest.fixture(scope="module")
def record(binary, model, tmp_path_factory) -> bytes:
    """A good record: the digits MLP's weights x 2, as a board stores them."""
    flash = tmp_path_factory.mktemp("record") / "board.flash"

    async def main():
        async with board_on(binary, model, flash) as (_, board):
            await board.provision(flat_parameters(model) * np.float32(2))
            await board.ping()  # saved by now

    run(main())
    return flash.read_bytes()


def other_model(record: bytes) -> bytes:
    head = bytearray(record[:HEAD])
    head[8:12] = (0x12345678).to_bytes(4, "little")
    head[20:24] = zlib.crc32(bytes(head[:20])).to_bytes(4, "little")  # a whole head, another layout
    return bytes(head) + record[HEAD:]


DAMAGE = {
    "a flipped bit in the weights": lambda r: r[:1000] + bytes([r[1000] ^ 0x10]) + r[1001:],
    "a flipped bit in the head": lambda r: r[:13] + bytes([r[13] ^ 0x01]) + r[14:],
    "a torn write (body cut short)": lambda r: r[:HEAD + 4000],
    "a torn write (head cut short)": lambda r: r[:10],
    "an empty file": lambda r: b"",
    "garbage": lambda r: np.random.default_rng(5).bytes(len(r)),
    "the weights of another model": other_model,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_record_is_ignored_and_the_board_boots_its_compiled_in_weights(
        binary, model, samples, record, damage, tmp_path):
    x, y = samples
    flash = tmp_path / "board.flash"
    flash.write_bytes(DAMAGE[damage](record))
    log: list[str] = []

    async def main():
        async with board_on(binary, model, flash, log) as (_, board):
            compiled = flat_parameters(model)
            assert board.hello.weights_crc == crc_of(compiled) and board.hello.caps & WEIGHTS
            await board.push_data(x, y)
            await train_one(board, model, compiled, x, y)  # truly the compiled-in weights

    run(main())
    expected = "another model's" if "another model" in damage else "damaged"
    assert expected in log[0] and "compiled-in weights" in log[0], log[0]


def test_a_failed_save_clears_persist_and_no_storage_never_announces_it(binary, model, tmp_path):
    async def main():
        async with board_on(binary, model, tmp_path / "no-such-dir" / "board.flash") as (_, board):
            assert board.hello.caps & PERSIST  # nothing stored yet, storage attached
            await board.provision(flat_parameters(model) * np.float32(3))
            await board.ping()
            hello = await board.rehello()
            assert not hello.caps & PERSIST and hello.caps & WEIGHTS
        async with board_on(binary, model, None) as (_, board):
            assert not board.hello.caps & PERSIST

    run(main())
