"""A virtual clock for asyncio: an event loop whose `time()` is simulated seconds.

The loop is asyncio's own selector loop with two changes: `time()` returns a counter instead of
the monotonic clock, and the selector never sleeps. When no callback is ready, asyncio asks the
selector to wait until the earliest timer is due; ours moves the counter to that timer at once
(and still polls the loop's self-pipe without blocking). So `await asyncio.sleep(s)`,
`asyncio.wait_for(..., timeout)` and every other timer keep their meaning in simulated seconds,
while the coroutines themselves (the coordinator, the strategies, the C kernels) run for real
and take no simulated time at all: a discrete-event simulation on the unmodified asyncio
machinery.

If nothing is ready and no timer is scheduled, nothing can ever happen again: the loop raises
`SimulationDeadlock` instead of blocking forever.

    result = run_virtual(main())   # like asyncio.run, on simulated time starting at 0
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class SimulationDeadlock(RuntimeError):
    """Every coroutine waits and no timer is due: the simulated system can never progress."""


class _InstantSelector(selectors.DefaultSelector):
    """Polls without blocking; a wait of `timeout` seconds advances the virtual clock instead."""

    def __init__(self):
        super().__init__()
        self.loop: VirtualClockLoop | None = None

    def select(self, timeout: float | None = None):
        loop = self.loop
        if timeout is None:
            raise SimulationDeadlock(f"at simulated time {loop.time() if loop else 0:.6f} s nothing is "
                                     "ready and no timer is scheduled")
        if timeout > 0 and loop is not None:
            loop.advance(timeout)
        return super().select(0)


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """asyncio's selector event loop on simulated time (seconds since the loop was made)."""

    def __init__(self, start: float = 0.0):
        selector = _InstantSelector()
        super().__init__(selector)
        selector.loop = self
        self._now = float(start)
        self._clock_resolution = 1e-9

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward; lands exactly on the earliest timer when that is what is due."""
        target = self._now + seconds
        scheduled = self._scheduled  # asyncio's own heap of timer handles
        if scheduled and scheduled[0].when() <= target + 1e-9:
            target = max(self._now, scheduled[0].when())
        self._now = target


def run_virtual(main: Coroutine[Any, Any, T], start: float = 0.0) -> T:
    """Runs a coroutine to completion on a fresh virtual-clock loop (like asyncio.run)."""
    loop = VirtualClockLoop(start)
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
