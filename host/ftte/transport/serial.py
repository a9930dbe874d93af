"""Serial ports, pseudo-terminals and pyserial URLs (socket://host:port, rfc2217://...) as an
asyncio byte transport.

pyserial blocks, so a reader thread per port reads whatever arrives and hands it to the event
loop; writes run in a worker thread, in pieces, while the reader keeps reading (a board that
blocks on its own transmit while the host blocks on a long write would otherwise deadlock a
pty). Opening a port never resets an ESP32 dev board: the port is created unopened, DTR and RTS
are set inactive, and only then is it opened (docs/firmware.md, "The host link").
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass

import serial
import serial.tools.list_ports

from ftte.transport.base import LinkClosed

#: Bytes per write call: small enough that the reader thread keeps pace on a pty.
WRITE_PIECE = 1024
#: The reader thread's read timeout: how long close() may wait for it.
READ_POLL = 0.05


def open_serial(url: str, baudrate: int = 115200, read_timeout: float = READ_POLL,
                write_timeout: float | None = 10.0) -> serial.SerialBase:
    """Opens a port or pyserial URL without touching DTR/RTS: created unopened, both lines set
    inactive, then opened (an ESP32's auto-reset circuit sees no edge). Raises LinkClosed with
    the port's name when it cannot be opened."""
    try:
        port = serial.serial_for_url(url, do_not_open=True, baudrate=baudrate, timeout=read_timeout,
                                     write_timeout=write_timeout)
        port.dtr = False
        port.rts = False
        port.open()
    except (serial.SerialException, OSError, ValueError) as error:
        raise LinkClosed(f"cannot open {url}: {error}") from None
    return port


class SerialTransport:
    """A pyserial port as an asyncio byte transport (see ftte.transport.ByteTransport)."""

    def __init__(self, port: serial.SerialBase, name: str, loop: asyncio.AbstractEventLoop):
        self.name = name
        self.bytes_in = 0
        self.bytes_out = 0
        self._port = port
        self._loop = loop
        self._queue: asyncio.Queue[bytes | LinkClosed] = asyncio.Queue()
        self._error: LinkClosed | None = None
        self._closing = False
        self._write_lock = asyncio.Lock()
        self._reader = threading.Thread(target=self._read_loop, name=f"ftte-serial-reader {name}",
                                         daemon=True)
        self._reader.start()

    @classmethod
    async def open(cls, url: str, baudrate: int = 115200) -> "SerialTransport":
        port = await asyncio.to_thread(open_serial, url, baudrate)
        return cls(port, url, asyncio.get_running_loop())

    # ---- receiving: the reader thread --------------------------------------------------------

    def _post(self, item: bytes | LinkClosed) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens any more
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def _read_loop(self) -> None:
        try:
            while not self._closing:
                waiting = self._port.in_waiting
                data = self._port.read(min(max(waiting, 1), 65536))
                if data:
                    self._post(bytes(data))
        except Exception as error:  # noqa: BLE001 - pyserial raises SerialException, OSError, ...
            if not self._closing:
                self._post(LinkClosed(f"{self.name}: link lost ({error})"))

    async def receive(self) -> bytes:
        if self._error is not None:
            raise self._error
        item = await self._queue.get()
        if isinstance(item, LinkClosed):
            self._error = item
            raise item
        self.bytes_in += len(item)
        return item

    # ---- sending ---------------------------------------------------------------------------

    def _write_all(self, data: bytes) -> None:
        try:
            for start in range(0, len(data), WRITE_PIECE):
                self._port.write(data[start:start + WRITE_PIECE])
        except (serial.SerialException, OSError) as error:
            raise LinkClosed(f"{self.name}: write failed ({error})") from None

    async def send(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        if self._closing:
            raise LinkClosed(f"{self.name}: closed")
        async with self._write_lock:
            await asyncio.to_thread(self._write_all, bytes(data))
        self.bytes_out += len(data)

    # ---- closing -----------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        with contextlib.suppress(Exception):
            self._port.cancel_read()
        await asyncio.to_thread(self._reader.join, 1.0)
        with contextlib.suppress(Exception):
            self._port.close()


@dataclass(frozen=True)
class PortInfo:
    device: str
    description: str
    hwid: str


def list_serial_ports() -> list[PortInfo]:
    """The serial ports the OS knows (USB adapters, native USB boards, UARTs); pseudo-terminals
    and URLs are not listed: name them explicitly."""
    ports = serial.tools.list_ports.comports()
    return [PortInfo(p.device, p.description or "", p.hwid or "") for p in sorted(ports, key=lambda p: p.device)]
