"""What to train on a board: the sparse update that fits its memory budget."""

from ftte.selection.budget import Candidate, channel_order, select_sparse_update, sparse_candidates

__all__ = ["Candidate", "channel_order", "select_sparse_update", "sparse_candidates"]
