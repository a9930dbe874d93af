"""The host's serial link (ftte.transport.serial, ftte.link) against the native board firmware:

- ports open without resetting an ESP32 (created unopened, DTR and RTS inactive, then opened);
- socket:// URLs work (the board's --stdio mode behind a TCP socket, as QEMU serves a UART);
- frames lost or damaged in either direction are recovered by resends (same seq), duplicate
  detection on both sides and, for a body that arrives corrupt, a restarted transfer; the
  result is bit-identical to the same task on a clean link;
- a port that never answers raises LinkTimeout within timeout x (retries + 1);
- `ftte devices` names the FTTE boards among the ports it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from ftte.aggregation import ParameterIndex, flat_parameters
from ftte.cli import main as ftte_main
from ftte.coordinator.board import Hyper, Task
from ftte.link import BoardLink, LinkTimeout, LinkTimings, SerialBoard
from ftte.link.native import NativeBoardProcess
from ftte.model import LayerUpdate, UpdateSpec
from ftte.transport import SerialTransport
from ftte.transport import serial as serial_transport
from ftte.wire import Message, ProvisionChunk, UpdateChunk, WireError, crc32, decode, encode
from ftte.wire.messages import Ack
from ftte.wire.transfer import f32_to_le
from ftte.zoo import reference_model

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CC", "cc")) is None and
                                not os.environ.get("FTTE_NATIVE_BOARD"), reason="no C compiler")


@pytest.fixture(scope="module")
def model():
    return reference_model("digits_mlp").build(0)


@pytest.fixture(scope="module")
def samples():
    data = reference_model("digits_mlp").data()
    return data.x_train[:64].reshape(64, -1).astype(np.float32), data.y_train[:64].astype(np.int32)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


# ---- opening a port -----------------------------------------------------------------------------

def test_opening_a_port_never_raises_dtr_or_rts(monkeypatch):
    """An ESP32 dev board resets on a DTR/RTS edge: the port must be created unopened, both lines
    set inactive, and only then opened."""
    calls: list[tuple[str, object]] = []

    class Spy:
        def __init__(self, url, **kwargs):
            calls.append(("create", (url, kwargs.get("do_not_open"))))

        def __setattr__(self, name, value):
            calls.append((name, value))

        def open(self):
            calls.append(("open", None))

    monkeypatch.setattr(serial_transport.serial, "serial_for_url", Spy)
    serial_transport.open_serial("/dev/ttyUSB7")
    assert calls[0] == ("create", ("/dev/ttyUSB7", True))
    assert set(calls[1:3]) == {("dtr", False), ("rts", False)}
    assert calls[3] == ("open", None) and len(calls) == 4


def test_a_port_that_cannot_be_opened_says_which():
    with pytest.raises(ConnectionError, match="cannot open /dev/does-not-exist"):
        serial_transport.open_serial("/dev/does-not-exist")


def test_a_port_that_never_answers_times_out_in_bounded_time():
    """A pseudo-terminal with nothing behind it: no HELLO within timeout x (retries + 1)."""
    master, slave = pty.openpty()
    path = os.ttyname(slave)

    async def main():
        link = BoardLink(await SerialTransport.open(path), LinkTimings(timeout=0.1, retries=2))
        try:
            started = time.monotonic()
            with pytest.raises(LinkTimeout, match="no HELLO in 0.3 s"):
                await link.handshake()
            assert time.monotonic() - started < 0.6
        finally:
            await link.close()

    try:
        run(main())
    finally:
        os.close(master)
        os.close(slave)


# ---- socket:// ----------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def board_on_a_socket(binary: Path):
    """The native board in --stdio mode, behind a TCP server: socket://127.0.0.1:<port>."""
    processes = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        proc = await asyncio.create_subprocess_exec(str(binary), "--stdio", stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.DEVNULL)
        processes.append(proc)

        async def pump(src, dst):
            with contextlib.suppress(Exception):
                while data := await src.read(4096):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pump(reader, proc.stdin), pump(proc.stdout, writer))

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"socket://127.0.0.1:{port}"
    finally:
        server.close()
        for proc in processes:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


def test_a_board_behind_a_socket_url(binary, model, samples):
    x, y = samples
    params = flat_parameters(model)
    spec = UpdateSpec.of(model, {5: LayerUpdate("full")})

    async def main():
        async with board_on_a_socket(binary) as url:
            board = await SerialBoard.connect(url, model)
            try:
                await board.provision(params)
                await board.push_data(x, y)
                result = await board.train(Task(1, 1, spec, params[ParameterIndex.of(model).indices(spec)], Hyper()))
                assert result.samples == 10 * 16 and np.isfinite(result.delta).all()
                assert (await board.rehello()).weights_crc != 0
            finally:
                await board.close()

    run(main())


# ---- a lossy link ---------------------------------------------------------------------------------

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


class Lossy:
    """A transport between the link and a real board that loses or damages chosen frames.

    `out(msg, count)` decides for each frame the host sends, `into(msg, count)` for each frame
    the board sends (count: how many frames of that type passed so far): "drop", "damage" (one
    byte altered: a CRC error), "body" (a chunk's data altered and re-encoded: a valid frame
    whose transfer body no longer matches its CRC) or None."""

    def __init__(self, inner: SerialTransport, out=None, into=None):
        self.inner, self.name = inner, inner.name
        self.out, self.into = out or (lambda m, n: None), into or (lambda m, n: None)
        self.seen: dict[tuple[str, type], int] = {}
        self.done: list[str] = []
        self._buffer = b""

    def _count(self, direction: str, msg: Message) -> int:
        key = (direction, type(msg))
        self.seen[key] = self.seen.get(key, 0) + 1
        return self.seen[key]

    @staticmethod
    def _apply(action: str | None, msg: Message, frame: bytes) -> bytes:
        if action == "drop":
            return b""
        if action == "damage":
            return damaged(msg)
        if action == "body":
            data = bytearray(msg.data)
            data[0] ^= 0x01
            return encode(type(msg)(msg.offset, bytes(data), seq=msg.seq))
        return frame

    async def send(self, data: bytes) -> None:
        try:
            msg = decode(data)
        except (WireError, ValueError):
            return await self.inner.send(data)
        action = self.out(msg, self._count("out", msg))
        if action:
            self.done.append(f"out {action} {type(msg).__name__} seq {msg.seq}")
        if frame := self._apply(action, msg, data):
            await self.inner.send(frame)

    async def receive(self) -> bytes:
        while True:
            self._buffer += await self.inner.receive()
            *frames, self._buffer = self._buffer.split(b"\x00")
            passed = b""
            for body in frames:
                frame = body + b"\x00"
                try:
                    msg = decode(frame)
                except (WireError, ValueError):
                    passed += frame
                    continue
                action = self.into(msg, self._count("in", msg))
                if action:
                    self.done.append(f"in {action} {type(msg).__name__} seq {msg.seq}")
                passed += self._apply(action, msg, frame)
            if passed:
                return passed

    async def close(self) -> None:
        await self.inner.close()


async def connect_lossy(binary, model, out=None, into=None):
    proc = await NativeBoardProcess.start(binary)
    lossy = Lossy(await SerialTransport.open(proc.path), out, into)
    link = BoardLink(lossy, LinkTimings(timeout=0.3, retries=4))
    hello = await link.handshake()
    return proc, lossy, SerialBoard(link, model, hello)


def test_lost_and_damaged_frames_are_recovered(binary, model, samples):
    """PROVISION: a chunk damaged on the way (the board's ERROR makes the host resend at once),
    the ACK of another lost (the host resends after its timeout, the board acknowledges the
    duplicate again); DATA: a chunk whose body was altered (BAD_HASH: the transfer restarts);
    UPDATE: the host's ACK of a chunk lost (the board resends it, the host acknowledges the
    duplicate again) and an update chunk damaged on its way to the host. The update is
    bit-identical to the same task on a clean link."""
    x, y = samples
    params = flat_parameters(model) * np.float32(0.9)
    spec = UpdateSpec.full(model)
    values = params[ParameterIndex.of(model).indices(spec)]
    task = Task(4, 2, spec, values, Hyper(0.05, 7, 16, 0.9))

    def out(msg, n):
        if isinstance(msg, ProvisionChunk) and n == 2:
            return "damage"
        if type(msg).__name__ == "DataChunk" and n == 1:
            return "body"
        if isinstance(msg, Ack) and msg.acked_type == UpdateChunk.TYPE and msg.received > 0 and n == 3:
            return "drop"
        return None

    def into(msg, n):
        if isinstance(msg, Ack) and msg.acked_type == ProvisionChunk.TYPE and n == 4:
            return "drop"
        if isinstance(msg, UpdateChunk) and n == 2:
            return "damage"
        return None

    async def main():
        proc, lossy, board = await connect_lossy(binary, model, out, into)
        try:
            await board.provision(params)
            assert (await board.rehello()).weights_crc == crc32(f32_to_le(params))
            await board.push_data(x, y)
            lossy_result = await board.train(task)
        finally:
            await board.close()
            await proc.stop()
        assert len(lossy.done) == 5, lossy.done
        assert board.link.resends >= 2

        clean_proc, _, clean = await connect_lossy(binary, model)
        try:
            await clean.provision(params)
            await clean.push_data(x, y)
            clean_result = await clean.train(task)
        finally:
            await clean.close()
            await clean_proc.stop()
        assert np.array_equal(lossy_result.delta.view(np.uint32), clean_result.delta.view(np.uint32))
        assert lossy_result.loss_before == clean_result.loss_before

    run(main())


def test_an_update_for_another_task_is_refused(binary, model, samples):
    """The host answers an UPDATE whose task id it did not ask for with ERROR UNEXPECTED; the
    board then gives that update up."""
    x, y = samples
    params = flat_parameters(model)
    spec = UpdateSpec.bias_only(model)

    async def main():
        proc = await NativeBoardProcess.start(binary)
        board = await SerialBoard.connect(proc.path, model, timings=LinkTimings(timeout=0.3, retries=1,
                                                                                 silence=1.0))
        try:
            await board.provision(params)
            await board.push_data(x, y)
            from ftte.link import selection_of
            from ftte.model.io import layout_hash
            from ftte.wire import Task as WireTask

            index = ParameterIndex.of(model).indices(spec)
            await board.link.send_transfer(WireTask(8, 1, layout_hash(model), 0.1, 0.0, 2, 0, 8,
                                                    selection_of(model, spec), params[index]))
            with pytest.raises(LinkTimeout):
                await board.link.receive_update(9, timeout=0.8)
            pong = await board.ping()
            assert pong.state.name == "IDLE"
        finally:
            await board.close()
            await proc.stop()

    run(main())


# ---- ftte devices -------------------------------------------------------------------------------

def test_ftte_devices_names_the_boards(binary, capsys):
    master, slave = pty.openpty()  # a serial port with no board behind it
    silent = os.ttyname(slave)

    async def start():
        return await NativeBoardProcess.start(binary, board_id=0xB0A4D)

    loop = asyncio.new_event_loop()
    proc = loop.run_until_complete(start())
    try:
        status = ftte_main(["devices", proc.path, silent, "--timeout", "0.2", "--json"])
        rows = {row["port"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
        assert status == 0
        assert rows[proc.path]["ftte"]["board_id"] == "00000000000b0a4d"
        assert rows[proc.path]["ftte"]["layout_hash"] == "0x1d840023"
        assert rows[silent]["ftte"] is False and "no HELLO" in rows[silent]["error"]
        assert ftte_main(["devices", silent, "--timeout", "0.1"]) == 1
        assert "no: " in capsys.readouterr().out
        assert ftte_main(["devices", proc.path, "--no-probe"]) == 0
        assert "not probed" in capsys.readouterr().out
    finally:
        loop.run_until_complete(proc.stop())
        loop.close()
        os.close(master)
        os.close(slave)


# ---- the QEMU boards: the firmware on a Cortex-M4F and an RV32IMC, over their emulated UARTs ---

from qemu_boards import pio_image, qemu_board  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("env_name", ["m4f_board", "rv32_board"])
def test_a_qemu_board_trains_the_same_update_within_float_tolerance(env_name, model, samples):
    """Handshake, (M4F) provisioning, samples, one task of the top two layers with momentum; the
    update matches the in-process kernels within float tolerance (the boards' libm computes the
    softmax's exp and log differently; RV32 has no FPU and runs soft float)."""
    from board_replay import Replay

    elf = pio_image(env_name)
    x, y = samples[0][:48], samples[1][:48]
    params = flat_parameters(model)
    if env_name == "m4f_board":
        params = params * np.float32(1.01)  # the RV32 run keeps the compiled-in weights
    spec = UpdateSpec.of(model, {3: LayerUpdate("full"), 5: LayerUpdate("full")})
    index = ParameterIndex.of(model).indices(spec)
    hyper = Hyper(lr=0.1, local_steps=6, batch=16, momentum=0.9)

    async def main():
        async with qemu_board(env_name, elf, model) as board:
            hello = board.hello
            assert hello.layout_hash == 0x1D840023 and hello.ram_budget == 65536 and hello.max_frame == 1024
            assert hello.board_id == (b"M4FQEMU1" if env_name == "m4f_board" else b"RV32QEMU")
            sent = board.link.frames_sent
            await board.provision(params)
            assert (board.link.frames_sent > sent) == (env_name == "m4f_board")
            await board.push_data(x, y)
            started = time.perf_counter()
            result = await board.train(Task(1, 4, spec, params[index], hyper))
            elapsed = time.perf_counter() - started
            assert (await board.rehello()).weights_crc != 0
            return result, elapsed

    result, elapsed = asyncio.run(asyncio.wait_for(main(), 60))
    delta, loss_before, loss_after, used = Replay(model, params, x, y).task(spec, params[index], hyper)
    same = np.count_nonzero(result.delta.view(np.uint32) == delta.view(np.uint32))
    print(f"\n{env_name}: task round trip {elapsed:.2f} s (training {result.train_seconds:.3f} s), "
          f"{same} of {delta.size} deltas bit-identical, largest difference {np.abs(result.delta - delta).max():.2g}")
    assert result.samples == used
    np.testing.assert_allclose(result.delta, delta, rtol=1e-3, atol=1e-6)
    assert result.loss_before == pytest.approx(loss_before, rel=1e-5)
    assert result.loss_after == pytest.approx(loss_after, rel=1e-4)
