"""The firmware images under QEMU as boards for tests: built with the repository's offline
PlatformIO, their first UART served over TCP and reached through the real serial link."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from pathlib import Path

import pytest

from ftte.link import LinkTimings, SerialBoard

QEMU = {
    "m4f_board": ["qemu-system-arm", "-M", "mps2-an386"],
    "rv32_board": ["qemu-system-riscv32", "-M", "virt", "-bios", "none"],
}
TOOLCHAIN = {"m4f_board": "arm-none-eabi-gcc", "rv32_board": "riscv64-unknown-elf-gcc"}


def pio_image(env_name: str) -> Path:
    """`pio run -e <env>` with the repository's offline PlatformIO (tools/setup-platformio);
    incremental in .pio/build, so only the first run compiles everything."""
    root = Path(__file__).resolve().parents[1]
    core = Path(os.environ.get("PLATFORMIO_CORE_DIR", root / ".platformio"))
    if not (core / "packages" / "tool-scons" / ".piopm").is_file():
        pytest.skip(f"PlatformIO is not set up offline in {core} (run tools/setup-platformio)")
    for program in (TOOLCHAIN[env_name], QEMU[env_name][0]):
        if shutil.which(program) is None:
            pytest.skip(f"not installed: {program}")
    import subprocess
    import sys

    env = dict(os.environ, PLATFORMIO_CORE_DIR=str(core))
    build = subprocess.run([sys.executable, "-m", "platformio", "run", "-e", env_name], cwd=root, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stdout + build.stderr
    build_dir = Path(os.environ.get("PLATFORMIO_BUILD_DIR", root / ".pio" / "build"))
    return build_dir / env_name / "firmware.elf"


@contextlib.asynccontextmanager
async def qemu_board(env_name: str, elf: Path, model):
    """The image in QEMU, its first UART served on a TCP port (wait=on: the guest starts when the
    host connects; nodelay=on: no Nagle delay per frame), connected as socket://."""
    import socket

    from ftte.link import LinkError

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
        deadline = time.monotonic() + 10
        while board is None:
            try:
                board = await SerialBoard.connect(f"socket://127.0.0.1:{port}", model,
                                                  timings=LinkTimings(timeout=2.0, retries=3))
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
