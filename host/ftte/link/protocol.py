"""The host's side of the wire protocol over one byte transport: handshake, stop-and-wait
transfers with timeouts and retries, receiving an UPDATE, PING.

    link = BoardLink(await SerialTransport.open(url))
    hello = await link.handshake()                  # HELLO_REQUEST -> HELLO
    await link.send_transfer(wire.Provision(...))   # header + chunks, each ACKed
    update = await link.receive_update(task_id)     # UPDATE + chunks, each ACKed by us

Every wait is bounded: a frame is resent (same seq) when its ACK does not come within
`timeout`; after `retries` resends the link restarts the session (HELLO_REQUEST) and the transfer
once, then gives up with LinkTimeout. A board that vanishes (its port closes, its process dies)
raises LinkLost at once. The board's refusals come back as BoardRefused carrying the matching
ftte.wire exception (ModelMismatch, OutOfMemory, Busy, ...). Operations on one link run one at a
time (a board does one thing at a time); the link serialises them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from ftte.coordinator.board import BoardError
from ftte.transport.base import ByteTransport, LinkClosed
from ftte.wire import (MAX_FRAME, Ack, BadHash, BoardState, Error, Hello, HelloRequest, Message,
                       MsgType, OutOfOrder, Ping, Pong, Status, TransferReceiver, UpdateChunk, UpdateHeader,
                       WireError, encode, transfer_messages)
from ftte.wire import Update as WireUpdate
from ftte.wire.transfer import Transfer

log = logging.getLogger(__name__)


class LinkError(BoardError):
    """The link to a board failed (the coordinator drops the board)."""


class LinkLost(LinkError):
    """The transport is gone: port closed, device unplugged, board process ended."""


class LinkTimeout(LinkError):
    """The board did not answer within the timeouts and retries."""


class BoardRefused(LinkError):
    """The board answered ERROR; `error` is the matching ftte.wire exception."""

    def __init__(self, message: str, error: WireError):
        super().__init__(f"{message}: {error}")
        self.error = error


@dataclass(frozen=True)
class LinkTimings:
    """Seconds and counts of the link's waits."""

    timeout: float = 1.0        # for an ACK (or HELLO, PONG) before the frame is sent again
    retries: int = 4            # resends of one frame before the session is restarted
    ping_interval: float = 1.0  # while waiting for an UPDATE: a PING this often
    silence: float = 5.0        # no answer at all for this long while waiting: the board is gone


class BoardLink:
    """One board's protocol session over a ByteTransport."""

    def __init__(self, transport: ByteTransport, timings: LinkTimings = LinkTimings(),
                 max_frame: int = MAX_FRAME):
        self.transport = transport
        self.timings = timings
        self.max_frame = max_frame          # the largest frame we accept (HELLO_REQUEST)
        self.hello: Hello | None = None     # the board's last HELLO
        self.frames_sent = 0
        self.resends = 0
        self._seq = 0
        self._inbox: asyncio.Queue[Message | WireError | LinkClosed] = asyncio.Queue()
        self._pump = asyncio.get_running_loop().create_task(self._receive_loop())
        self._busy = asyncio.Lock()

    @property
    def name(self) -> str:
        return self.transport.name

    @property
    def board_max_frame(self) -> int:
        if self.hello is None:
            raise LinkError(f"{self.name}: no HELLO yet (handshake first)")
        return self.hello.max_frame

    # ---- frames in and out -------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        from ftte.wire import StreamDecoder

        decoder = StreamDecoder(self.max_frame)
        try:
            while True:
                data = await self.transport.receive()
                for event in decoder.events(data):
                    self._inbox.put_nowait(event)
        except LinkClosed as error:
            self._inbox.put_nowait(error)

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (self._seq + 1) & 0xFFFF
        return seq

    async def _send(self, msg: Message) -> None:
        try:
            await self.transport.send(encode(msg))
        except LinkClosed as error:
            raise LinkLost(str(error)) from None
        self.frames_sent += 1

    async def _next(self, deadline: float) -> Message | WireError | None:
        """The next event from the board, or None at the deadline (time.monotonic())."""
        if not self._inbox.empty():
            event = self._inbox.get_nowait()
        else:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                event = await asyncio.wait_for(self._inbox.get(), remaining)
            except (asyncio.TimeoutError, TimeoutError):
                return None
        if isinstance(event, LinkClosed):
            self._inbox.put_nowait(event)  # every later wait sees it too
            raise LinkLost(str(event))
        return event

    def _drain(self) -> None:
        """Drops whatever arrived unasked (a boot HELLO, late answers)."""
        while not self._inbox.empty():
            event = self._inbox.get_nowait()
            if isinstance(event, LinkClosed):
                self._inbox.put_nowait(event)
                raise LinkLost(str(event))

    # ---- raw access (tests, tools): not to be mixed with an operation in progress -------------------

    def next_seq(self) -> int:
        """A fresh sequence number of ours."""
        return self._next_seq()

    async def send_message(self, msg: Message) -> None:
        """Sends one message as it is (its seq included), waiting for nothing."""
        await self._send(msg)

    async def send_bytes(self, data: bytes) -> None:
        """Sends raw bytes (a damaged or hand-made frame)."""
        try:
            await self.transport.send(data)
        except LinkClosed as error:
            raise LinkLost(str(error)) from None

    async def receive_message(self, timeout: float) -> Message | WireError | None:
        """The next message (or damaged frame, as its WireError) from the board, None after
        timeout seconds; raises LinkLost when the link is gone."""
        return await self._next(time.monotonic() + timeout)

    # ---- handshake, ping -----------------------------------------------------------------------

    async def handshake(self) -> Hello:
        """HELLO_REQUEST until a HELLO comes (timeout x (retries + 1) at most)."""
        async with self._busy:
            return await self._handshake()

    async def _handshake(self) -> Hello:
        self._drain()
        with contextlib.suppress(LinkLost):
            await self.transport.send(b"\x00")  # ends any garbage the board holds
        for _ in range(self.timings.retries + 1):
            await self._send(HelloRequest(max_frame=self.max_frame, seq=self._next_seq()))
            deadline = time.monotonic() + self.timings.timeout
            while (event := await self._next(deadline)) is not None:
                if isinstance(event, Hello):
                    self.hello = event
                    await self._settle()
                    return self.hello
            self.resends += 1
        raise LinkTimeout(f"{self.name}: no HELLO in {self._span():.1f} s: not an FTTE board, not "
                          "running, or at another baud rate")

    async def _settle(self) -> None:
        """A PING round trip after the HELLO: the HELLO may have been the boot one, sent before
        our request, with the answer still on its way. The board answers in order, so once the
        PONG is in, every HELLO before it has been seen (the last one is kept)."""
        nonce = self._next_seq()
        for _ in range(self.timings.retries + 1):
            await self._send(Ping(nonce, seq=self._next_seq()))
            deadline = time.monotonic() + self.timings.timeout
            while (event := await self._next(deadline)) is not None:
                if isinstance(event, Hello):
                    self.hello = event
                elif isinstance(event, Pong) and event.nonce == nonce:
                    return
            self.resends += 1
        raise LinkTimeout(f"{self.name}: HELLO, then no PONG in {self._span():.1f} s")

    def _span(self) -> float:
        return self.timings.timeout * (self.timings.retries + 1)

    async def ping(self) -> Pong:
        async with self._busy:
            nonce = self._next_seq()
            for _ in range(self.timings.retries + 1):
                await self._send(Ping(nonce, seq=self._next_seq()))
                deadline = time.monotonic() + self.timings.timeout
                while (event := await self._next(deadline)) is not None:
                    if isinstance(event, Pong) and event.nonce == nonce:
                        return event
                self.resends += 1
            raise LinkTimeout(f"{self.name}: no PONG in {self._span():.1f} s")

    # ---- sending a transfer ----------------------------------------------------------------------

    async def send_transfer(self, obj: Transfer) -> None:
        """Sends a Provision, Task or Data: each frame waits for its ACK (resent on timeout).
        A body the board found corrupt (BAD_HASH) or a lost chunk (OUT_OF_ORDER) restarts the
        transfer; so does a session restart after a frame went unanswered `retries` times
        (once). Other refusals raise BoardRefused; silence raises LinkTimeout."""
        async with self._busy:
            restarted = False
            for attempt in range(self.timings.retries + 1):
                messages = transfer_messages(obj, self.board_max_frame, first_seq=self._seq)
                self._seq = (self._seq + len(messages)) & 0xFFFF
                try:
                    for msg in messages:
                        await self._send_acked(msg)
                    return
                except BoardRefused as refused:
                    if not isinstance(refused.error, (BadHash, OutOfOrder)) or attempt == self.timings.retries:
                        raise
                    log.info("%s: %s; sending the transfer again", self.name, refused)
                except LinkTimeout:
                    if restarted:
                        raise
                    restarted = True
                    log.info("%s: frames unanswered; restarting the session", self.name)
                    await self._handshake()

    async def _send_acked(self, msg: Message) -> Ack:
        for _ in range(self.timings.retries + 1):
            await self._send(msg)
            deadline = time.monotonic() + self.timings.timeout
            while (event := await self._next(deadline)) is not None:
                if isinstance(event, Ack) and event.acked_seq == msg.seq and event.acked_type == msg.TYPE:
                    return event
                if isinstance(event, Error):
                    if event.frame_seq == msg.seq and event.frame_type == msg.TYPE:
                        raise BoardRefused(f"{self.name} refused {msg.TYPE.name} (seq {msg.seq})",
                                           event.exception())
                    if event.frame_type == 0:  # a frame of ours arrived damaged: resend now
                        break
            self.resends += 1
        raise LinkTimeout(f"{self.name}: no ACK for {msg.TYPE.name} (seq {msg.seq}) in {self._span():.1f} s")

    # ---- receiving the UPDATE ----------------------------------------------------------------------

    async def receive_update(self, task_id: int, timeout: float | None = None) -> WireUpdate:
        """Waits for the UPDATE of `task_id` and ACKs each of its frames (a duplicate frame gets
        its ACK again). While the board trains, a PING every ping_interval checks it is alive:
        silence for `silence` seconds raises LinkTimeout, and a board that is neither training
        nor sending (it reset, or gave the update up) raises LinkError. An ERROR about the task
        (a kernel failed) raises BoardRefused. `timeout` bounds the whole wait (None: none)."""
        async with self._busy:
            return await self._receive_update(task_id, timeout)

    async def _receive_update(self, task_id: int, timeout: float | None) -> WireUpdate:
        t = self.timings
        end = None if timeout is None else time.monotonic() + timeout
        receiver = TransferReceiver()
        last_ack: Ack | None = None
        heard = time.monotonic()
        next_ping = heard + t.ping_interval
        nonce: int | None = None
        while True:
            now = time.monotonic()
            if end is not None and now >= end:
                raise LinkTimeout(f"{self.name}: no UPDATE for task {task_id} within {timeout:.1f} s")
            if now - heard > t.silence:
                raise LinkTimeout(f"{self.name}: silent for {t.silence:.1f} s while training task {task_id}")
            if now >= next_ping:
                nonce = self._next_seq()
                await self._send(Ping(nonce, seq=self._next_seq()))
                next_ping = now + t.ping_interval
            deadline = next_ping if end is None else min(next_ping, end)
            event = await self._next(deadline)
            if event is None:
                continue
            heard = time.monotonic()
            if isinstance(event, Pong):
                if event.nonce == nonce and event.state == BoardState.IDLE and receiver.total == 0:
                    raise LinkError(f"{self.name}: the board is idle: task {task_id} was lost "
                                    "(the board reset, or gave its UPDATE up)")
                continue
            if isinstance(event, Error) and event.frame_type == MsgType.TASK:
                raise BoardRefused(f"{self.name}: task {task_id} failed on the board", event.exception())
            if isinstance(event, WireError):  # a damaged frame: say so, the board resends it now
                await self._send(Error(0, 0, event.code, seq=self._next_seq()))
                continue
            if not isinstance(event, (UpdateHeader, UpdateChunk)):
                continue  # a late ACK, a stale HELLO
            if last_ack is not None and event.seq == last_ack.acked_seq and event.TYPE == last_ack.acked_type:
                await self._send(Ack(last_ack.acked_seq, last_ack.acked_type, last_ack.received,
                                     seq=self._next_seq()))
                continue
            if isinstance(event, UpdateHeader) and event.task_id != task_id:
                await self._send(Error(event.seq, event.TYPE, -Status.UNEXPECTED, seq=self._next_seq()))
                continue
            try:
                done = receiver.accept(event)
            except WireError as error:
                await self._send(Error(event.seq, event.TYPE, error.code, seq=self._next_seq()))
                continue
            last_ack = Ack(event.seq, event.TYPE, receiver.received, seq=self._next_seq())
            await self._send(last_ack)
            if done is not None:
                return done

    # ---- closing -------------------------------------------------------------------------------------

    async def close(self) -> None:
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._pump
        await self.transport.close()
