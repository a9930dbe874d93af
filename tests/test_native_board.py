"""The board firmware, run natively: the firmware core (firmware/core), its native port
(firmware/ports/native), the wire codec and the kernels, built with the host compiler and driven
over a pseudo-terminal through the host's real serial path (ftte.transport.serial, ftte.link).

- the handshake reports the compiled-in model (layout hash, weights CRC), budget and buffers;
- provisioned weights are stored (HELLO's weights CRC) and not sent again when held;
- the UPDATE of a task equals, bit for bit, what ftte.train.Trainer computes in-process on the
  same samples in the firmware's batch order (docs/firmware.md), for several update specs, with
  and without momentum, over consecutive tasks;
- malformed, oversized, out-of-order, duplicated and unexpected frames get an ERROR (or their
  ACK again) and the board keeps working (the same bit-identical task afterwards);
- a board that vanishes raises LinkLost on the host at once, and a silent one LinkTimeout;
- a running task answers PING with its progress, refuses other work with BUSY, and stops on
  HELLO_REQUEST.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ftte.aggregation import ParameterIndex, flat_parameters, mean_square
from ftte.coordinator.board import BoardError, Hyper, Task
from ftte.link import BoardLink, BoardRefused, LinkLost, LinkTimings, SerialBoard, selection_of
from ftte.link.native import NativeBoardProcess
from ftte.model import LayerUpdate, Model, UpdateSpec
from ftte.model.io import c_source, layout_hash
from ftte.wire import (Ack, BoardState, Busy, Data, DataChunk, DataHeader, Error, Hello, HelloRequest,
                       Message, MsgType, OutOfMemory, Ping, Pong, Provision, ProvisionChunk, Status, TaskChunk,
                       UpdateHeader, crc32, encode, transfer_messages)
from ftte.wire import Task as WireTask
from ftte.wire.transfer import f32_to_le
from ftte.zoo import reference_model

from board_replay import Replay, assert_same_bits

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CC", "cc")) is None and
                                not os.environ.get("FTTE_NATIVE_BOARD"), reason="no C compiler")


# ---- fixtures and helpers -------------------------------------------------------------------

@pytest.fixture(scope="module")
def model() -> Model:
    return reference_model("digits_mlp").build(0)


@pytest.fixture(scope="module")
def samples() -> tuple[np.ndarray, np.ndarray]:
    data = reference_model("digits_mlp").data()
    return data.x_train[:100].reshape(100, -1).astype(np.float32), data.y_train[:100].astype(np.int32)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


@contextlib.asynccontextmanager
async def native_board(binary: Path, model: Model, **start):
    """A fresh native board process and a SerialBoard connected to it over its pty."""
    proc = await NativeBoardProcess.start(binary, **start)
    board = None
    try:
        board = await SerialBoard.connect(proc.path, model, timings=LinkTimings(timeout=0.5, retries=3))
        yield proc, board
    finally:
        if board is not None:
            await board.close()
        await proc.stop()


SPECS = {
    "full": lambda m: UpdateSpec.full(m),
    "top layer + 3 channels": lambda m: UpdateSpec.of(m, {5: LayerUpdate("full"),
                                                           3: LayerUpdate("channels", (1, 5, 30))}),
    "bias only": lambda m: UpdateSpec.bias_only(m),
}


async def expect(link: BoardLink, kind: type, timeout: float = 2.0) -> Message:
    """The next message from the board, which must be a `kind`."""
    event = await link.receive_message(timeout)
    assert isinstance(event, kind), f"expected {kind.__name__}, got {event!r}"
    return event


async def expect_error(link: BoardLink, status: Status, frame: Message | None = None, detail: int | None = None):
    error = await expect(link, Error)
    assert error.code == -status, f"expected {status.name}, got {error.exception()}"
    if frame is not None:
        assert (error.frame_seq, error.frame_type) == (frame.seq, frame.TYPE)
    if detail is not None:
        assert error.detail == detail
    return error


def damaged(msg: Message, at: int = 9) -> bytes:
    """The message's frame with one byte altered under an intact COBS encoding: a CRC error."""
    from ftte.native import ffi, lib

    wire = encode(msg)
    raw = ffi.new("uint8_t[]", len(wire))
    n = lib.ftte_wire_cobs_decode(wire[:-1], len(wire) - 1, raw, len(wire))
    frame = bytearray(ffi.buffer(raw, n))
    frame[at] ^= 0x40
    out = ffi.new("uint8_t[]", 2 * len(frame) + 2)
    m = lib.ftte_wire_cobs_encode(bytes(frame), len(frame), out, 2 * len(frame) + 2)
    return bytes(ffi.buffer(out, m)) + b"\x00"


async def still_answers(link: BoardLink) -> None:
    """The board answers PING: it survived whatever came before."""
    nonce = link.next_seq()
    await link.send_message(Ping(nonce, seq=link.next_seq()))
    pong = await expect(link, Pong)
    assert pong.nonce == nonce and pong.state == BoardState.IDLE


# ---- the model compiled in ----------------------------------------------------------------------

def test_the_committed_model_source_is_current(model):
    """firmware/core/model/ftte_model_data.{h,c} are write_c_source's output for the digits MLP
    (seed 0); regenerate with `python firmware/core/model/generate.py`."""
    header, source = c_source(model, layout_hash(model), origin="ftte.zoo digits_mlp (seed 0)")
    committed = ROOT / "firmware" / "core" / "model"
    assert (committed / "ftte_model_data.h").read_text() == header
    assert (committed / "ftte_model_data.c").read_text() == source


# ---- handshake and provisioning -----------------------------------------------------------------

def test_handshake_reports_the_compiled_in_model_budget_and_buffers(binary, model):
    async def main():
        async with native_board(binary, model, ram=40000, board_id=0xF77E0001, max_frame=512) as (_, board):
            hello = board.hello
            assert hello.layout_hash == layout_hash(model)
            assert hello.caps & 0x02  # WEIGHTS: the compiled-in ones
            assert hello.weights_crc == crc32(f32_to_le(flat_parameters(model)))
            assert (hello.ram_budget, hello.max_frame, hello.wire_version) == (40000, 512, 1)
            assert hello.board_id == bytes.fromhex("00000000f77e0001")
            assert hello.data_capacity > 0 and hello.data_capacity % (4 * 64 + 4) == 0
            assert board.info.board_id == "00000000f77e0001" and board.info.ram_budget == 40000

    run(main())


def test_a_board_for_another_model_is_refused_with_a_clear_error(binary):
    async def main():
        proc = await NativeBoardProcess.start(binary)
        try:
            other = reference_model("accel_cnn1d").build(0)
            with pytest.raises(BoardError, match="runs model layout 0x1d840023"):
                await SerialBoard.connect(proc.path, other)
        finally:
            await proc.stop()

    run(main())


def test_provisioned_weights_are_stored_and_not_sent_again(binary, model):
    params = flat_parameters(model) * np.float32(1.5)

    async def main():
        async with native_board(binary, model) as (proc, board):
            sent = board.link.frames_sent
            await board.provision(params)
            assert board.link.frames_sent > sent + 1  # header and chunks
            hello = await board.rehello()
            assert hello.weights_crc == crc32(f32_to_le(params)) and hello.caps & 0x02
            # A new session with a board that holds these weights: nothing to send.
            await board.close()
            again = await SerialBoard.connect(proc.path, model)
            try:
                sent = again.link.frames_sent
                await again.provision(params)
                assert again.link.frames_sent == sent
            finally:
                await again.close()

    run(main())


# ---- the update, bit for bit -------------------------------------------------------------------

def test_updates_are_bit_identical_to_the_in_process_kernels(binary, model, samples):
    """Six consecutive tasks (three specs, with and without momentum, a batch that does not
    divide the samples) on one board; each UPDATE equals the in-process replay bit for bit."""
    x, y = samples
    params = flat_parameters(model)
    rng = np.random.default_rng(1)

    async def main():
        async with native_board(binary, model) as (_, board):
            await board.provision(params)
            await board.push_data(x, y)
            replay = Replay(model, params, x, y)
            timings = []
            task_id = 1
            for name, make in SPECS.items():
                spec = make(model)
                index = ParameterIndex.of(model).indices(spec)
                for momentum in (0.0, 0.9):
                    values = (params[index] + rng.normal(0, 0.01, index.size)).astype(np.float32)
                    hyper = Hyper(lr=0.1, local_steps=13, batch=16, momentum=momentum)
                    started = time.perf_counter()
                    result = await board.train(Task(task_id, 7, spec, values, hyper))
                    timings.append(time.perf_counter() - started)
                    delta, loss_before, loss_after, used = replay.task(spec, values, hyper)
                    assert_same_bits(result.delta, delta)
                    assert (result.task_id, result.base_version, result.samples) == (task_id, 7, used)
                    assert result.loss_before == pytest.approx(loss_before, rel=1e-6), name
                    assert result.loss_after == pytest.approx(loss_after, rel=1e-5), name
                    assert result.variance == pytest.approx(mean_square(delta), rel=1e-5)
                    task_id += 1
            print(f"\ntask round trip over the pty (13 steps of 16): "
                  f"{1000 * min(timings):.1f}-{1000 * max(timings):.1f} ms")

    run(main())


def test_epochs_visit_every_sample_once(binary, model, samples):
    """local_steps 0, local_epochs 2: ceil(100 / 16) = 7 batches an epoch, the last one short."""
    x, y = samples
    params = flat_parameters(model)
    spec = UpdateSpec.of(model, {5: LayerUpdate("full")})
    index = ParameterIndex.of(model).indices(spec)

    async def main():
        async with native_board(binary, model) as (_, board):
            await board.provision(params)
            await board.push_data(x, y)
            link = board.link
            task = WireTask(3, 1, layout_hash(model), 0.05, 0.0, 0, 2, 16, selection_of(model, spec), params[index])
            await link.send_transfer(task)
            update = await link.receive_update(3, timeout=10)
            assert update.samples_used == 200
            delta, *_ = Replay(model, params, x, y).task(spec, params[index], Hyper(0.05, 14, 16, 0.0))
            assert_same_bits(update.deltas, delta)

    run(main())


# ---- bad frames ---------------------------------------------------------------------------------

def test_bad_frames_get_an_error_and_the_board_keeps_working(binary, model, samples):
    x, y = samples
    params = flat_parameters(model)
    hash_ = layout_hash(model)

    async def main():
        async with native_board(binary, model, max_frame=256) as (_, board):
            link = board.link
            seq = link.next_seq

            # Noise, then a frame whose CRC is wrong, then a COBS-broken one.
            await link.send_bytes(b"\x13\x37garbage\x00")
            await expect(link, Error)
            await link.send_bytes(damaged(Ping(1, seq=seq())))
            await expect_error(link, Status.BAD_CRC)
            await link.send_bytes(encode(Ping(1, seq=seq()))[:-2] + b"\x00")  # a byte lost
            await expect(link, Error)
            await still_answers(link)

            # Oversized: a frame larger than the 256-byte buffer the board announced.
            big = ProvisionChunk(0, bytes(1000), seq=seq())
            await link.send_message(big)
            await expect_error(link, Status.TOO_LARGE)
            await still_answers(link)

            # An unknown message type with a valid CRC; a fixed message of the wrong length.
            from ftte.native import ffi, lib

            out = ffi.new("uint8_t[]", 64)
            n = lib.ftte_wire_frame_encode(0x7F, 0, seq(), b"\x01\x02", 2, ffi.NULL, out, 64)
            await link.send_bytes(bytes(ffi.buffer(out, n)))
            await expect_error(link, Status.UNKNOWN_TYPE)
            n = lib.ftte_wire_frame_encode(int(MsgType.PING), 0, seq(), b"\x01\x02", 2, ffi.NULL, out, 64)
            await link.send_bytes(bytes(ffi.buffer(out, n)))
            await expect_error(link, Status.BAD_LENGTH)

            # Unexpected: a chunk with no transfer open, an UPDATE (the board's direction), a task
            # before any sample is stored, a task for another model, weights for another model.
            chunk = DataChunk(0, bytes(8), seq=seq())
            await link.send_message(chunk)
            await expect_error(link, Status.UNEXPECTED, chunk)
            update = UpdateHeader(1, 1, 1, 0.0, 0.0, 0.0, 0, 1, 4, 0, seq=seq())
            await link.send_message(update)
            await expect_error(link, Status.UNEXPECTED, update)
            spec = UpdateSpec.full(model)
            index = ParameterIndex.of(model).indices(spec)
            task = WireTask(1, 1, hash_, 0.1, 0.0, 1, 0, 4, selection_of(model, spec), params[index])
            head = transfer_messages(task, 256, first_seq=seq())[0]
            await link.send_message(head)
            await expect_error(link, Status.UNEXPECTED, head, detail=2)  # no samples
            other = transfer_messages(Provision(hash_ ^ 1, params), 256, first_seq=seq())[0]
            await link.send_message(other)
            await expect_error(link, Status.MODEL_MISMATCH, other, detail=hash_)

            # Out of order: a DATA transfer whose second chunk skips ahead, then goes on right.
            msgs = transfer_messages(Data(0, x[:10], y[:10]), 256, first_seq=seq())
            link._seq = (msgs[-1].seq + 1) & 0xFFFF
            await link.send_message(msgs[0])
            await expect(link, Ack)
            await link.send_message(msgs[2])
            await expect_error(link, Status.OUT_OF_ORDER, msgs[2], detail=0)
            for msg in msgs[1:]:
                await link.send_message(msg)
                ack = await expect(link, Ack)
                assert ack.acked_seq == msg.seq
            # A duplicate of the last chunk (its ACK was lost): the same ACK again, applied once.
            await link.send_message(msgs[-1])
            again = await expect(link, Ack)
            assert (again.acked_seq, again.received) == (ack.acked_seq, ack.received)

            # A body whose CRC does not match: refused with the last chunk (BAD_HASH).
            bad = transfer_messages(Data(10, x[10:20], y[10:20]), 256, first_seq=seq())
            link._seq = (bad[-1].seq + 1) & 0xFFFF
            bad[0].body_crc ^= 1
            for msg in bad[:-1]:
                await link.send_message(msg)
                await expect(link, Ack)
            await link.send_message(bad[-1])
            await expect_error(link, Status.BAD_HASH, bad[-1])
            # Labels out of range are refused too, and the store keeps what it had.
            labels = y[10:20].copy()
            labels[3] = 10
            with pytest.raises(BoardRefused, match="BAD_FIELD"):
                await link.send_transfer(Data(10, x[10:20], labels))
            await still_answers(link)

            # After all that the board trains as if nothing happened: 10 samples stored.
            await board.provision(params)
            hyper = Hyper(0.1, 5, 4, 0.0)
            result = await board.train(Task(9, 2, spec, params[index], hyper))
            delta, *_ = Replay(model, params, x[:10], y[:10]).task(spec, params[index], hyper)
            assert_same_bits(result.delta, delta)

    run(main())


def test_random_bytes_and_frames_never_stop_the_board(binary, model):
    """Two hundred random byte strings and corrupted frames in a row; the board answers each
    delimiter with an ERROR or nothing, and then PING."""
    rng = np.random.default_rng(7)
    frames = [encode(m) for m in (Ping(3, seq=1), HelloRequest(4124, seq=2),
                                  DataHeader(0, 1, 64, 260, 0, seq=3), TaskChunk(0, bytes(16), seq=4))]

    async def main():
        async with native_board(binary, model, max_frame=256) as (_, board):
            link = board.link
            for i in range(200):
                if i % 2:
                    data = bytearray(frames[i % len(frames)])
                    data[rng.integers(0, len(data) - 1)] ^= int(rng.integers(1, 256))
                else:
                    data = bytearray(rng.integers(0, 256, int(rng.integers(1, 600)), dtype=np.uint8).tobytes())
                await link.send_bytes(bytes(data) + b"\x00")
            await asyncio.sleep(0.2)
            while await link.receive_message(0.05) is not None:
                pass
            await link.handshake()
            await still_answers(link)

    run(main())


def test_a_task_that_does_not_fit_the_budget_is_refused_early(binary, model, samples):
    x, y = samples
    params = flat_parameters(model)
    spec = UpdateSpec.full(model)
    index = ParameterIndex.of(model).indices(spec)

    async def main():
        async with native_board(binary, model, ram=30000) as (_, board):
            await board.provision(params)
            await board.push_data(x, y)
            with pytest.raises(BoardRefused) as refused:
                await board.train(Task(1, 1, spec, params[index], Hyper(0.1, 1, 16, 0.9)))
            assert isinstance(refused.value.error, OutOfMemory) and refused.value.error.detail == 30000
            small = UpdateSpec.of(model, {5: LayerUpdate("full")})
            await board.train(Task(2, 1, small, params[ParameterIndex.of(model).indices(small)], Hyper()))

    run(main())


# ---- a running task -----------------------------------------------------------------------------

def long_task(model: Model, params: np.ndarray, task_id: int = 5) -> WireTask:
    spec = UpdateSpec.full(model)
    index = ParameterIndex.of(model).indices(spec)
    return WireTask(task_id, 1, layout_hash(model), 0.01, 0.0, 10_000_000, 0, 16, selection_of(model, spec),
                    params[index])


def test_a_training_board_answers_ping_refuses_work_and_stops_on_hello_request(binary, model, samples):
    x, y = samples
    params = flat_parameters(model)

    async def main():
        async with native_board(binary, model) as (_, board):
            link = board.link
            await board.provision(params)
            await board.push_data(x, y)
            await link.send_transfer(long_task(model, params))
            await asyncio.sleep(0.2)
            await link.send_message(Ping(11, seq=link.next_seq()))
            pong = await expect(link, Pong)
            assert pong.state == BoardState.TRAINING and 0 <= pong.progress < 1000
            header = transfer_messages(Data(0, x[:4], y[:4]), 4124, first_seq=link.next_seq())[0]
            await link.send_message(header)
            error = await expect_error(link, Status.BUSY, header)
            assert isinstance(error.exception(), Busy)
            hello = await link.handshake()  # stops the task: no UPDATE comes
            assert isinstance(hello, Hello)
            await still_answers(link)
            assert await link.receive_message(0.3) is None

    run(main())


def test_a_vanished_board_raises_link_lost_at_once(binary, model, samples):
    x, y = samples
    params = flat_parameters(model)
    spec = UpdateSpec.full(model)
    index = ParameterIndex.of(model).indices(spec)

    async def main():
        async with native_board(binary, model) as (proc, board):
            await board.provision(params)
            await board.push_data(x, y)
            training = asyncio.ensure_future(board.train(Task(1, 1, spec, params[index], Hyper(0.01, 10_000_000, 16))))
            await asyncio.sleep(0.3)
            assert not training.done()
            proc.kill()
            started = time.monotonic()
            with pytest.raises(LinkLost, match="link lost"):
                await asyncio.wait_for(training, 5)
            assert time.monotonic() - started < 1.0
            with pytest.raises(BoardError):  # and every later call fails the same way
                await board.train(Task(2, 1, spec, params[index], Hyper()))

    run(main())


def test_a_silent_board_raises_link_timeout(binary, model):
    """A board that stops answering without its port closing (a hung MCU): a stopped process."""
    import signal

    async def main():
        async with native_board(binary, model) as (proc, board):
            board.link.timings = LinkTimings(timeout=0.2, retries=1)
            os.kill(proc.process.pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                with pytest.raises(BoardError, match="no PONG"):
                    await board.ping()
                assert time.monotonic() - started < 1.0
            finally:
                os.kill(proc.process.pid, signal.SIGCONT)

    run(main())


# ---- PlatformIO builds the same program -----------------------------------------------------------

@pytest.mark.slow
def test_pio_builds_the_native_board_and_it_is_bit_identical(model, samples):
    """`pio run -e native_board` (offline, tools/setup-platformio's core; incremental in .pio)
    builds a program that serves the same protocol and computes the same bits as the host-built
    one."""
    core = Path(os.environ.get("PLATFORMIO_CORE_DIR", ROOT / ".platformio"))
    if not (core / "packages" / "tool-scons" / ".piopm").is_file():
        pytest.skip(f"PlatformIO is not set up offline in {core} (run tools/setup-platformio)")
    env = dict(os.environ, PLATFORMIO_CORE_DIR=str(core))
    build = subprocess.run([sys.executable, "-m", "platformio", "run", "-e", "native_board"], cwd=ROOT,
                           env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stdout + build.stderr
    program = Path(os.environ.get("PLATFORMIO_BUILD_DIR", ROOT / ".pio" / "build")) / "native_board" / "program"
    x, y = samples
    params = flat_parameters(model)
    spec = SPECS["top layer + 3 channels"](model)
    index = ParameterIndex.of(model).indices(spec)
    hyper = Hyper(0.1, 9, 16, 0.9)

    async def main():
        async with native_board(program, model) as (_, board):
            await board.provision(params)
            await board.push_data(x, y)
            result = await board.train(Task(1, 1, spec, params[index], hyper))
        delta, *_ = Replay(model, params, x, y).task(spec, params[index], hyper)
        assert_same_bits(result.delta, delta)

    run(main())
