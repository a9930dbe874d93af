"""How simulated boards behave over time: stragglers, availability traces, drop-out.

Stragglers: a seeded fraction of the boards is slowed down by a factor drawn from a
distribution ("uniform:2:10", "lognormal:MU:SIGMA" (factor 1 + e^N(mu, sigma)), "const:5"
or "pareto:A" (1 + Pareto(a))). The factor multiplies compute and link time alike (a loaded
CPU, a weak radio). Everything comes from one numpy Generator per purpose, seeded from the
simulation seed, so the same seed gives the same fleet.

Availability traces, FedScale's format (its client_behave_trace): per client, `active` and
`inactive` lists of seconds (the client is available from active[i] to inactive[i]) and a
`finish_time` after which the pattern repeats. Files: JSON {"client": {"active": [...],
"inactive": [...], "finish_time": T}, ...}, or FedScale's own pickle of that dict (only
open pickles you trust: unpickling runs code). Boards take the trace clients in sorted-key
order, cycling when there are more boards than clients.
"""

from __future__ import annotations

import bisect
import json
import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np


# ---------------------------------------------------------------------------------------------
# Stragglers
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Slowdown:
    """A distribution of slowdown factors (>= 1)."""

    kind: str = "uniform"
    a: float = 2.0
    b: float = 10.0

    @staticmethod
    def parse(text: str) -> "Slowdown":
        parts = text.split(":")
        kind, numbers = parts[0], parts[1:]
        try:
            values = [float(v) for v in numbers]
        except ValueError:
            raise ValueError(f"slowdown {text!r}: the parameters must be numbers") from None
        expected = {"uniform": 2, "lognormal": 2, "const": 1, "pareto": 1}
        if kind not in expected:
            raise ValueError(f"slowdown {text!r}: kind must be one of {', '.join(expected)}")
        if len(values) != expected[kind]:
            raise ValueError(f"slowdown {text!r}: {kind} takes {expected[kind]} parameter(s), "
                             f"e.g. uniform:2:10, lognormal:1:0.5, const:5, pareto:1.5")
        slowdown = Slowdown(kind, *values, *([0.0] * (2 - len(values))))
        if kind in ("uniform", "const") and not 1 <= slowdown.a <= (slowdown.b if kind == "uniform" else math.inf):
            raise ValueError(f"slowdown {text!r}: factors must be >= 1 (and low <= high)")
        if kind == "pareto" and slowdown.a <= 0:
            raise ValueError(f"slowdown {text!r}: the Pareto shape must be > 0")
        return slowdown

    def __str__(self) -> str:
        if self.kind in ("const", "pareto"):
            return f"{self.kind}:{self.a:g}"
        return f"{self.kind}:{self.a:g}:{self.b:g}"

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b, n)
        if self.kind == "lognormal":
            return 1.0 + np.exp(rng.normal(self.a, self.b, n))
        if self.kind == "pareto":
            return 1.0 + rng.pareto(self.a, n)
        return np.full(n, self.a)


def straggler_factors(boards: int, fraction: float, slowdown: Slowdown, seed: int) -> np.ndarray:
    """One factor per board: 1 for the fast ones, a draw for round(fraction x boards) chosen ones."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"straggler fraction must be in [0, 1], got {fraction}")
    rng = np.random.default_rng([seed, 0x57A9])
    factors = np.ones(boards)
    chosen = rng.permutation(boards)[:int(round(fraction * boards))]
    factors[chosen] = slowdown.draw(rng, len(chosen))
    return factors


# ---------------------------------------------------------------------------------------------
# Availability
# ---------------------------------------------------------------------------------------------

EDGE = 1e-9  # simulated seconds: closer than this to an up/down boundary is at it


class Availability:
    """When a board is up: always, or by a FedScale-style trace (periodic over finish_time)."""

    def __init__(self, active=(), inactive=(), finish_time: float | None = None, name: str = "always"):
        self.name = name
        self.active, self.inactive = [float(t) for t in active], [float(t) for t in inactive]
        if len(self.active) != len(self.inactive):
            raise ValueError(f"trace {name}: {len(self.active)} active times, {len(self.inactive)} inactive")
        if any(b < a for a, b in zip(self.active, self.inactive)) or \
                any(b < a for a, b in zip(self.inactive, self.active[1:])):
            raise ValueError(f"trace {name}: intervals must be ordered, active[i] <= inactive[i] <= active[i+1]")
        self.always = not self.active
        self.period = float(finish_time) if finish_time is not None else (self.inactive[-1] if self.inactive else 0)
        if not self.always and self.period < self.inactive[-1]:
            raise ValueError(f"trace {name}: finish_time {self.period} before the last inactive time")
        if not self.always and self.period <= 0:
            raise ValueError(f"trace {name}: needs a finish_time > 0")

    def _interval(self, t: float) -> tuple[float, float] | None:
        """The (start, end) of the up interval containing t, in absolute time, or None if down."""
        cycle = math.floor(t / self.period)
        local = t - cycle * self.period
        i = bisect.bisect_right(self.active, local) - 1
        if i >= 0 and local < self.inactive[i]:
            base = cycle * self.period
            return base + self.active[i], base + self.inactive[i]
        return None

    def is_up(self, t: float) -> bool:
        return self.always or self._interval(t) is not None

    def up_until(self, t: float) -> float:
        """When the board next goes down, given it is up at t (inf when always up)."""
        if self.always:
            return math.inf
        interval = self._interval(t)
        return t if interval is None else interval[1]

    def next_up(self, t: float) -> float:
        """The earliest time >= t at which the board is up."""
        if self.always or self._interval(t) is not None:
            return t
        cycle = math.floor(t / self.period)
        local = t - cycle * self.period
        first = bisect.bisect_right(self.active, local)
        for c, start in ((cycle, first), (cycle + 1, 0)):
            for j in range(start, len(self.active)):
                if self.inactive[j] > self.active[j]:  # skip empty intervals
                    return c * self.period + self.active[j]
        raise ValueError(f"trace {self.name}: never up (every interval is empty)")

    def next_interval(self, t: float) -> tuple[float, float]:
        """(start, end) of the first up interval that ends more than EDGE after t; start <= t
        when the board is up at t. Boundaries within EDGE of t count as reached, so a caller
        that sleeps until `start` or `end` always lands in the next state despite rounding."""
        if self.always:
            return t, math.inf
        cycle = math.floor(t / self.period)
        for c in (cycle - 1, cycle, cycle + 1, cycle + 2):  # t / period may round either way
            base = c * self.period
            for j in range(bisect.bisect_right(self.inactive, t + EDGE - base), len(self.active)):
                a, b = self.active[j], self.inactive[j]
                if b > a and base + b > t + EDGE:
                    return base + a, base + b
        raise ValueError(f"trace {self.name}: never up (every interval is empty)")

    def longest(self) -> float:
        """The longest uninterrupted up time (inf when always up)."""
        return math.inf if self.always else max(b - a for a, b in zip(self.active, self.inactive))

    def uptime(self) -> float:
        return 1.0 if self.always else sum(b - a for a, b in zip(self.active, self.inactive)) / self.period


ALWAYS = Availability()


def load_traces(path: str | Path) -> dict[str, Availability]:
    """{client: Availability} from a FedScale-style trace file (.json, or .pkl/.pickle)."""
    path = Path(path)
    if path.suffix in (".pkl", ".pickle"):
        with open(path, "rb") as handle:
            raw = pickle.load(handle)  # noqa: S301 - FedScale's own format; documented as trusted-only
    else:
        raw = json.loads(path.read_text())
    return parse_traces(raw, str(path))


def parse_traces(raw, source: str = "<traces>") -> dict[str, Availability]:
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{source}: expected a non-empty mapping of client -> {{active, inactive, finish_time}}")
    traces = {}
    for client, record in raw.items():
        if not isinstance(record, dict) or "active" not in record or "inactive" not in record:
            raise ValueError(f"{source}: client {client!r} needs 'active' and 'inactive' lists")
        finish = record.get("finish_time")
        try:
            traces[str(client)] = Availability(record["active"], record["inactive"], finish, f"{source}:{client}")
        except (TypeError, ValueError) as error:
            raise ValueError(f"{source}: client {client!r}: {error}") from None
    return traces


def assign_traces(traces: dict[str, Availability], boards: int) -> list[Availability]:
    keys = sorted(traces, key=lambda k: (len(k), k))
    return [traces[keys[i % len(keys)]] for i in range(boards)]


def synthetic_traces(boards: int, uptime: float, period: float, seed: int) -> list[Availability]:
    """Per board one up interval of uptime x period in each period, at a seeded random phase."""
    if not 0 < uptime <= 1:
        raise ValueError(f"uptime must be in (0, 1], got {uptime}")
    if uptime == 1:
        return [ALWAYS] * boards
    rng = np.random.default_rng([seed, 0xA7A1])
    out = []
    for i, start in enumerate(rng.uniform(0, period * (1 - uptime), boards)):
        out.append(Availability([start], [start + uptime * period], period, f"synthetic-{i}"))
    return out
