"""One dataclass per wire message, converted to and from the C structs of ftte_wire.h.

Each dataclass has exactly the fields of its C struct (ftte_msg_hello -> Hello ...; the tests
check the names against the compiled struct), plus two keyword-only frame attributes: `seq`,
the sender's sequence number, and `tag`, the 16-byte authentication tag (None: no tag).
Byte layouts, offsets, sizes and checks are the C codec's; nothing here knows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import ClassVar

from ftte.native import ffi, lib
from ftte.wire.errors import BadField

#: ftte_msg_type, from the header: MsgType.TASK_CHUNK == lib.FTTE_MSG_TASK_CHUNK.
MsgType = IntEnum("MsgType", {
    name.removeprefix("FTTE_MSG_"): value
    for name, value in sorted(ffi.typeof("ftte_msg_type").relements.items(), key=lambda kv: kv[1])
})

#: ftte_wire_state, the board state of PONG.
BoardState = IntEnum("BoardState", {
    name.removeprefix("FTTE_WIRE_STATE_"): value
    for name, value in sorted(ffi.typeof("ftte_wire_state").relements.items(), key=lambda kv: kv[1])
})


@dataclass
class Message:
    """Base of every message. TYPE is the wire type; C_MEMBER the member of ftte_msg.u."""

    TYPE: ClassVar[MsgType]
    C_MEMBER: ClassVar[str]
    #: Fields holding a C enum value, shown as the IntEnum member when the value is known.
    ENUMS: ClassVar[dict[str, type[IntEnum]]] = {}

    seq: int = field(default=0, kw_only=True)
    tag: bytes | None = field(default=None, kw_only=True, repr=False)

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "float" and isinstance(value, (int, float)):
                # the value the wire carries: float32 (so that decode(encode(m)) == m)
                setattr(self, f.name, float(ffi.cast("float", value)))
        for name, enum in self.ENUMS.items():
            value = getattr(self, name)
            if value in enum._value2member_map_:
                setattr(self, name, enum(value))

    @classmethod
    def payload_fields(cls) -> list[str]:
        """The C struct's field names, in order (every field but seq and tag)."""
        return [f.name for f in fields(cls) if f.name not in ("seq", "tag")]

    # -- C conversion ------------------------------------------------------------------------

    def to_c(self, keep: list) -> "ffi.CData":
        """A new `ftte_msg *` holding this message; `keep` receives buffers that must outlive it."""
        m = ffi.new("ftte_msg *")
        m.type = int(self.TYPE)
        member = getattr(m.u, self.C_MEMBER)
        for name in self.payload_fields():
            value = getattr(self, name)
            try:
                setattr(member, name, _to_c_value(value))
            except (OverflowError, TypeError, IndexError) as e:
                raise BadField(f"{type(self).__name__}.{name} = {value!r} does not fit the wire "
                               f"field ({e})") from None
        return m

    @classmethod
    def from_c(cls, m, *, seq: int = 0, tag: bytes | None = None) -> "Message":
        member = getattr(m.u, cls.C_MEMBER)
        values = {name: _from_c_value(getattr(member, name)) for name in cls.payload_fields()}
        return cls(**values, seq=seq, tag=tag)


def _to_c_value(value):
    if isinstance(value, (bytes, bytearray)):
        return list(value)
    return int(value) if isinstance(value, IntEnum) else value


def _from_c_value(value):
    if isinstance(value, ffi.CData):  # a fixed-size uint8_t array
        return bytes(ffi.buffer(value))
    return value


@dataclass
class HelloRequest(Message):
    """Host -> board: starts a session; the board answers HELLO."""

    TYPE = MsgType.HELLO_REQUEST
    C_MEMBER = "hello_request"
    max_frame: int
    wire_version: int = lib.FTTE_WIRE_VERSION


@dataclass
class Hello(Message):
    """Board -> host: identity, resources, model layout and weights hash."""

    TYPE = MsgType.HELLO
    C_MEMBER = "hello"
    board_id: bytes
    firmware_version: int
    ram_budget: int
    flash_size: int
    cpu_hz: int
    layout_hash: int
    weights_crc: int
    data_capacity: int
    max_frame: int
    wire_version: int = lib.FTTE_WIRE_VERSION
    caps: int = 0

    def to_c(self, keep):
        if len(self.board_id) != lib.FTTE_WIRE_BOARD_ID_SIZE:
            raise BadField(f"Hello.board_id must be {lib.FTTE_WIRE_BOARD_ID_SIZE} bytes, "
                           f"got {len(self.board_id)}")
        return super().to_c(keep)


@dataclass
class Ping(Message):
    TYPE = MsgType.PING
    C_MEMBER = "ping"
    nonce: int = 0


@dataclass
class Pong(Message):
    TYPE = MsgType.PONG
    C_MEMBER = "pong"
    nonce: int
    uptime_ms: int
    state: BoardState = BoardState.IDLE
    progress: int = 0
    ENUMS = {"state": BoardState}


@dataclass
class Ack(Message):
    """A transfer frame (header or chunk) was accepted."""

    TYPE = MsgType.ACK
    C_MEMBER = "ack"
    acked_seq: int
    acked_type: MsgType
    received: int = 0
    ENUMS = {"acked_type": MsgType}


@dataclass
class Error(Message):
    """A frame was refused or something failed; `code` is -Status."""

    TYPE = MsgType.ERROR
    C_MEMBER = "error"
    frame_seq: int
    frame_type: MsgType | int
    code: int
    detail: int = 0
    ENUMS = {"frame_type": MsgType}

    def exception(self):
        """The WireError subclass instance this ERROR stands for."""
        from ftte.wire.errors import wire_error

        kind = self.frame_type.name if isinstance(self.frame_type, MsgType) else self.frame_type
        about = (f"peer refused frame seq {self.frame_seq} ({kind})" if self.frame_type
                 else "peer reported an error")
        return wire_error(-self.code, f"{about}, detail {self.detail:#x}", detail=self.detail)


@dataclass
class ProvisionHeader(Message):
    """Host -> board: the full weights follow in ProvisionChunks."""

    TYPE = MsgType.PROVISION
    C_MEMBER = "provision"
    layout_hash: int
    body_bytes: int
    body_crc: int


@dataclass
class TaskHeader(Message):
    """Host -> board: a training task; selection and values follow in TaskChunks."""

    TYPE = MsgType.TASK
    C_MEMBER = "task"
    task_id: int
    model_version: int
    layout_hash: int
    learning_rate: float
    momentum: float
    local_steps: int
    local_epochs: int
    batch_size: int
    selection_bytes: int
    param_count: int
    body_bytes: int
    body_crc: int


@dataclass
class UpdateHeader(Message):
    """Board -> host: a trained update; the deltas follow in UpdateChunks."""

    TYPE = MsgType.UPDATE
    C_MEMBER = "update"
    task_id: int
    base_version: int
    samples_used: int
    loss_before: float
    loss_after: float
    delta_mean_sq: float
    train_ms: int
    param_count: int
    body_bytes: int
    body_crc: int


@dataclass
class DataHeader(Message):
    """Host -> board: training samples; features then labels follow in DataChunks."""

    TYPE = MsgType.DATA
    C_MEMBER = "data"
    first_sample: int
    sample_count: int
    features: int
    body_bytes: int
    body_crc: int


@dataclass
class Chunk(Message):
    """A piece of a transfer body: `data` at byte `offset`."""

    C_MEMBER = "chunk"
    offset: int
    data: bytes

    @classmethod
    def payload_fields(cls):
        return ["offset", "data"]

    def to_c(self, keep):
        m = ffi.new("ftte_msg *")
        m.type = int(self.TYPE)
        data = ffi.from_buffer("uint8_t[]", bytes(self.data))
        keep.append(data)
        try:
            m.u.chunk.offset = self.offset
        except OverflowError:
            raise BadField(f"{type(self).__name__}.offset = {self.offset} does not fit u32") from None
        m.u.chunk.len = len(self.data)
        m.u.chunk.data = data
        return m

    @classmethod
    def from_c(cls, m, *, seq=0, tag=None):
        c = m.u.chunk
        return cls(offset=c.offset, data=bytes(ffi.buffer(c.data, c.len)), seq=seq, tag=tag)


@dataclass
class ProvisionChunk(Chunk):
    TYPE = MsgType.PROVISION_CHUNK


@dataclass
class TaskChunk(Chunk):
    TYPE = MsgType.TASK_CHUNK


@dataclass
class UpdateChunk(Chunk):
    TYPE = MsgType.UPDATE_CHUNK


@dataclass
class DataChunk(Chunk):
    TYPE = MsgType.DATA_CHUNK


#: Every message class by wire type.
MESSAGE_CLASSES: dict[MsgType, type[Message]] = {
    cls.TYPE: cls for cls in (HelloRequest, Hello, Ping, Pong, Ack, Error, ProvisionHeader,
                              TaskHeader, UpdateHeader, DataHeader, ProvisionChunk, TaskChunk,
                              UpdateChunk, DataChunk)
}

#: The chunk class of each transfer header class.
CHUNK_OF: dict[type[Message], type[Chunk]] = {
    ProvisionHeader: ProvisionChunk, TaskHeader: TaskChunk, UpdateHeader: UpdateChunk,
    DataHeader: DataChunk,
}
