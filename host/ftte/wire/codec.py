"""Encoding and decoding of frames, through the C codec (ftte_wire.h).

    encode(msg) -> bytes             one frame as it goes on the wire (COBS, 0x00 delimiter)
    decode(data) -> Message          exactly one frame back into its dataclass
    StreamDecoder().feed(chunk)      bytes as they arrive -> messages; corrupt frames raise

Corrupt input never crashes or hangs the decoder: a frame is either a valid message or a
WireError naming the problem (BadCRC, BadCOBS, FrameTooLarge, TruncatedFrame,
UnknownMessageType, ...), and the decoder resynchronises on the next 0x00.
"""

from __future__ import annotations

from collections.abc import Iterator

from ftte.native import ffi, lib
from ftte.wire.errors import Status, TruncatedFrame, WireError, check, wire_error
from ftte.wire.messages import MESSAGE_CLASSES, Message, MsgType

#: Limits, from the header.
WIRE_VERSION: int = lib.FTTE_WIRE_VERSION
MAX_PAYLOAD: int = lib.FTTE_WIRE_MAX_PAYLOAD
MAX_FRAME: int = lib.FTTE_WIRE_MAX_FRAME
MIN_FRAME: int = lib.FTTE_WIRE_MIN_FRAME
MAX_ENCODED: int = lib.FTTE_WIRE_MAX_ENCODED
TAG_SIZE: int = lib.FTTE_WIRE_TAG_SIZE
FLAG_AUTH: int = lib.FTTE_WIRE_FLAG_AUTH


def encode(msg: Message) -> bytes:
    """The bytes on the wire of one message: its frame COBS-encoded, then 0x00.

    msg.seq is the frame's sequence number; msg.tag, when not None, its 16-byte auth tag
    (and sets the AUTH flag)."""
    keep: list = []
    c_msg = msg.to_c(keep)
    flags, tag = 0, ffi.NULL
    if msg.tag is not None:
        if len(msg.tag) != TAG_SIZE:
            raise ValueError(f"auth tag must be {TAG_SIZE} bytes, got {len(msg.tag)}")
        flags, tag = FLAG_AUTH, ffi.from_buffer("uint8_t[]", bytes(msg.tag))
    if not 0 <= msg.seq <= 0xFFFF:
        raise ValueError(f"seq must be a uint16, got {msg.seq}")
    out = ffi.new("uint8_t[]", MAX_ENCODED)
    n = check(lib.ftte_wire_encode(c_msg, flags, msg.seq, tag, out, MAX_ENCODED),
              f"encoding {msg.TYPE.name}")
    return bytes(ffi.buffer(out, n))


def frame_size(msg: Message) -> int:
    """Bytes of the message's frame before COBS: what must fit the peer's max_frame."""
    return lib.FTTE_WIRE_OVERHEAD + len(payload(msg)) + (TAG_SIZE if msg.tag is not None else 0)


def payload(msg: Message) -> bytes:
    """The message's payload bytes (the C pack function's output)."""
    keep: list = []
    out = ffi.new("uint8_t[]", MAX_PAYLOAD)
    n = check(lib.ftte_msg_pack(msg.to_c(keep), out, MAX_PAYLOAD), f"packing {msg.TYPE.name}")
    return bytes(ffi.buffer(out, n))


def _message_from_frame(frame, c_msg) -> Message:
    """The dataclass of a parsed frame; raises the unpack error (BadLength, BadField...)."""
    status = lib.ftte_wire_decode(frame, c_msg)
    kind = MsgType(frame.type)
    if status != lib.FTTE_WIRE_OK:
        raise wire_error(status, f"{kind.name} frame seq {frame.seq}")
    tag = bytes(ffi.buffer(frame.tag, TAG_SIZE)) if frame.tag != ffi.NULL else None
    return MESSAGE_CLASSES[kind].from_c(c_msg, seq=frame.seq, tag=tag)


class StreamDecoder:
    """Turns a byte stream into messages, like the board's receive path.

    `max_frame` is the receive buffer (the largest frame accepted, before COBS). A frame that
    is corrupt or does not fit raises (from feed) or is yielded (from events) as a WireError;
    the bytes after it are kept, and decoding continues with the next frame.
    """

    def __init__(self, max_frame: int = MAX_FRAME):
        if not lib.FTTE_WIRE_OVERHEAD <= max_frame:
            raise ValueError(f"max_frame must be at least {lib.FTTE_WIRE_OVERHEAD}")
        self.max_frame = min(max_frame, MAX_FRAME)
        self._buf = ffi.new("uint8_t[]", self.max_frame)
        self._dec = ffi.new("ftte_wire_decoder *")
        check(lib.ftte_wire_decoder_init(self._dec, self._buf, self.max_frame), "decoder init")
        self._frame = ffi.new("ftte_wire_frame *")
        self._msg = ffi.new("ftte_msg *")
        self._used = ffi.new("size_t *")
        self._pending = b""
        self.frames = 0  #: valid messages decoded
        self.errors = 0  #: frames refused

    def events(self, data: bytes = b"") -> Iterator[Message | WireError]:
        """Messages and refused frames (WireError instances, not raised), in stream order."""
        data = self._pending + bytes(data)
        self._pending = b""
        src = ffi.from_buffer("uint8_t[]", data)
        pos = 0
        while pos < len(data):
            r = lib.ftte_wire_decoder_feed(self._dec, src + pos, len(data) - pos, self._used, self._frame)
            pos += self._used[0]
            if r == 0:
                continue
            if r > 0:
                try:
                    event = _message_from_frame(self._frame, self._msg)
                    self.frames += 1
                except WireError as e:
                    event = e
                    self.errors += 1
            else:
                event = wire_error(r, "frame refused by the stream decoder")
                self.errors += 1
            self._pending = data[pos:]  # kept if the caller stops here (or feed raises)
            yield event
            self._pending = b""

    def feed(self, data: bytes = b"") -> Iterator[Message]:
        """Messages completed by `data` (with what earlier calls left). Raises the WireError of
        a refused frame; the input after it stays buffered: call feed() again to go on."""
        for event in self.events(data):
            if isinstance(event, WireError):
                raise event
            yield event

    @property
    def pending(self) -> bool:
        """True while part of a frame has arrived without its delimiter."""
        return bool(self._pending) or bool(lib.ftte_wire_decoder_pending(self._dec))

    def close(self) -> None:
        """End of stream: raises TruncatedFrame if a frame was cut off."""
        partial = self.pending
        lib.ftte_wire_decoder_reset(self._dec)
        self._pending = b""
        if partial:
            raise TruncatedFrame("stream ended inside a frame (no 0x00 delimiter)")

    def reset(self) -> None:
        """Forgets a partial frame (e.g. after reopening the port)."""
        lib.ftte_wire_decoder_reset(self._dec)
        self._pending = b""


def decode(data: bytes, max_frame: int = MAX_FRAME) -> Message:
    """Exactly one frame (its COBS bytes and the 0x00 delimiter; leading 0x00 allowed) back into
    its message. Raises the WireError of a bad frame, TruncatedFrame without a delimiter."""
    decoder = StreamDecoder(max_frame)
    messages = list(decoder.feed(data))
    if not messages:
        if decoder.pending or any(data):
            raise TruncatedFrame(f"{len(data)} bytes hold no complete frame (no 0x00 delimiter)")
        raise TruncatedFrame("no frame: empty input")
    if len(messages) > 1 or decoder.pending:
        raise ValueError(f"expected one frame, found more in {len(data)} bytes")
    return messages[0]


def status_name(status: int) -> str:
    """Name of a C status, e.g. 'BAD_CRC'."""
    return Status(status).name
