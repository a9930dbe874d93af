"""Weighting functions: how much an update counts given its age (staleness) and its variance.

Both are small frozen dataclasses (kind + coefficients), so a config is plain values that
persist as JSON, and each is a pure vectorised function. Every function is 1 at zero age /
zero variance and decreases from there; all stay > 0 for finite input, so no update's weight
vanishes by age alone. Exact formulas: docs/aggregation.md.
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

AGE_KINDS = ("polynomial", "hinge", "exponential", "constant")
VARIANCE_KINDS = ("inverse", "exponential", "constant")
VARIANCE_BASELINES = ("buffer", "board")


@dataclass(frozen=True)
class AgeWeight:
    """s = staleness (global version now - version the update trained from), s >= 0.

    polynomial:  (1 + s) ** -a
    hinge:       1 if s <= b else 1 / (a * (s - b) + 1)
    exponential: exp(-a * s)
    constant:    1
    """

    kind: str = "polynomial"
    a: float = 0.5
    b: float = 0.0

    def __post_init__(self):
        if self.kind not in AGE_KINDS:
            raise ValueError(f"age weight kind must be one of {AGE_KINDS}, got {self.kind!r}")
        if not (np.isfinite(self.a) and self.a >= 0 and np.isfinite(self.b) and self.b >= 0):
            raise ValueError(f"age weight coefficients must be finite and >= 0, got a={self.a}, b={self.b}")

    def __call__(self, staleness) -> np.ndarray:
        s = np.asarray(staleness, np.float64)
        if self.kind == "polynomial":
            return (1.0 + s) ** -self.a
        if self.kind == "hinge":
            return np.where(s <= self.b, 1.0, 1.0 / (self.a * np.maximum(s - self.b, 0.0) + 1.0))
        if self.kind == "exponential":
            return np.exp(-self.a * s)
        return np.ones_like(s)


@dataclass(frozen=True)
class VarianceWeight:
    """g(x), x >= 0 and possibly +inf:

    inverse:     1 / (1 + b * x)
    exponential: exp(-b * x)
    constant:    1

    `baseline` says what an update's variance v is compared with, and so what x is:
      "buffer": r = v / median(v over the buffer being merged) (`relative_variance`), x = r;
      "board":  r = v / median(the same board's last `history` variances on the same trained
                set) (`board_relative_variances`), x = max(0, r - 1): only a jump above the
                board's own usual counts less; a board whose deltas are always large does not.
    """

    kind: str = "inverse"
    b: float = 1.0
    baseline: str = "buffer"
    history: int = 5  # "board": how many of a board's latest variances its baseline keeps

    def __post_init__(self):
        if self.kind not in VARIANCE_KINDS:
            raise ValueError(f"variance weight kind must be one of {VARIANCE_KINDS}, got {self.kind!r}")
        if not (np.isfinite(self.b) and self.b >= 0):
            raise ValueError(f"variance weight coefficient must be finite and >= 0, got b={self.b}")
        if self.baseline not in VARIANCE_BASELINES:
            raise ValueError(f"variance baseline must be one of {VARIANCE_BASELINES}, got {self.baseline!r}")
        if isinstance(self.history, bool) or not isinstance(self.history, int) or self.history < 1:
            raise ValueError(f"variance history must be an integer >= 1, got {self.history!r}")

    def of_relative(self, relative) -> np.ndarray:
        """The weight of updates with relative variances r under this baseline: g(r) against the
        buffer, g(max(0, r - 1)) against the board's own history."""
        r = np.asarray(relative, np.float64)
        return self(np.maximum(r - 1.0, 0.0) if self.baseline == "board" else r)

    def __call__(self, relative) -> np.ndarray:
        r = np.asarray(relative, np.float64)
        x = self.b * r if self.b > 0 else np.zeros_like(r)  # 0 * inf would be NaN
        if self.kind == "inverse":
            return 1.0 / (1.0 + x)
        if self.kind == "exponential":
            return np.exp(-x)
        return np.ones_like(r)


def relative_variance(variances) -> np.ndarray:
    """v / median(v): scale-free, so the weight means "noisier than this buffer's typical
    update" whatever the layer sizes or learning rate. When the median is 0 (most updates did
    not move), an update that moved is infinitely noisier (r = inf) and one that did not has r = 0.
    """
    v = np.asarray(variances, np.float64)
    median = float(np.median(v)) if v.size else 0.0
    if median > 0:
        return v / median
    return np.where(v > 0, np.inf, 0.0)


BoardHistory = tuple[str, tuple[float, ...]]
"""A board's baseline: the digest of the trained set (`trained_set_digest`) its variances were
measured on, and its latest variances there, oldest first."""


def trained_set_digest(indices) -> str:
    """A short name for a trained set (an update's flat indices): equal sets, equal names."""
    return hashlib.blake2b(np.ascontiguousarray(indices, np.int64).tobytes(), digest_size=8).hexdigest()


def board_relative_variances(boards: Sequence[str], variances: Sequence[float], digests: Sequence[str],
                             history: Mapping[str, BoardHistory], keep: int
                             ) -> tuple[np.ndarray, dict[str, BoardHistory]]:
    """Each update's variance over the median of its board's last `keep` variances on the same
    trained set, in the given (arrival) order, each update then joining its board's history.

    A board's history starts afresh when its trained set changes (another digest): the scale of
    the mean squared delta changes with the set. With no history, or a median of 0 (no scale
    to compare with), r = 1: the update counts as the board's usual one. Returns r and the
    histories of the boards seen, updated (`history` itself is not changed)."""
    updated: dict[str, BoardHistory] = {}
    r = np.empty(len(boards), np.float64)
    for i, (board, v, digest) in enumerate(zip(boards, variances, digests)):
        seen = updated.get(board) or history.get(board)
        values = seen[1] if seen is not None and seen[0] == digest else ()
        median = statistics.median(values) if values else 0.0  # np.median's value, 100x faster on 5 floats
        r[i] = float(v) / median if median > 0 else 1.0
        updated[board] = (digest, (*values, float(v))[-keep:])
    return r, updated


def age_from_dict(data: dict) -> AgeWeight:
    return AgeWeight(**data)


def variance_from_dict(data: dict) -> VarianceWeight:
    return VarianceWeight(**data)
