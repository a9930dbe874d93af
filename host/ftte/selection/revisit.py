"""When the fleet changes, does w* have to be chosen again? Pure: plain numbers in, a bool out.

The usable budget is min(board RAM) * (1 - margin), as everywhere else. A w* whose C-planned
arena exceeds it cannot run on the weakest board any more (a board joined with less RAM, or the
margin grew): that calls for a new selection. A fleet whose usable budget grew leaves w* valid;
with `grow`, a growth of more than that fraction of the budget w* was sized for also calls for
one (room to train more).
"""

from __future__ import annotations

from collections.abc import Sequence


def usable(ram_budgets: Sequence[int], margin: float) -> int:
    """min(ram_budgets) * (1 - margin), in whole bytes (the same rule as fleet.select.usable_budget)."""
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"margin must be in [0, 1), got {margin}")
    if not ram_budgets:
        raise ValueError("no boards: nothing to size the update for")
    return int(min(ram_budgets) * (1.0 - margin))


def needs_reselection(arena: int, sized_for: int, new_budgets: Sequence[int], margin: float,
                      grow: float | None = None) -> bool:
    """True when a w* whose C-planned arena is `arena` bytes, chosen for a usable budget of
    `sized_for` bytes, must be chosen again for boards with `new_budgets` bytes of RAM: the arena
    exceeds the new usable budget, or (with `grow`) the usable budget exceeds
    sized_for * (1 + grow). No boards: False."""
    if not new_budgets:
        return False
    budget = usable(new_budgets, margin)
    if arena > budget:
        return True
    return grow is not None and budget > sized_for * (1.0 + grow)
