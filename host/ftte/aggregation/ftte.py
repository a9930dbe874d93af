"""FTTE: semi-asynchronous buffered aggregation, each update weighted by its age (and, when
configured, its variance).

A stale update was computed on a model that has since moved, so it counts less, but it is not
thrown away unless it is older than `max_staleness`. Weights are renormalised per coordinate,
so a parameter that only some boards train is the weighted mean of exactly those boards'
deltas; the server learning rate (default 0.5) sets the step.

The variance weight (a large mean squared delta relative to the buffer's median counts less)
is off by default (`VarianceWeight("constant")`). The mean squared delta a board reports
measures how far its local data pulls the model, i.e. its local loss, not the noise of its
update: on label-skewed data the boards whose classes the model still gets wrong send deltas
hundreds of times the median, and 1 / (1 + v / median v) gave them about 1% of the weight of
the boards that had nothing left to learn (docs/aggregation.md, "Why FTTE weights by age
only"). `VarianceWeight("inverse", b=1)` restores it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ftte.aggregation.buffered import BufferedStrategy, check_buffer_config
from ftte.aggregation.core import Update
from ftte.aggregation.weighting import AgeWeight, VarianceWeight, relative_variance


@dataclass(frozen=True)
class FTTEConfig:
    """K = buffer_size; updates with staleness > max_staleness are refused (None: never)."""

    buffer_size: int = 10
    max_staleness: int | None = 32
    age: AgeWeight = field(default_factory=AgeWeight)            # (1 + s) ** -0.5
    # off by default: the mean squared delta measures the local loss, not noise (module docstring)
    variance: VarianceWeight = field(default_factory=lambda: VarianceWeight("constant"))
    weight_by_samples: bool = False
    server_lr: float = 0.5  # half of the renormalised mean: FedBuff's 1/sqrt(1+s) shrinks its mean about as much
    server_momentum: float = 0.0

    def __post_init__(self):
        check_buffer_config(self.buffer_size, self.max_staleness)

    @staticmethod
    def from_dict(data: dict) -> "FTTEConfig":
        return FTTEConfig(**{**data, "age": AgeWeight(**data["age"]), "variance": VarianceWeight(**data["variance"])})


def ftte_weights(updates: Sequence[Update], version: int, config: FTTEConfig) -> np.ndarray:
    """p_i = w_i / sum_k w_k with w_i = age(s_i) * variance(v_i / median v) [* n_i].
    If every w_i underflows to 0 the buffer is weighted equally rather than discarded."""
    staleness = np.array([version - u.base_version for u in updates], np.float64)
    variances = np.array([u.variance for u in updates], np.float64)
    w = config.age(staleness) * config.variance(relative_variance(variances))
    if config.weight_by_samples:
        w = w * np.array([u.samples for u in updates], np.float64)
    total = float(np.sum(w))
    return w / total if total > 0 else np.full(len(updates), 1.0 / len(updates))


class FTTE(BufferedStrategy):
    """The FTTE aggregation strategy (see docs/aggregation.md for the exact formulas)."""

    name = "ftte"
    config_type = FTTEConfig
    divide_by = "weight"

    def weights(self, updates: Sequence[Update], version: int) -> np.ndarray:
        return ftte_weights(updates, version, self.config)
