"""Weighting functions: how much an update counts given its age (staleness) and its variance.

Both are small frozen dataclasses (kind + coefficients), so a config is plain values that
persist as JSON, and each is a pure vectorised function. Every function is 1 at zero age /
zero variance and decreases from there; all stay > 0 for finite input, so no update's weight
vanishes by age alone. Exact formulas: docs/aggregation.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AGE_KINDS = ("polynomial", "hinge", "exponential", "constant")
VARIANCE_KINDS = ("inverse", "exponential", "constant")


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
    """r = relative variance of an update (its variance / the buffer's median, see
    `relative_variance`), r >= 0 and possibly +inf.

    inverse:     1 / (1 + b * r)
    exponential: exp(-b * r)
    constant:    1
    """

    kind: str = "inverse"
    b: float = 1.0

    def __post_init__(self):
        if self.kind not in VARIANCE_KINDS:
            raise ValueError(f"variance weight kind must be one of {VARIANCE_KINDS}, got {self.kind!r}")
        if not (np.isfinite(self.b) and self.b >= 0):
            raise ValueError(f"variance weight coefficient must be finite and >= 0, got b={self.b}")

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


def age_from_dict(data: dict) -> AgeWeight:
    return AgeWeight(**data)


def variance_from_dict(data: dict) -> VarianceWeight:
    return VarianceWeight(**data)
