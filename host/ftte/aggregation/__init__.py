"""Aggregation strategies: FTTE, and FedBuff, FedAsync, FedAvg as baselines, behind one
event-driven interface (`Strategy`: `assign(board)` and `on_update(update)`).

Pure: no I/O, no clock, no transport. See docs/aggregation.md for the interface and formulas.
"""

from ftte.aggregation.base import Strategy
from ftte.aggregation.core import (
    Advance, Assignment, BoardId, Outcome, Reason, StrategyState, Update, Wait, mean_square,
)
from ftte.aggregation.coverage import ParameterIndex, flat_parameters, load_flat_parameters
from ftte.aggregation.fedasync import FedAsync, FedAsyncConfig
from ftte.aggregation.fedavg import FedAvg, FedAvgConfig
from ftte.aggregation.fedbuff import FedBuff, FedBuffConfig
from ftte.aggregation.ftte import FTTE, FTTEConfig
from ftte.aggregation.merge import Merged, merge
from ftte.aggregation.server import ServerStep
from ftte.aggregation.weighting import AgeWeight, VarianceWeight, board_relative_variances, relative_variance

STRATEGIES: dict[str, type[Strategy]] = {s.name: s for s in (FTTE, FedBuff, FedAsync, FedAvg)}


def restore(state: StrategyState) -> Strategy:
    """The strategy a saved state describes, whichever it is."""
    if state.strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {state.strategy!r}; known: {sorted(STRATEGIES)}")
    return STRATEGIES[state.strategy].from_state(state)


__all__ = [
    "STRATEGIES", "Advance", "AgeWeight", "Assignment", "BoardId", "FTTE", "FTTEConfig", "FedAsync",
    "FedAsyncConfig", "FedAvg", "FedAvgConfig", "FedBuff", "FedBuffConfig", "Merged", "Outcome",
    "ParameterIndex", "Reason", "ServerStep", "Strategy", "StrategyState", "Update", "VarianceWeight",
    "Wait", "board_relative_variances", "flat_parameters", "load_flat_parameters", "mean_square", "merge",
    "relative_variance",
    "restore",
]
