"""Training through the C kernels: layer table, exact memory plan, trainer."""

from ftte.train.memory import MemoryPlan, plan_memory
from ftte.train.trainer import Trainer

__all__ = ["MemoryPlan", "Trainer", "plan_memory"]
