"""The board firmware under QEMU: the `m4f_board` and `rv32_board` images, built with the
repository's offline PlatformIO, their first UART served over TCP and reached through the real
serial link as a socket:// URL.

    elf = pio_image("m4f_board")                        # pio run -e m4f_board (incremental)
    async with qemu_board("m4f_board", elf, model) as board:
        await board.push_data(x, y)
        result = await board.train(task)                # a SerialBoard over socket://

pio_image raises FirmwareUnavailable when PlatformIO is not set up offline (tools/setup-platformio),
or a cross compiler or QEMU is not installed, and FirmwareBuildError when the build fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from ftte.coordinator.board import BoardError, BoardInfo
from ftte.link.board import SerialBoard
from ftte.link.native import ROOT
from ftte.link.protocol import LinkError, LinkTimings
from ftte.model import Model

#: The QEMU command of each board env (the image and the serial port are added).
QEMU: dict[str, list[str]] = {
    "m4f_board": ["qemu-system-arm", "-M", "mps2-an386"],
    "rv32_board": ["qemu-system-riscv32", "-M", "virt", "-bios", "none"],
}
#: The cross compiler each env's toolchain package links to.
TOOLCHAIN: dict[str, str] = {"m4f_board": "arm-none-eabi-gcc", "rv32_board": "riscv64-unknown-elf-gcc"}

#: Slower than the native board: QEMU's UARTs move about 12 KB/s.
QEMU_TIMINGS = LinkTimings(timeout=2.0, retries=3)


class QemuBoardError(BoardError):
    """A QEMU board image could not be built or started."""


class FirmwareUnavailable(QemuBoardError):
    """PlatformIO is not set up offline, or a cross compiler or QEMU is missing."""


class FirmwareBuildError(QemuBoardError):
    """`pio run -e <env>` failed."""


def platformio_core_dir() -> Path:
    """$PLATFORMIO_CORE_DIR, else <repo>/.platformio (where tools/setup-platformio puts it)."""
    return Path(os.environ.get("PLATFORMIO_CORE_DIR") or ROOT / ".platformio")


def pio_build_dir() -> Path:
    return Path(os.environ.get("PLATFORMIO_BUILD_DIR") or ROOT / ".pio" / "build")


def check_platformio() -> Path:
    """The offline PlatformIO core dir; FirmwareUnavailable, saying what to run, when it is not set up."""
    core = platformio_core_dir()
    if importlib.util.find_spec("platformio") is None:
        raise FirmwareUnavailable("PlatformIO is not installed in this Python: run tools/setup-platformio "
                                  "(it pip-installs platformio and scons, then prepares .platformio/)")
    if not (core / "packages" / "tool-scons" / ".piopm").is_file():
        raise FirmwareUnavailable(f"PlatformIO is not set up offline in {core}: run tools/setup-platformio "
                                  f"(and export PLATFORMIO_CORE_DIR={core})")
    return core


def pio_image(env_name: str, *, need_qemu: bool = True, timeout: float = 300.0) -> Path:
    """`python -m platformio run -e <env>` with the repository's offline PlatformIO; incremental in
    .pio/build, so only the first run compiles everything. Returns the image (firmware.elf)."""
    if env_name not in QEMU:
        raise ValueError(f"not a QEMU board env: {env_name!r} (one of {sorted(QEMU)})")
    core = check_platformio()
    for program in (TOOLCHAIN[env_name], *(QEMU[env_name][:1] if need_qemu else [])):
        if shutil.which(program) is None:
            raise FirmwareUnavailable(f"not installed: {program} (docs/firmware.md: apt-get install gcc-arm-none-eabi "
                                      "libnewlib-arm-none-eabi gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf "
                                      "qemu-system-arm qemu-system-misc)")
    env = dict(os.environ, PLATFORMIO_CORE_DIR=str(core))
    try:
        build = subprocess.run([sys.executable, "-m", "platformio", "run", "-e", env_name], cwd=ROOT, env=env,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FirmwareBuildError(f"pio run -e {env_name} took over {timeout:.0f} s (did it wait for "
                                 "PlatformIO's registry? run tools/setup-platformio)") from None
    if build.returncode != 0:
        raise FirmwareBuildError(f"pio run -e {env_name} failed:\n{(build.stdout + build.stderr).strip()[-4000:]}")
    elf = pio_build_dir() / env_name / "firmware.elf"
    if not elf.is_file():
        raise FirmwareBuildError(f"pio run -e {env_name} succeeded but left no {elf}")
    return elf


@contextlib.asynccontextmanager
async def qemu_board(env_name: str, elf: Path, model: Model, *, timings: LinkTimings = QEMU_TIMINGS,
                     info: BoardInfo | None = None, connect_timeout: float = 10.0):
    """The image in QEMU, its first UART served on a free TCP port (wait=on: the guest starts
    when the host connects; nodelay=on: no Nagle delay per frame), connected as socket:// and
    yielded as a SerialBoard. QEMU is killed on the way out."""
    if shutil.which(QEMU[env_name][0]) is None:
        raise FirmwareUnavailable(f"not installed: {QEMU[env_name][0]}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = QEMU[env_name] + ["-nographic", "-monitor", "none", "-semihosting-config", "enable=on,target=native",
                                "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on",
                                "-kernel", str(elf)]
    qemu = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.DEVNULL)
    board = None
    try:
        deadline = time.monotonic() + connect_timeout
        while board is None:
            try:
                board = await SerialBoard.connect(f"socket://127.0.0.1:{port}", model, timings=timings, info=info)
            except LinkError as error:  # QEMU not listening yet
                if "cannot open" not in str(error) or time.monotonic() > deadline or qemu.returncode is not None:
                    raise
                await asyncio.sleep(0.05)
        yield board
    finally:
        if board is not None:
            await board.close()
        with contextlib.suppress(ProcessLookupError):
            qemu.kill()
        await qemu.wait()
