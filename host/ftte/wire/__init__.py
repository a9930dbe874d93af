"""The FTTE wire protocol, host side: a typed face over the C codec (firmware/protocol).

The C header ftte_wire.h defines every byte; this package calls the codec through cffi and
never re-declares a layout or a constant. See docs/protocol.md.

    from ftte.wire import Hello, Ping, encode, decode, StreamDecoder
    frame = encode(Ping(nonce=7, seq=3))
    msg = decode(frame)                       # Ping(nonce=7, seq=3)
    dec = StreamDecoder(max_frame=256)
    for msg in dec.feed(serial_bytes): ...    # raises BadCRC, BadCOBS, FrameTooLarge, ...
"""

from ftte.wire.codec import (FLAG_AUTH, MAX_ENCODED, MAX_FRAME, MAX_PAYLOAD, MIN_FRAME, TAG_SIZE,
                             WIRE_VERSION, StreamDecoder, decode, encode, frame_size, payload)
from ftte.wire.errors import (AuthError, BadArgument, BadCOBS, BadCRC, BadField, BadHash, BadHeader,
                              BadLength, BadVersion, Busy, FrameTooLarge, ModelMismatch, OutOfMemory,
                              OutOfOrder, Status, StorageError, TrainingError, TruncatedFrame,
                              UnexpectedMessage, UnknownMessageType, WireError, error_class,
                              wire_error)
from ftte.wire.messages import (MESSAGE_CLASSES, Ack, BoardState, Chunk, DataChunk, DataHeader,
                                Error, Hello, HelloRequest, Message, MsgType, Ping, Pong,
                                ProvisionChunk, ProvisionHeader, TaskChunk, TaskHeader,
                                UpdateChunk, UpdateHeader)
from ftte.wire.transfer import (UPDATE_MODES, Data, LayerSelection, LinkStats, Provision, Task,
                                TransferReceiver, Update, chunk_capacity, crc32, decode_selection,
                                encode_selection, encode_transfer, link_stats, transfer_messages)

__all__ = [
    "FLAG_AUTH", "MAX_ENCODED", "MAX_FRAME", "MAX_PAYLOAD", "MIN_FRAME", "TAG_SIZE", "WIRE_VERSION",
    "StreamDecoder", "decode", "encode", "frame_size", "payload",
    "AuthError", "BadArgument", "BadCOBS", "BadCRC", "BadField", "BadHash", "BadHeader", "BadLength",
    "BadVersion", "Busy", "FrameTooLarge", "ModelMismatch", "OutOfMemory", "OutOfOrder", "Status",
    "StorageError", "TrainingError", "TruncatedFrame", "UnexpectedMessage", "UnknownMessageType",
    "WireError", "error_class", "wire_error",
    "MESSAGE_CLASSES", "Ack", "BoardState", "Chunk", "DataChunk", "DataHeader", "Error", "Hello",
    "HelloRequest", "Message", "MsgType", "Ping", "Pong", "ProvisionChunk", "ProvisionHeader",
    "TaskChunk", "TaskHeader", "UpdateChunk", "UpdateHeader",
    "UPDATE_MODES", "Data", "LayerSelection", "LinkStats", "Provision", "Task", "TransferReceiver",
    "Update", "chunk_capacity", "crc32", "decode_selection", "encode_selection", "encode_transfer",
    "link_stats", "transfer_messages",
]
