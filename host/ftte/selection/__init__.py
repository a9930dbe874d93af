"""What to train on a board: the sparse update that fits its memory budget.

- importance.py: the importance of each parameter group (a layer's bias, one output channel's
  weight row), from a calibration set through the C kernels and from the boards' deltas;
- knapsack.py: the subset of groups with the most importance per byte whose exact C-planned
  arena fits a budget (greedy, the planner as oracle), and nested tiers for several budgets;
- revisit.py: when a fleet change calls for a new selection;
- budget.py: the structured candidates (top k layers, channels of the layer below).
"""

from ftte.selection.budget import Candidate, channel_order, select_sparse_update, sparse_candidates
from ftte.selection.importance import Importance, calibration_importance, update_importance
from ftte.selection.knapsack import (
    Planner, SparseSelection, describe, is_superset, nested_tiers, select_by_importance, union,
)
from ftte.selection.revisit import needs_reselection

__all__ = [
    "Candidate", "Importance", "Planner", "SparseSelection", "calibration_importance", "channel_order", "describe",
    "is_superset", "needs_reselection", "nested_tiers", "select_by_importance", "select_sparse_update", "union",
    "sparse_candidates", "update_importance",
]
