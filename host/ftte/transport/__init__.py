"""Byte transports: how the host reaches a board's bytes (serial ports and pseudo-terminals, TCP
sockets through pyserial URLs; BLE later). A transport only moves bytes; the protocol is
ftte.link's.

    transport = await SerialTransport.open("/dev/ttyUSB0")      # or "socket://127.0.0.1:4000"
    await transport.send(frame_bytes)
    data = await transport.receive()                            # raises LinkClosed when gone
    await transport.close()
"""

from ftte.transport.base import ByteTransport, LinkClosed
from ftte.transport.serial import SerialTransport, list_serial_ports, open_serial

__all__ = ["ByteTransport", "LinkClosed", "SerialTransport", "list_serial_ports", "open_serial"]
