"""Fixtures several test files share."""

from __future__ import annotations

from pathlib import Path

import pytest

from ftte.link.native import build_native_board


@pytest.fixture(scope="session")
def binary() -> Path:
    """The native firmware board program, built once per session (cached by its sources' hash)."""
    return build_native_board()
