"""The coordinator: runs a fleet of boards over any transport that implements `Board`.

See docs/coordinator.md: the board interface, the loop, persistence and `ftte run`.
"""

from ftte.coordinator.board import Board, BoardError, BoardInfo, Hyper, Result, Task
from ftte.coordinator.inprocess import InProcessBoard
from ftte.coordinator.loop import Coordinator, StopRule, Summary
from ftte.coordinator.metrics import Evaluation, Evaluator, MetricsLog
from ftte.coordinator.trainable import Selector, Trainable

__all__ = ["Board", "BoardError", "BoardInfo", "Coordinator", "Evaluation", "Evaluator", "Hyper",
           "InProcessBoard", "MetricsLog", "Result", "Selector", "StopRule", "Summary", "Task", "Trainable"]
