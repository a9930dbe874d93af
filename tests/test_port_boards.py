"""Boards by serial port in `ftte run`: `[[boards]] port = "..."` in fleet.toml goes through
PortBoard and SerialBoard, the path of a real board. The board here is the native firmware on a
pseudo-terminal that the test starts itself and names by its path, as a user names /dev/ttyUSB0.

- a fleet.toml with a port board (a pty path, or a socket:// URL) and an in-process board trains;
  the port board joins over the serial link and its updates are accepted;
- a port that cannot be opened, and one where no FTTE board answers, fail `ftte run` at once
  with the entry and the reason;
- a board announcing less arena than fleet.toml's ram is dropped at its join, saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import shutil
import socketserver
import subprocess
import threading
from pathlib import Path

import pytest

from ftte.cli import main as ftte_main
from ftte.coordinator.session import open_run
from ftte.fleet import load_config

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CC", "cc")) is None and
                                not os.environ.get("FTTE_NATIVE_BOARD"), reason="no C compiler")


@pytest.fixture
def board_pty(binary):
    """Starts native boards (their pty paths); every one ends with the test."""
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> str:
        proc = subprocess.Popen([str(binary), "--pty", "--watch-stdin", *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        procs.append(proc)
        path = proc.stdout.readline().decode().strip()
        assert path.startswith("/dev/"), path
        return path

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.fixture
def board_socket(binary):
    """A TCP server that serves a native board (--stdio) on each connection: socket://host:port,
    as QEMU's boards or a serial-to-network bridge are reached."""
    procs: list[subprocess.Popen] = []

    class Bridge(socketserver.BaseRequestHandler):
        def handle(self):
            proc = subprocess.Popen([str(binary), "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, bufsize=0)
            procs.append(proc)
            out = threading.Thread(target=self.pump_out, args=(proc,), daemon=True)
            out.start()
            with contextlib.suppress(OSError):
                while data := self.request.recv(4096):
                    proc.stdin.write(data)
            with contextlib.suppress(OSError):
                proc.stdin.close()
            out.join(2)

        def pump_out(self, proc):
            with contextlib.suppress(OSError):
                while data := os.read(proc.stdout.fileno(), 4096):
                    self.request.sendall(data)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Bridge)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"socket://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    for proc in procs:
        proc.kill()
        proc.wait()


def fleet_toml(tmp_path: Path, boards: str, max_versions: int = 6) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(f"""
[model]
name = "digits_mlp"

[start]
mode = "pretrained"
epochs = 5

[training]
local_steps = 5
batch = 16

[strategy]
name = "ftte"
buffer_size = 4

{boards}

[stop]
max_versions = {max_versions}

[output]
dir = "run"
progress = false
""")
    return path


def events(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("kind", ["pty", "socket"])
def test_ftte_run_trains_with_a_board_named_by_its_port(kind, request, tmp_path, capsys):
    port = request.getfixturevalue("board_pty")() if kind == "pty" else request.getfixturevalue("board_socket")
    toml = fleet_toml(tmp_path, f"""
[[boards]]
port = "{port}"
ram = "64KB"

[[boards]]
inprocess = 1
ram = "64KB"
delay = 0.2
""")
    assert ftte_main(["run", str(toml), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "stopped (max_versions) at version 6" in out and "dropped" not in out, out
    log = events(tmp_path)
    joins = {e["board"]: e for e in log if e["event"] == "join"}
    assert joins["port-00"]["transport"] == "serial" and port in joins["port-00"]["description"]
    accepted = [e for e in log if e["event"] == "update" and e["board"] == "port-00" and e["accepted"]]
    assert len(accepted) >= 2, "the port board's updates reached the global model"
    assert all(e["loss_after"] < e["loss_before"] * 2 for e in accepted)


def test_a_port_that_cannot_be_opened_or_has_no_board_fails_at_once(tmp_path, capsys):
    toml = fleet_toml(tmp_path, '[[boards]]\nport = "/dev/ttyFTTE-missing"\n')
    assert ftte_main(["run", str(toml), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "[[boards]] #1 port '/dev/ttyFTTE-missing': cannot open /dev/ttyFTTE-missing" in err, err

    master, slave = pty.openpty()  # a serial port with nothing behind it
    try:
        silent = os.ttyname(slave)
        toml = fleet_toml(tmp_path, f'[[boards]]\ninprocess = 1\n\n[[boards]]\nport = "{silent}"\n')
        assert ftte_main(["run", str(toml), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"[[boards]] #2 port '{silent}'" in err and "no HELLO" in err and "not an FTTE board" in err, err
        assert not (tmp_path / "run" / "run.sqlite").exists()  # nothing started
    finally:
        os.close(master)
        os.close(slave)


def test_a_board_with_less_arena_than_the_config_says_is_dropped_saying_so(board_pty, tmp_path):
    port = board_pty("--ram", "16384")
    toml = fleet_toml(tmp_path, f"""
[[boards]]
port = "{port}"
ram = "64KB"

[[boards]]
inprocess = 1
ram = "64KB"
""", max_versions=2)
    summary = asyncio.run(open_run(load_config(toml)).run())
    assert summary.version == 2
    reason = summary.dropped["port-00"]
    assert "announces 16,384 B of training arena" in reason and "ram = 65,536 B" in reason, reason


def test_an_empty_port_is_a_config_error(tmp_path):
    from ftte.fleet import ConfigError

    with pytest.raises(ConfigError, match=r"\[\[boards\]\] #1 port: expected a serial port or pyserial URL"):
        load_config(fleet_toml(tmp_path, '[[boards]]\nport = " "\n'))
