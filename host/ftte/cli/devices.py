"""List serial ports and name the FTTE boards among them (`ftte devices`).

Every port the OS lists (USB serial adapters, native USB boards, UARTs), plus any given on the
command line (a pseudo-terminal such as a native board's, or a pyserial URL such as
socket://127.0.0.1:4000), is opened without resetting an ESP32 (DTR and RTS stay inactive),
asked for HELLO, and closed. Boards that answer are shown with their id, firmware, model layout
hash, training arena and sample storage. Exit status: 0 when at least one FTTE board answered,
1 when none did.
"""

from __future__ import annotations

import argparse
import asyncio
import json

from rich.console import Console
from rich.table import Table

from ftte.link.board import describe_hello
from ftte.link.probe import ProbeResult, probe_all
from ftte.transport.serial import PortInfo, list_serial_ports


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ports", nargs="*", help="more ports or URLs to probe (e.g. /dev/pts/3, socket://host:port)")
    parser.add_argument("--no-probe", action="store_true", help="only list the ports, open none")
    parser.add_argument("--timeout", type=float, default=0.5, help="seconds to wait for HELLO (default 0.5, sent twice)")
    parser.add_argument("--baud", type=int, default=115200, help="baud rate (default 115200)")
    parser.add_argument("--json", action="store_true", help="one JSON object per port")


def _row(port: str, info: PortInfo | None, result: ProbeResult | None) -> dict:
    row: dict = {"port": port, "description": info.description if info else "", "hwid": info.hwid if info else ""}
    if result is None:
        row["ftte"] = None
    elif result.hello is not None:
        h = result.hello
        row["ftte"] = {"board_id": h.board_id.hex(), "firmware_version": h.firmware_version,
                       "layout_hash": f"0x{h.layout_hash:08x}", "ram_budget": h.ram_budget,
                       "data_capacity": h.data_capacity, "max_frame": h.max_frame,
                       "weights_crc": f"0x{h.weights_crc:08x}", "caps": h.caps, "summary": describe_hello(h)}
    else:
        row["ftte"] = False
        row["error"] = result.error
    return row


def run(args: argparse.Namespace) -> int:
    listed = {p.device: p for p in list_serial_ports()}
    ports = list(listed) + [p for p in args.ports if p not in listed]
    results: dict[str, ProbeResult] = {}
    if not args.no_probe and ports:
        found = asyncio.run(probe_all(ports, timeout=args.timeout, baudrate=args.baud))
        results = {r.port: r for r in found}
    rows = [_row(p, listed.get(p), results.get(p)) for p in ports]
    if args.json:
        for row in rows:
            print(json.dumps(row))
    else:
        console = Console()
        if not rows:
            console.print("no serial ports found (name a pseudo-terminal or URL to probe it)")
        else:
            table = Table(title="serial ports")
            for column in ("port", "description", "FTTE board"):
                table.add_column(column)
            for row in rows:
                ftte = row["ftte"]
                if ftte is None:
                    verdict = "(not probed)"
                elif ftte is False:
                    verdict = f"[dim]no: {row.get('error', '')}[/]"
                else:
                    verdict = f"[bold green]yes[/] {ftte['board_id']}: {ftte['summary']}"
                table.add_row(row["port"], row["description"], verdict)
            console.print(table)
    boards = sum(1 for row in rows if row["ftte"])
    return 0 if boards or args.no_probe else 1
