"""The firmware images under QEMU as boards for tests (ftte.link.qemu), skipping with the
reason when PlatformIO, a cross compiler or QEMU is not installed; a failing build still fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftte.link.qemu import FirmwareUnavailable, qemu_board
from ftte.link.qemu import pio_image as build_image

__all__ = ["pio_image", "qemu_board"]


def pio_image(env_name: str) -> Path:
    try:
        return build_image(env_name)
    except FirmwareUnavailable as missing:
        pytest.skip(str(missing))
