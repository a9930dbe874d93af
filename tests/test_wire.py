"""The wire protocol from Python: golden frames, round trips of every message, the stream
decoder on corrupt input (hypothesis), chunked transfers through small receive buffers, and
the link efficiency.

The codec is the C one (ftte.wire calls it through cffi). Only this test re-states the frame
layout, in a few lines of pure Python (COBS and zlib's CRC-32), as an independent oracle.
"""

from __future__ import annotations

import dataclasses
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftte.native import ffi, lib
from ftte.wire import (MAX_FRAME, MESSAGE_CLASSES, MIN_FRAME, Ack, BadCOBS, BadCRC, BadField,
                       BadHash, BadHeader, BadLength, BadVersion, BoardState, Chunk, Data,
                       DataChunk, DataHeader, Error, FrameTooLarge, Hello, HelloRequest,
                       LayerSelection, Message, ModelMismatch, MsgType, OutOfOrder, Ping, Pong,
                       Provision, ProvisionChunk, ProvisionHeader, Status, StreamDecoder, Task,
                       TaskChunk, TaskHeader, TransferReceiver, TruncatedFrame, UnexpectedMessage,
                       UnknownMessageType, Update, UpdateHeader, WireError,
                       chunk_capacity, crc32, decode, decode_selection, encode, encode_selection,
                       encode_transfer, frame_size, link_stats, transfer_messages)

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "firmware" / "protocol" / "tests" / "golden_frames.txt"
LAYOUT = 0xDEADBEEF


# ---- an independent oracle: COBS and CRC-32 in plain Python -----------------------------------

def cobs_decode(data: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(data):
        code = data[i]
        assert code != 0
        out += data[i + 1:i + code]
        i += code
        if code != 0xFF and i < len(data):
            out.append(0)
    return bytes(out)


def raw_frame(version: int, kind: int, flags: int, seq: int, payload: bytes, tag: bytes = b"",
              reserved: int = 0, length: int | None = None, crc: int | None = None) -> bytes:
    """A frame built by hand (layout per docs/protocol.md), COBS-encoded and delimited."""
    n = len(payload) if length is None else length
    head = bytes([version, kind, flags, reserved]) + seq.to_bytes(2, "little") + n.to_bytes(2, "little")
    body = head + payload + tag
    crc = zlib.crc32(body) if crc is None else crc
    return cobs_stuff(body + crc.to_bytes(4, "little")) + b"\x00"


def cobs_stuff(frame: bytes) -> bytes:
    """COBS as specified (Cheshire & Baker): blocks of at most 254 data bytes."""
    out = bytearray()
    i, n = 0, len(frame)
    while True:
        j = i
        while j < n and frame[j] != 0 and j - i < 254:
            j += 1
        out.append(j - i + 1)
        out += frame[i:j]
        if j - i == 254:  # a full block: no zero implied
            i = j
            if i == n:
                break
            continue
        if j >= n:
            break
        i = j + 1  # skip the zero the block stands for
    return bytes(out)


def oracle_parse(wire: bytes) -> dict:
    """Frame fields read by the oracle: checks delimiter, COBS, CRC, length."""
    assert wire[-1] == 0 and 0 not in wire[:-1]
    frame = cobs_decode(wire[:-1])
    assert cobs_stuff(frame) == wire[:-1]  # canonical COBS
    assert zlib.crc32(frame[:-4]) == int.from_bytes(frame[-4:], "little")
    flags, n = frame[2], int.from_bytes(frame[6:8], "little")
    tag = 16 if flags & 1 else 0
    assert len(frame) == 8 + n + tag + 4
    return {"version": frame[0], "type": frame[1], "flags": flags, "reserved": frame[3],
            "seq": int.from_bytes(frame[4:6], "little"), "payload": frame[8:8 + n],
            "tag": frame[8 + n:8 + n + tag]}


def test_the_oracle_cobs_matches_the_published_examples():
    assert cobs_stuff(b"\x00") == b"\x01\x01"
    assert cobs_stuff(b"\x11\x22\x00\x33") == b"\x03\x11\x22\x02\x33"
    assert cobs_stuff(bytes(range(1, 255))) == b"\xff" + bytes(range(1, 255))
    assert cobs_stuff(bytes(range(1, 256))) == b"\xff" + bytes(range(1, 255)) + b"\x02\xff"
    assert cobs_stuff(bytes(range(2, 256)) + b"\x00") == b"\xff" + bytes(range(2, 256)) + b"\x01\x01"


# ---- golden frames ---------------------------------------------------------------------------

def golden_lines() -> dict[str, bytes]:
    lines = {}
    for line in GOLDEN.read_text().splitlines():
        if line and not line.startswith("#"):
            name, hexa = line.split()
            lines[name] = bytes.fromhex(hexa)
    return lines


def example_selection() -> tuple[LayerSelection, ...]:
    return (LayerSelection("frozen"), LayerSelection("channels", 16, (1, 5)),
            LayerSelection("channels", 64, (3,)), LayerSelection("bias"), LayerSelection("full"))


def golden_examples() -> dict[str, Message]:
    """The messages of firmware/protocol/tests/wire_examples.h, built from the dataclasses."""
    ex: dict[str, Message] = {
        "hello_request": HelloRequest(max_frame=1024, seq=0),
        "hello": Hello(bytes(range(1, 9)), 0x00010203, 65536, 1048576, 64_000_000, LAYOUT,
                       0x12345678, 32768, 256, 1, caps=3, seq=1),
        "ping": Ping(0xCAFEF00D, seq=2),
        "pong": Pong(0xCAFEF00D, 123456, BoardState.TRAINING, 500, seq=3),
        "ack": Ack(9, MsgType.TASK_CHUNK, 32, seq=4),
        "error": Error(8, MsgType.TASK, -Status.MODEL_MISMATCH, LAYOUT, seq=5),
    }
    prov = transfer_messages(Provision(LAYOUT, np.array([1.0, -2.0], np.float32)), 1024, first_seq=6)
    ex["provision"], ex["provision_chunk"] = prov
    ex["provision_chunk_long"] = ProvisionChunk(256, bytes((i * 7 + 1) % 255 + 1 for i in range(300)), seq=8)
    task = Task(42, 7, LAYOUT, 0.01, 0.9, 20, 0, 8, example_selection(),
                np.array([0.5, -0.25, 1.5], np.float32))
    ex["task"], ex["task_chunk"] = transfer_messages(task, 1024, first_seq=9)
    update = Update(42, 7, 160, 2.25, 1.5, 0.0625, 1234, np.array([0.125, -0.5, 0.0], np.float32))
    ex["update"], ex["update_chunk"] = transfer_messages(update, 1024, first_seq=11)
    data = Data(0, np.arange(1, 7, dtype=np.float32).reshape(2, 3), np.array([1, 0]))
    ex["data"], ex["data_chunk"] = transfer_messages(data, 1024, first_seq=13)
    ex["ping_auth"] = Ping(1, seq=15, tag=bytes(range(0xA0, 0xB0)))
    return ex


def test_golden_file_covers_every_message_type():
    lines = golden_lines()
    assert set(lines) == set(golden_examples())
    kinds = {oracle_parse(w)["type"] for w in lines.values()}
    assert kinds == {int(t) for t in MsgType}


@pytest.mark.parametrize("name", sorted(golden_examples()))
def test_golden_frame(name):
    wire = golden_lines()[name]
    expected = golden_examples()[name]
    # the Python dataclass encodes to the stored bytes ...
    assert encode(expected).hex() == wire.hex()
    # ... which decode to the same message and re-encode identically
    msg = decode(wire)
    assert msg == expected
    assert encode(msg) == wire
    # and the oracle reads the documented layout from them
    fields = oracle_parse(wire)
    assert (fields["version"], fields["type"], fields["seq"]) == (1, expected.TYPE, expected.seq)
    assert fields["reserved"] == 0
    assert fields["tag"] == (expected.tag or b"")
    assert fields["flags"] == (1 if expected.tag else 0)


def test_golden_hello_payload_offsets():
    p = oracle_parse(golden_lines()["hello"])["payload"]
    assert p[0:8] == bytes(range(1, 9))
    assert int.from_bytes(p[24:28], "little") == LAYOUT
    assert int.from_bytes(p[36:38], "little") == 256 and p[38] == 1 and p[39] == 3


def test_golden_task_body_is_selection_then_values():
    chunk = decode(golden_lines()["task_chunk"])
    header = decode(golden_lines()["task"])
    assert header.selection_bytes == 20 and header.body_bytes == 32 == len(chunk.data)
    assert decode_selection(chunk.data[:20]) == example_selection()
    assert np.frombuffer(chunk.data[20:], "<f4").tolist() == [0.5, -0.25, 1.5]
    assert header.body_crc == zlib.crc32(chunk.data)


# ---- the Python face mirrors C, never re-declares it -------------------------------------------

@pytest.mark.parametrize("cls", sorted(set(MESSAGE_CLASSES.values()), key=lambda c: c.TYPE))
def test_dataclass_fields_are_the_c_struct_fields(cls):
    c_fields = [name for name, _ in ffi.typeof(f"ftte_msg_{cls.C_MEMBER}").fields]
    if issubclass(cls, Chunk):
        c_fields.remove("len")  # len(data)
    assert cls.payload_fields() == c_fields


def test_enums_are_the_header_enums():
    assert {f"FTTE_MSG_{t.name}": int(t) for t in MsgType} == ffi.typeof("ftte_msg_type").relements
    assert {int(s) for s in Status} == set(ffi.typeof("ftte_wire_status").relements.values())
    assert all(issubclass(type(WireError_for(s)), WireError) for s in Status if s != 0)


def WireError_for(status):
    from ftte.wire import error_class, wire_error

    cls = error_class(status)
    assert cls is not WireError, f"no exception class for {Status(status).name}"
    return wire_error(status, "test")


# ---- round trips of every message ------------------------------------------------------------

u8, u16, u32 = (st.integers(0, 2**b - 1) for b in (8, 16, 32))
f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
seqs = st.integers(0, 0xFFFF)
tags = st.none() | st.binary(min_size=16, max_size=16)


@st.composite
def any_message(draw) -> Message:
    kind = draw(st.sampled_from(sorted(MESSAGE_CLASSES, key=int)))
    cls = MESSAGE_CLASSES[kind]
    frame = {"seq": draw(seqs), "tag": draw(tags)}
    frame_sizes = st.integers(MIN_FRAME, 0xFFFF)
    if cls is HelloRequest:
        return cls(draw(frame_sizes), draw(st.integers(1, 255)), **frame)
    if cls is Hello:
        return cls(draw(st.binary(min_size=8, max_size=8)), *[draw(u32) for _ in range(7)],
                   draw(frame_sizes), draw(st.integers(1, 255)), draw(st.integers(0, 7)), **frame)
    if cls is Ping:
        return cls(draw(u32), **frame)
    if cls is Pong:
        return cls(draw(u32), draw(u32), draw(st.sampled_from(list(BoardState))),
                   draw(st.integers(0, 1000)), **frame)
    if cls is Ack:
        return cls(draw(u16), draw(st.sampled_from(list(MsgType))), draw(u32), **frame)
    if cls is Error:
        return cls(draw(u16), draw(st.sampled_from([0, *MsgType])), draw(st.integers(1, 255)),
                   draw(u32), **frame)
    if cls is ProvisionHeader:
        return cls(draw(u32), 4 * draw(st.integers(1, 2**30 - 1)), draw(u32), **frame)
    if cls is TaskHeader:
        sel, params = draw(st.integers(1, lib.FTTE_WIRE_MAX_SELECTION_BYTES)), draw(st.integers(1, 2**28))
        steps = draw(u32)
        return cls(draw(u32), draw(u32), draw(u32), draw(f32), draw(f32), steps,
                   draw(st.integers(0 if steps else 1, 0xFFFF)), draw(st.integers(1, 0xFFFF)),
                   sel, params, (sel + 3) // 4 * 4 + 4 * params, draw(u32), **frame)
    if cls is UpdateHeader:
        params = draw(st.integers(1, 2**30 - 1))
        return cls(draw(u32), draw(u32), draw(u32), draw(f32), draw(f32), draw(f32), draw(u32),
                   params, 4 * params, draw(u32), **frame)
    if cls is DataHeader:
        n, f = draw(st.integers(1, 1000)), draw(st.integers(1, 1000))
        return cls(draw(u32), n, f, n * (4 * f + 4), draw(u32), **frame)
    assert issubclass(cls, Chunk)
    return cls(draw(u32), draw(st.binary(min_size=1, max_size=1200)), **frame)


@settings(max_examples=400, deadline=None)
@given(any_message())
def test_every_message_round_trips(msg):
    wire = encode(msg)
    assert decode(wire) == msg
    assert len(wire) - 1 <= frame_size(msg) + frame_size(msg) // 254 + 1  # COBS overhead bound
    assert oracle_parse(wire)["seq"] == msg.seq


def test_each_message_type_round_trips_once():
    for msg in golden_examples().values():
        assert decode(encode(msg)) == msg


def test_floats_are_carried_as_float32():
    msg = TaskHeader(1, 2, 3, 0.01, 0.9, 5, 0, 4, 1, 1, 8, 0)
    assert msg.learning_rate == float(np.float32(0.01))
    assert decode(encode(msg)) == msg


@pytest.mark.parametrize("msg, problem", [
    (HelloRequest(max_frame=MIN_FRAME - 1), "max_frame"),
    (Hello(b"short", 0, 0, 0, 0, 0, 0, 0, 256), "board_id"),
    (Pong(1, 2, BoardState.IDLE, 1001), "progress"),
    (ProvisionHeader(LAYOUT, 6, 0), "body"),
    (TaskHeader(1, 2, 3, float("nan"), 0.9, 5, 0, 4, 1, 1, 8, 0), "learning rate"),
    (TaskHeader(1, 2, 3, 0.1, 0.9, 5, 0, 4, 1, 1, 12, 0), "body_bytes"),
    (UpdateHeader(1, 2, 3, 0.0, 0.0, 0.0, 0, 2, 4, 0), "body_bytes"),
    (DataHeader(0, 2, 3, 31, 0), "body_bytes"),
    (Ping(2**32), "nonce out of range"),
    (TaskChunk(0, b""), "empty chunk"),
])
def test_encode_refuses_invalid_fields(msg, problem):
    with pytest.raises(BadField):
        encode(msg)


# ---- the stream decoder on good and corrupt input ---------------------------------------------

def test_stream_decoder_splits_a_stream_fed_in_any_pieces():
    messages = list(golden_examples().values())
    stream = b"\x00" + b"".join(encode(m) for m in messages)
    rng = np.random.default_rng(1)
    for _ in range(5):
        decoder, got, pos = StreamDecoder(), [], 0
        while pos < len(stream):
            step = int(rng.integers(1, 40))
            got += list(decoder.feed(stream[pos:pos + step]))
            pos += step
        assert got == messages and not decoder.pending
        decoder.close()
    # byte by byte
    decoder = StreamDecoder()
    assert [m for b in stream for m in decoder.feed(bytes([b]))] == messages


@pytest.mark.parametrize("wire, error", [
    (raw_frame(1, MsgType.PING, 0, 1, b"\x01\x02\x03\x04", crc=0x12345678), BadCRC),
    (b"\x05\x11\x22\x00", BadCOBS),
    (raw_frame(1, 0x42, 0, 1, b"\x01\x02\x03\x04"), UnknownMessageType),
    (raw_frame(2, MsgType.PING, 0, 1, b"\x01\x02\x03\x04"), BadVersion),
    (raw_frame(1, MsgType.PING, 0x80, 1, b"\x01\x02\x03\x04"), BadHeader),
    (raw_frame(1, MsgType.PING, 0, 1, b"\x01\x02\x03\x04", reserved=1), BadHeader),
    (raw_frame(1, MsgType.PING, 0, 1, b"\x01\x02\x03\x04", length=9), TruncatedFrame),
    (raw_frame(1, MsgType.PING, 1, 1, b"\x01\x02\x03\x04"), TruncatedFrame),  # tag missing
    (raw_frame(1, MsgType.PING, 0, 1, b"\x01\x02\x03"), BadLength),
    (b"\x01\x00", TruncatedFrame),
    (raw_frame(1, MsgType.PING, 0, 1, bytes(600)), FrameTooLarge),
])
def test_corrupt_frames_raise_a_clear_error_and_the_stream_goes_on(wire, error):
    good = encode(Ping(99, seq=7))
    decoder = StreamDecoder(max_frame=256)
    with pytest.raises(error) as info:
        list(decoder.feed(wire + good))
    assert Status(info.value.status).name in str(info.value)
    assert list(decoder.feed()) == [Ping(99, seq=7)]  # the bytes after the bad frame were kept
    # and events() reports the same without raising
    events = list(StreamDecoder(max_frame=256).events(wire + good))
    assert isinstance(events[0], error) and events[-1] == Ping(99, seq=7)


def test_error_messages_name_the_problem():
    with pytest.raises(BadCRC, match="bad CRC"):
        decode(raw_frame(1, MsgType.PING, 0, 1, b"\x01\x02\x03\x04", crc=1))
    with pytest.raises(FrameTooLarge, match="too large"):
        decode(encode(TaskChunk(0, bytes(300))), max_frame=256)
    with pytest.raises(TruncatedFrame, match="truncated"):
        decode(encode(Ping(1))[:-1])
    with pytest.raises(UnknownMessageType, match="unknown message type"):
        decode(raw_frame(1, 0x7F, 0, 1, b""))
    decoder = StreamDecoder()
    assert list(decoder.feed(encode(Ping(1))[:5])) == []
    with pytest.raises(TruncatedFrame):
        decoder.close()


def test_a_peer_error_becomes_its_exception():
    err = decode(golden_lines()["error"])
    exc = err.exception()
    assert isinstance(exc, ModelMismatch) and "TASK" in str(exc) and exc.detail == LAYOUT


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000), st.integers(1, 64))
def test_fuzz_random_bytes_never_crash_or_hang(data, piece):
    decoder = StreamDecoder(max_frame=256)
    for i in range(0, len(data), piece):
        for event in decoder.events(data[i:i + piece]):
            assert isinstance(event, (Message, WireError))
            if isinstance(event, WireError):
                assert event.status != Status.ARG and str(event)
    # whatever came before, a delimiter and a good frame decode to that frame
    events = list(decoder.events(b"\x00" + encode(Ping(5, seq=1))))
    assert events and events[-1] == Ping(5, seq=1)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(golden_lines())), st.data())
def test_fuzz_corrupted_golden_frames_give_an_error_or_the_frame(name, data):
    wire = bytearray(golden_lines()[name])
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(wire) - 1))
        op = data.draw(st.sampled_from(["flip", "set", "delete", "insert", "cut"]))
        if op == "flip":
            wire[at] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "set":
            wire[at] = data.draw(st.integers(0, 255))
        elif op == "delete" and len(wire) > 1:
            del wire[at]
        elif op == "insert":
            wire.insert(at, data.draw(st.integers(0, 255)))
        elif op == "cut":
            del wire[at + 1:]
    events = list(StreamDecoder().events(bytes(wire) + b"\x00"))
    original = decode(golden_lines()[name])
    for event in events:
        # a corruption is caught (CRC-32), unless it left the frame's bytes intact
        assert isinstance(event, WireError) or event == original


# ---- transfers: chunking, flow, efficiency ------------------------------------------------------

def ten_kb_task(params: int = 2560) -> Task:
    rng = np.random.default_rng(0)
    selection = (LayerSelection("frozen"), LayerSelection("channels", 32, tuple(range(0, 32, 3))),
                 LayerSelection("full"), LayerSelection("bias"))
    return Task(1, 3, LAYOUT, 0.05, 0.0, 10, 0, 16, selection,
                rng.standard_normal(params).astype(np.float32))


def test_a_10kb_task_fits_a_256_byte_receive_buffer():
    task = ten_kb_task()
    msgs = transfer_messages(task, max_frame=256, first_seq=65530)  # seq wraps
    wire = [encode(m) for m in msgs]
    assert all(frame_size(m) <= 256 for m in msgs)
    # the board's decoder with a 256-byte buffer takes every frame, one at a time
    board = StreamDecoder(max_frame=256)
    rx = TransferReceiver()
    done = None
    for w in wire:
        (msg,) = board.feed(w)  # stop-and-wait: exactly one frame, then the ACK
        done = rx.accept(msg)
        ack = rx.ack(msg)
        assert decode(encode(ack)) == ack and ack.acked_seq == msg.seq
    assert [m.seq for m in msgs][:8] == [65530, 65531, 65532, 65533, 65534, 65535, 0, 1]
    assert isinstance(done, Task) and done.selection == task.selection
    np.testing.assert_array_equal(done.values, task.values)
    assert len(msgs) == 1 + -(-msgs[0].body_bytes // chunk_capacity(256))
    # a frame one byte over the buffer is refused by that decoder
    with pytest.raises(FrameTooLarge):
        list(StreamDecoder(max_frame=256).feed(encode(TaskChunk(0, bytes(chunk_capacity(256) + 1)))))


@pytest.mark.parametrize("obj", [
    Update(4, 3, 160, 2.5, 0.75, 1e-4, 812, np.linspace(-1, 1, 999, dtype=np.float32)),
    Provision(LAYOUT, np.arange(3000, dtype=np.float32)),
    Data(5, np.random.default_rng(2).standard_normal((40, 30)).astype(np.float32), np.arange(40) % 10),
])
def test_transfers_round_trip_through_small_frames(obj):
    rx, done = TransferReceiver(), None
    for w in encode_transfer(obj, max_frame=MIN_FRAME):
        done = rx.accept(decode(w, max_frame=MIN_FRAME))
    assert type(done) is type(obj)
    for f in dataclasses.fields(obj):
        a, b = getattr(done, f.name), getattr(obj, f.name)
        if isinstance(b, np.ndarray):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype or b.dtype.kind == "i"
        else:
            assert a == pytest.approx(b, rel=1e-7)


def test_provision_body_crc_is_the_weights_hash():
    weights = np.arange(10, dtype=np.float32)
    header = transfer_messages(Provision(LAYOUT, weights), 256)[0]
    raw = weights.astype("<f4").tobytes()
    assert header.body_crc == zlib.crc32(raw) == crc32(raw)


def test_receiver_refuses_out_of_order_duplicate_and_corrupt_chunks():
    msgs = transfer_messages(ten_kb_task(500), max_frame=256)
    rx = TransferReceiver()
    rx.accept(msgs[0])
    rx.accept(msgs[1])
    with pytest.raises(OutOfOrder):
        rx.accept(msgs[1])  # a duplicate (the seq check catches it first on a board)
    with pytest.raises(OutOfOrder):
        rx.accept(msgs[3])  # a gap
    rx.accept(msgs[2])
    assert rx.received == 2 * chunk_capacity(256)
    last = msgs[-1]
    corrupt = [*msgs[:-1], dataclasses.replace(last, data=bytes([last.data[0] ^ 1]) + last.data[1:])]
    rx = TransferReceiver()
    with pytest.raises(BadHash):
        for m in corrupt:
            rx.accept(m)
    with pytest.raises(UnexpectedMessage):
        TransferReceiver().accept(msgs[1])
    with pytest.raises(UnexpectedMessage):
        rx.accept(Ping(1))
    rx.accept(msgs[0])
    with pytest.raises(UnexpectedMessage):
        rx.accept(DataChunk(0, b"1234"))  # a chunk of another transfer


def test_selection_codec_picks_the_smaller_form():
    def size(n_channels, selected):
        return len(encode_selection((LayerSelection("channels", n_channels, tuple(selected)),)))

    assert size(256, [7]) == 1 + 1 + 5 + 2           # index list: 2 bytes
    assert size(256, range(0, 256, 2)) == 1 + 1 + 5 + 32  # mask: 32 bytes
    assert size(64, range(3)) == 1 + 1 + 5 + 6 and size(64, range(4)) == 1 + 1 + 5 + 8
    sel = example_selection()
    assert decode_selection(encode_selection(sel)) == sel
    with pytest.raises(BadField):
        encode_selection((LayerSelection("channels", 8, (8,)),))
    with pytest.raises(BadField):
        LayerSelection("sometimes")


def test_link_efficiency_of_a_10kb_task(capsys):
    task = ten_kb_task()
    rows = []
    for max_frame in (1024, 256):
        s = link_stats(task, max_frame)
        rows.append(s)
        print(f"\n10 KB task, max frame {max_frame:4d} B: {s.frames:3d} frames, body {s.body_bytes} B, "
              f"wire {s.wire_bytes} B -> efficiency {100 * s.efficiency:.1f}% "
              f"({100 * s.efficiency_with_acks:.1f}% counting {s.ack_bytes} B of ACKs)")
    with capsys.disabled():
        print(capsys.readouterr().out, end="")
    assert rows[0].efficiency >= 0.95
    assert rows[1].efficiency >= 0.90


def test_max_frame_bounds():
    assert chunk_capacity(MIN_FRAME) > 0 and chunk_capacity(10**6) == chunk_capacity(MAX_FRAME)
    with pytest.raises(WireError):
        chunk_capacity(MIN_FRAME - 1)
