"""The byte transport interface the board link runs over."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class LinkClosed(ConnectionError):
    """The transport is gone: the port closed, the device vanished, the board process died."""


@runtime_checkable
class ByteTransport(Protocol):
    """A full-duplex byte stream to one board."""

    name: str  #: what to call it in messages: the port or URL

    async def send(self, data: bytes) -> None:
        """Writes all of data (in pieces, while the receive side keeps reading)."""

    async def receive(self) -> bytes:
        """The next bytes that arrived (at least one); raises LinkClosed once the link is gone."""

    async def close(self) -> None:
        """Releases the port; idempotent, never raises."""
