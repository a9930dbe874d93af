"""FTTE: semi-asynchronous buffered aggregation, each update weighted by its age and by its
variance against its own board's recent ones.

A stale update was computed on a model that has since moved, so it counts less, but it is not
thrown away unless it is older than `max_staleness`. Weights are renormalised per coordinate,
so a parameter that only some boards train is the weighted mean of exactly those boards'
deltas; the server learning rate (default 0.5) sets the step.

The variance weight compares the mean squared delta a board reports with the median of that
same board's last 5 on the same trained set (`VarianceWeight("inverse", b=1, baseline="board")`):
1 / (1 + max(0, r - 1)). That statistic measures how far the board's local data pulls the
model, i.e. its local loss, so against the buffer's median (`baseline="buffer"`, the default
until 2026-11-30) the boards whose classes the model still gets wrong sent deltas hundreds of
times the median and got about 1% of an equal share. Against its own history, a board with a
high local loss is not damped for it; only a jump above its own usual is (docs/aggregation.md,
"Why FTTE compares a board's variance with its own"). `VarianceWeight("constant")` weights by
age alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ftte.aggregation.buffered import BufferedStrategy, check_buffer_config
from ftte.aggregation.core import Update
from ftte.aggregation.weighting import (
    AgeWeight, BoardHistory, VarianceWeight, board_relative_variances, relative_variance, trained_set_digest,
)


@dataclass(frozen=True)
class FTTEConfig:
    """K = buffer_size; updates with staleness > max_staleness are refused (None: never)."""

    buffer_size: int = 10
    max_staleness: int | None = 32
    age: AgeWeight = field(default_factory=AgeWeight)            # (1 + s) ** -0.5
    # against the board's own last 5 variances, not the buffer's median (module docstring)
    variance: VarianceWeight = field(default_factory=lambda: VarianceWeight("inverse", b=1.0, baseline="board"))
    weight_by_samples: bool = False
    server_lr: float = 0.5  # half of the renormalised mean: FedBuff's 1/sqrt(1+s) shrinks its mean about as much
    server_momentum: float = 0.0

    def __post_init__(self):
        check_buffer_config(self.buffer_size, self.max_staleness)

    @staticmethod
    def from_dict(data: dict) -> "FTTEConfig":
        return FTTEConfig(**{**data, "age": AgeWeight(**data["age"]), "variance": VarianceWeight(**data["variance"])})


def ftte_weights(updates: Sequence[Update], version: int, config: FTTEConfig,
                 relative: np.ndarray | None = None) -> np.ndarray:
    """p_i = w_i / sum_k w_k with w_i = age(s_i) * variance weight(r_i) [* n_i]. `relative`: the
    r_i (`relative_variances`, which a strategy with board histories computes against them);
    if None, against the buffer's median, or (baseline "board") with no history yet.
    If every w_i underflows to 0 the buffer is weighted equally rather than discarded."""
    staleness = np.array([version - u.base_version for u in updates], np.float64)
    w = config.age(staleness)
    if config.variance.kind != "constant":
        if relative is None:
            relative = relative_variances(updates, config.variance)[0]
        w = w * config.variance.of_relative(relative)
    if config.weight_by_samples:
        w = w * np.array([u.samples for u in updates], np.float64)
    total = float(np.sum(w))
    return w / total if total > 0 else np.full(len(updates), 1.0 / len(updates))


def relative_variances(updates: Sequence[Update], variance: VarianceWeight,
                       history: Mapping[str, BoardHistory] | None = None, digests: Sequence[str] | None = None
                       ) -> tuple[np.ndarray, dict[str, BoardHistory]]:
    """r per update under `variance.baseline`, and (baseline "board") the boards' updated histories."""
    variances = [u.variance for u in updates]
    if variance.baseline == "buffer":
        return relative_variance(variances), {}
    if digests is None:
        digests = [trained_set_digest(u.indices) for u in updates]
    return board_relative_variances([u.board_id for u in updates], variances, digests, history or {},
                                    variance.history)


class FTTE(BufferedStrategy):
    """The FTTE aggregation strategy (see docs/aggregation.md for the exact formulas).

    With the variance weight against each board's own history (`VarianceWeight(baseline="board")`)
    it keeps, per registered board, the digest of its last trained set and its latest
    `history` variances there (bounded: `history` floats per board), updated at each merge in
    arrival order, dropped when the board unregisters, and persisted in `state().extra`."""

    name = "ftte"
    config_type = FTTEConfig
    divide_by = "weight"

    def __init__(self, params, config=None, **kwargs):
        super().__init__(params, config, **kwargs)
        self._history: dict[str, BoardHistory] = {}
        self._digest: tuple[np.ndarray | None, str] = (None, "")  # the last indices array and its digest
        self._folding: dict[str, BoardHistory] = {}  # the histories the buffer being merged leaves

    @property
    def _tracks_boards(self) -> bool:
        return self.config.variance.kind != "constant" and self.config.variance.baseline == "board"

    def _digests(self, updates: Sequence[Update]) -> list[str]:
        """Trained-set digests; updates of one w* share their (read-only) indices array, so it is
        hashed once per array in a row."""
        out = []
        for u in updates:
            if u.indices is not self._digest[0]:
                self._digest = (u.indices, trained_set_digest(u.indices))
            out.append(self._digest[1])
        return out

    def weights(self, updates: Sequence[Update], version: int) -> np.ndarray:
        if not self._tracks_boards:
            return ftte_weights(updates, version, self.config)
        relative, self._folding = relative_variances(updates, self.config.variance, self._history,
                                                     self._digests(updates))
        return ftte_weights(updates, version, self.config, relative)

    def _fold(self):
        advance = super()._fold()  # raises, changing nothing, if the aggregate is not finite
        if self._tracks_boards:  # the histories its weights() worked out, kept only once merged
            self._history.update((board, h) for board, h in self._folding.items() if board in self._boards)
        return advance

    def unregister(self, board_id):
        self._history.pop(board_id, None)
        return super().unregister(board_id)

    def _extra(self) -> dict:
        if not self._history:
            return {}
        return {"variance_history": {board: [digest, list(values)]
                                     for board, (digest, values) in sorted(self._history.items())}}

    def _restore(self, buffer, arrays, extra) -> None:
        super()._restore(buffer, arrays, extra)
        self._history = {board: (str(digest), tuple(float(v) for v in values))
                         for board, (digest, values) in extra.get("variance_history", {}).items()}
