"""Is there an FTTE board on this port? Open it (without resetting an ESP32), send HELLO_REQUEST,
wait briefly for a HELLO, close."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ftte.link.protocol import BoardLink, LinkError, LinkTimings
from ftte.transport.base import LinkClosed
from ftte.transport.serial import SerialTransport
from ftte.wire import Hello


@dataclass(frozen=True)
class ProbeResult:
    port: str
    hello: Hello | None = None  # the board's HELLO: an FTTE board
    error: str | None = None    # why not (cannot open, no answer)

    @property
    def is_board(self) -> bool:
        return self.hello is not None


async def probe(port: str, *, timeout: float = 0.5, retries: int = 1, baudrate: int = 115200) -> ProbeResult:
    """HELLO from `port` within timeout x (retries + 1) seconds, or why there is none."""
    try:
        transport = await SerialTransport.open(port, baudrate)
    except LinkClosed as error:
        return ProbeResult(port, error=str(error))
    link = BoardLink(transport, LinkTimings(timeout=timeout, retries=retries))
    try:
        return ProbeResult(port, hello=await link.handshake())
    except LinkError as error:
        return ProbeResult(port, error=str(error))
    finally:
        await link.close()


async def probe_all(ports: list[str], **kwargs) -> list[ProbeResult]:
    return list(await asyncio.gather(*(probe(p, **kwargs) for p in ports)))
