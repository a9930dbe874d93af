"""FedBuff (Nguyen et al., 2022): buffered asynchronous aggregation, the semi-asynchronous baseline.

Each buffered delta is scaled by 1/sqrt(1 + staleness) and the buffer is averaged by count,
not by weight: staleness shrinks the step instead of only shifting the mix, as in the paper.
Partial coverage is handled per coordinate: a coordinate's count is the number of buffered
updates that cover it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ftte.aggregation.buffered import BufferedStrategy, check_buffer_config
from ftte.aggregation.core import Update
from ftte.aggregation.weighting import AgeWeight

FEDBUFF_AGE = AgeWeight("polynomial", a=0.5)  # 1 / sqrt(1 + s)


@dataclass(frozen=True)
class FedBuffConfig:
    buffer_size: int = 10
    max_staleness: int | None = None
    server_lr: float = 1.0
    server_momentum: float = 0.0

    def __post_init__(self):
        check_buffer_config(self.buffer_size, self.max_staleness)

    @staticmethod
    def from_dict(data: dict) -> "FedBuffConfig":
        return FedBuffConfig(**data)


class FedBuff(BufferedStrategy):
    """delta_j = sum_{i covers j} d_ij / sqrt(1 + s_i) / #{i covers j};  theta += lr * delta."""

    name = "fedbuff"
    config_type = FedBuffConfig
    divide_by = "count"

    def weights(self, updates: Sequence[Update], version: int) -> np.ndarray:
        return FEDBUFF_AGE(np.array([version - u.base_version for u in updates], np.float64))
