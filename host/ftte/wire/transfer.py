"""Transfers: a Task, Update, Provision or Data with its body, split into a header frame and
chunk frames that fit the peer's receive buffer, and put back together on the other side.

    msgs = transfer_messages(task, max_frame=256)   # TaskHeader + TaskChunks, seq 0, 1, ...
    wire = [encode(m) for m in msgs]                # stop-and-wait: one frame, then its ACK
    rx = TransferReceiver()
    for m in msgs: done = rx.accept(m)              # the Task, when the last chunk is in

Bodies are built and parsed by the C codec: the selection encoding, the float32/int32
little-endian arrays, the CRC-32, the offset of the values, the chunk size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ftte.native import ffi, lib
from ftte.wire.codec import encode
from ftte.wire.errors import BadField, UnexpectedMessage, check
from ftte.wire.messages import (CHUNK_OF, Ack, Chunk, DataHeader, Message, ProvisionHeader,
                                TaskHeader, UpdateHeader)

#: Update modes by name ('frozen', 'bias', 'channels', 'full', as in ftte.model.spec), from
#: the kernels' ftte_update_mode.
UPDATE_MODES: dict[str, int] = {
    name.removeprefix("FTTE_UPDATE_").lower(): value
    for name, value in ffi.typeof("ftte_update_mode").relements.items()
}
_MODE_NAMES = {v: k for k, v in UPDATE_MODES.items()}


# ---- arrays and hashes, through C ------------------------------------------------------------

def crc32(data: bytes, crc: int = 0) -> int:
    """The wire's CRC-32 (the weights hash of HELLO and PROVISION), continuing from `crc`."""
    return lib.ftte_wire_crc32(crc, ffi.from_buffer("uint8_t[]", bytes(data)), len(data))


def f32_to_le(values) -> bytes:
    a = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    out = bytearray(a.nbytes)
    lib.ftte_wire_f32_to_le(ffi.from_buffer("float[]", a), a.size, ffi.from_buffer("uint8_t[]", out))
    return bytes(out)


def f32_from_le(data: bytes) -> np.ndarray:
    out = np.empty(len(data) // 4, dtype=np.float32)
    lib.ftte_wire_f32_from_le(ffi.from_buffer("uint8_t[]", bytes(data)), out.size,
                              ffi.from_buffer("float[]", out))
    return out


def i32_to_le(values) -> bytes:
    a = np.ascontiguousarray(values, dtype=np.int32).reshape(-1)
    out = bytearray(a.nbytes)
    lib.ftte_wire_i32_to_le(ffi.from_buffer("int32_t[]", a), a.size, ffi.from_buffer("uint8_t[]", out))
    return bytes(out)


def i32_from_le(data: bytes) -> np.ndarray:
    out = np.empty(len(data) // 4, dtype=np.int32)
    lib.ftte_wire_i32_from_le(ffi.from_buffer("uint8_t[]", bytes(data)), out.size,
                              ffi.from_buffer("int32_t[]", out))
    return out


# ---- parameter selection ---------------------------------------------------------------------

@dataclass(frozen=True)
class LayerSelection:
    """What one layer trains: mode 'frozen', 'bias', 'channels' or 'full'; for 'channels',
    the layer's output channel count and the selected channels."""

    mode: str = "frozen"
    out_channels: int = 0
    channels: tuple[int, ...] = ()

    def __post_init__(self):
        if self.mode not in UPDATE_MODES:
            raise BadField(f"update mode must be one of {sorted(UPDATE_MODES)}, got {self.mode!r}")
        object.__setattr__(self, "channels", tuple(sorted(set(int(c) for c in self.channels))))
        if self.mode != "channels" and (self.channels or self.out_channels):
            raise BadField(f"channels given for mode {self.mode!r}")


def _c_selection(layers) -> "ffi.CData":
    s = ffi.new("ftte_wire_selection *")
    lib.ftte_wire_selection_init(s)
    for index, layer in enumerate(layers):
        check(lib.ftte_wire_selection_add_layer(s, UPDATE_MODES[layer.mode], layer.out_channels),
              f"selection layer {index} ({layer.mode}, {layer.out_channels} channels)")
        for c in layer.channels:
            check(lib.ftte_wire_selection_set_channel(s, index, c),
                  f"selection layer {index}: channel {c} of {layer.out_channels}")
    return s


def encode_selection(layers) -> bytes:
    """The selection encoding of a TASK body (per CHANNELS layer, the codec picks a bitmask or
    an index list, whichever is smaller)."""
    s = _c_selection(layers)
    out = ffi.new("uint8_t[]", lib.FTTE_WIRE_MAX_SELECTION_BYTES)
    n = check(lib.ftte_wire_selection_encode(s, out, lib.FTTE_WIRE_MAX_SELECTION_BYTES), "selection")
    return bytes(ffi.buffer(out, n))


def decode_selection(data: bytes) -> tuple[LayerSelection, ...]:
    s = ffi.new("ftte_wire_selection *")
    check(lib.ftte_wire_selection_decode(ffi.from_buffer("uint8_t[]", bytes(data)), len(data), s),
          "selection")
    layers = []
    for index in range(s.num_layers):
        c = s.layers[index]
        mode = _MODE_NAMES[c.mode]
        channels = tuple(ch for ch in range(c.out_channels)
                         if lib.ftte_wire_selection_has_channel(s, index, ch) == 1)
        layers.append(LayerSelection(mode, c.out_channels, channels))
    return tuple(layers)


# ---- transfers -------------------------------------------------------------------------------

@dataclass
class Task:
    """A training task: hyperparameters, the selected subset and its current values."""

    task_id: int
    model_version: int
    layout_hash: int
    learning_rate: float
    momentum: float
    local_steps: int
    local_epochs: int
    batch_size: int
    selection: tuple[LayerSelection, ...]
    values: np.ndarray = field(repr=False)

    def header_and_body(self) -> tuple[TaskHeader, bytes]:
        sel = encode_selection(self.selection)
        c_task = ffi.new("ftte_msg_task *", {"selection_bytes": len(sel)})
        pad = lib.ftte_wire_task_values_offset(c_task) - len(sel)
        body = sel + bytes(pad) + f32_to_le(self.values)
        header = TaskHeader(self.task_id, self.model_version, self.layout_hash, self.learning_rate,
                            self.momentum, self.local_steps, self.local_epochs, self.batch_size,
                            selection_bytes=len(sel), param_count=int(np.size(self.values)),
                            body_bytes=len(body), body_crc=crc32(body))
        return header, body

    @classmethod
    def from_body(cls, h: TaskHeader, body: bytes) -> "Task":
        c_task = ffi.new("ftte_msg_task *", {"selection_bytes": h.selection_bytes})
        at = lib.ftte_wire_task_values_offset(c_task)
        return cls(h.task_id, h.model_version, h.layout_hash, h.learning_rate, h.momentum,
                   h.local_steps, h.local_epochs, h.batch_size,
                   decode_selection(body[:h.selection_bytes]), f32_from_le(body[at:]))


@dataclass
class Update:
    """A board's result: statistics and the deltas of the task's values."""

    task_id: int
    base_version: int
    samples_used: int
    loss_before: float
    loss_after: float
    delta_mean_sq: float
    train_ms: int
    deltas: np.ndarray = field(repr=False)

    def header_and_body(self) -> tuple[UpdateHeader, bytes]:
        body = f32_to_le(self.deltas)
        return UpdateHeader(self.task_id, self.base_version, self.samples_used, self.loss_before,
                            self.loss_after, self.delta_mean_sq, self.train_ms,
                            param_count=int(np.size(self.deltas)), body_bytes=len(body),
                            body_crc=crc32(body)), body

    @classmethod
    def from_body(cls, h: UpdateHeader, body: bytes) -> "Update":
        return cls(h.task_id, h.base_version, h.samples_used, h.loss_before, h.loss_after,
                   h.delta_mean_sq, h.train_ms, f32_from_le(body))


@dataclass
class Provision:
    """The full weights of a model (float32, per weighted layer its weights then its bias)."""

    layout_hash: int
    weights: np.ndarray = field(repr=False)

    def header_and_body(self) -> tuple[ProvisionHeader, bytes]:
        body = f32_to_le(self.weights)
        return ProvisionHeader(self.layout_hash, len(body), crc32(body)), body

    @classmethod
    def from_body(cls, h: ProvisionHeader, body: bytes) -> "Provision":
        return cls(h.layout_hash, f32_from_le(body))


@dataclass
class Data:
    """Training samples for the board's store: features [n, features] and labels [n]."""

    first_sample: int
    features: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)

    def header_and_body(self) -> tuple[DataHeader, bytes]:
        x = np.asarray(self.features, dtype=np.float32)
        y = np.asarray(self.labels, dtype=np.int32).reshape(-1)
        if x.ndim != 2 or x.shape[0] != y.size:
            raise BadField(f"features must be [n, f] with n = len(labels); got {x.shape}, {y.size} labels")
        body = f32_to_le(x) + i32_to_le(y)
        return DataHeader(self.first_sample, x.shape[0], x.shape[1], len(body), crc32(body)), body

    @classmethod
    def from_body(cls, h: DataHeader, body: bytes) -> "Data":
        split = len(body) - h.sample_count * np.dtype(np.int32).itemsize  # labels come last
        x = f32_from_le(body[:split]).reshape(h.sample_count, h.features)
        return cls(h.first_sample, x, i32_from_le(body[split:]))


_TRANSFER_OF = {TaskHeader: Task, UpdateHeader: Update, ProvisionHeader: Provision, DataHeader: Data}
Transfer = Task | Update | Provision | Data


def chunk_capacity(max_frame: int, auth: bool = False) -> int:
    """Body bytes per chunk for a peer accepting frames of max_frame bytes."""
    return check(lib.ftte_wire_chunk_capacity(max_frame, lib.FTTE_WIRE_FLAG_AUTH if auth else 0),
                 f"chunk capacity for max_frame {max_frame}")


def transfer_messages(obj: Transfer, max_frame: int, first_seq: int = 0) -> list[Message]:
    """The header and chunk messages of a transfer, numbered from first_seq (mod 2^16), each
    fitting a receive buffer of max_frame bytes."""
    header, body = obj.header_and_body()
    room = chunk_capacity(max_frame)
    chunk_cls = CHUNK_OF[type(header)]
    header.seq = first_seq & 0xFFFF
    messages: list[Message] = [header]
    for i, offset in enumerate(range(0, len(body), room), start=1):
        messages.append(chunk_cls(offset, body[offset:offset + room], seq=(first_seq + i) & 0xFFFF))
    return messages


def encode_transfer(obj: Transfer, max_frame: int, first_seq: int = 0) -> list[bytes]:
    """The wire bytes of each frame of a transfer (send one, wait for its ACK, send the next)."""
    return [encode(m) for m in transfer_messages(obj, max_frame, first_seq)]


class TransferReceiver:
    """Reassembles a transfer from its header and chunks (the C receiver state: chunks must
    arrive in order, fit the announced body, and the body must match its CRC-32)."""

    def __init__(self):
        self._t = ffi.new("ftte_wire_rx_transfer *")
        self._header: Message | None = None
        self._body = bytearray()

    @property
    def received(self) -> int:
        return self._t.received

    @property
    def total(self) -> int:
        return self._t.total

    def accept(self, msg: Message) -> Transfer | None:
        """Takes a header (starts a transfer) or the next chunk. Returns the complete Task,
        Update, Provision or Data after its last chunk, else None. Raises OutOfOrder, BadHash,
        FrameTooLarge (past the body) or UnexpectedMessage; a refused chunk changes nothing."""
        keep: list = []
        if type(msg) in _TRANSFER_OF:
            check(lib.ftte_wire_rx_begin(self._t, msg.to_c(keep)), f"{msg.TYPE.name} header")
            self._header, self._body = msg, bytearray()
            return None
        if not isinstance(msg, Chunk):
            raise UnexpectedMessage(f"{msg.TYPE.name} is not part of a transfer")
        done = check(lib.ftte_wire_rx_chunk(self._t, msg.to_c(keep)),
                     f"{msg.TYPE.name} at offset {msg.offset} (received {self._t.received})")
        self._body += msg.data
        if not done:
            return None
        header, body = self._header, bytes(self._body)
        self._header, self._body = None, bytearray()
        return _TRANSFER_OF[type(header)].from_body(header, body)

    def ack(self, msg: Message, seq: int = 0) -> Ack:
        """The ACK for an accepted transfer frame."""
        return Ack(msg.seq, msg.TYPE, self._t.received, seq=seq)


# ---- link efficiency -------------------------------------------------------------------------

@dataclass
class LinkStats:
    max_frame: int
    frames: int
    body_bytes: int      #: the transfer's content (e.g. selection + values)
    payload_bytes: int   #: all frame payloads (body + headers of the messages)
    wire_bytes: int      #: bytes on the wire, forward direction (COBS and delimiters included)
    ack_bytes: int       #: bytes of the ACKs coming back (one per frame)

    @property
    def efficiency(self) -> float:
        """Body bytes / bytes on the wire (forward direction)."""
        return self.body_bytes / self.wire_bytes

    @property
    def efficiency_with_acks(self) -> float:
        """Body bytes / bytes on the wire in both directions (half-duplex links)."""
        return self.body_bytes / (self.wire_bytes + self.ack_bytes)


def link_stats(obj: Transfer, max_frame: int) -> LinkStats:
    from ftte.wire.codec import payload

    messages = transfer_messages(obj, max_frame)
    wire = [encode(m) for m in messages]
    _, body = obj.header_and_body()
    acks = sum(len(encode(Ack(m.seq, m.TYPE, m.offset + len(m.data) if isinstance(m, Chunk) else 0)))
               for m in messages)
    return LinkStats(max_frame, len(messages), len(body), sum(len(payload(m)) for m in messages),
                     sum(len(w) for w in wire), acks)
