"""The board link: the host's side of the wire protocol, and boards reached through it.

- `BoardLink` (protocol.py): handshake, stop-and-wait transfers with timeouts and retries,
  receiving an UPDATE, PING, over any ftte.transport byte transport;
- `SerialBoard` (board.py): a connected board as the coordinator's Board (serial port, pty,
  socket:// URL);
- `PortBoard` (port.py): a board by port in a fleet (`[[boards]] port = ...`): connects, pushes
  its data shard, then trains through SerialBoard;
- `build_native_board`, `NativeBoardProcess`, `EmulatedBoard` (native.py): the firmware as a
  host process on a pseudo-terminal, for tests and `ftte run --emulated N`;
- `probe` (probe.py): is there an FTTE board on this port? (`ftte devices`).
"""

from ftte.link.board import SerialBoard, describe_hello, selection_of
from ftte.link.probe import ProbeResult, probe
from ftte.link.protocol import BoardLink, BoardRefused, LinkError, LinkLost, LinkTimeout, LinkTimings

__all__ = [
    "BoardLink", "BoardRefused", "LinkError", "LinkLost", "LinkTimeout", "LinkTimings",
    "SerialBoard", "describe_hello", "selection_of", "ProbeResult", "probe",
]
