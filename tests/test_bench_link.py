"""`python -m ftte.bench.link`: the link-efficiency table (no timing: the round trips and the
firmware build are exercised by running the command)."""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from ftte.bench.link import EFFICIENCY_FRAMES, efficiency_table, print_efficiency, ten_kb_task
from ftte.wire import MsgType, chunk_capacity, decode, encode, frame_size, transfer_messages

pytestmark = [
    pytest.mark.skipif(shutil.which("arm-none-eabi-size") is None, reason="arm-none-eabi-size not installed"),
    pytest.mark.skipif(importlib.util.find_spec("platformio") is None,
                       reason="platformio not installed (tools/setup-platformio)"),
]


def test_the_efficiency_table_is_consistent(capsys):
    rows = efficiency_table()
    assert [r.max_frame for r in rows] == list(EFFICIENCY_FRAMES) == sorted(EFFICIENCY_FRAMES)
    task = ten_kb_task()
    _, body = task.header_and_body()
    assert len(body) == 2560 * 4 + 16  # the values after the selection, padded to 16 bytes

    for r in rows:
        # one header frame, then as many chunks as the chunk capacity needs
        room = chunk_capacity(r.max_frame)
        assert r.body_bytes == len(body)
        assert r.frames == 1 + -(-len(body) // room)
        # every frame fits the board's buffer, and decodes back (the C codec's bytes)
        messages = transfer_messages(task, r.max_frame)
        assert all(frame_size(m) <= r.max_frame for m in messages)
        # overhead: each frame costs at least its 8-byte header, CRC-32 and delimiter
        assert r.wire_bytes >= r.payload_bytes + r.frames * (8 + 4 + 1)
        assert r.payload_bytes > r.body_bytes
        assert r.ack_bytes > 0 and r.ack_bytes % r.frames == 0  # one ACK per frame, all the same size
        assert 0 < r.efficiency_with_acks < r.efficiency < 1
        assert r.efficiency == pytest.approx(r.body_bytes / r.wire_bytes)

    by_frame = {r.max_frame: r for r in rows}
    assert by_frame[1024].efficiency >= 0.95
    assert by_frame[1024].efficiency_with_acks >= 0.94
    # larger frames: fewer frames, fewer bytes on the wire, higher efficiency (with and without ACKs)
    for small, large in zip(rows, rows[1:]):
        assert large.frames < small.frames
        assert large.wire_bytes < small.wire_bytes and large.ack_bytes < small.ack_bytes
        assert large.efficiency > small.efficiency
        assert large.efficiency_with_acks > small.efficiency_with_acks

    print_efficiency(rows)
    table = capsys.readouterr().out
    assert "| 1,024 B | 1,008 B | 12 |" in table
    assert f"{by_frame[1024].efficiency:.1%}" in table


def test_the_task_frames_round_trip_through_the_decoder():
    frames = transfer_messages(ten_kb_task(), 1024)
    decoded = [decode(encode(m)) for m in frames]
    assert decoded[0].TYPE == MsgType.TASK and all(m.TYPE == MsgType.TASK_CHUNK for m in decoded[1:])
    assert b"".join(m.data for m in decoded[1:]) == ten_kb_task().header_and_body()[1]
