"""The fleet simulator: the production coordinator and strategies over simulated boards on a
virtual clock. Only the clock and the transport are simulated; see docs/simulator.md."""

from ftte.sim.behaviour import Availability, Slowdown, load_traces, parse_traces, straggler_factors
from ftte.sim.board import SimulatedBoard, Trainers
from ftte.sim.clock import SimulationDeadlock, VirtualClockLoop, run_virtual
from ftte.sim.profiles import LINKS, PROFILES, BoardProfile, Link, task_work
from ftte.sim.simulation import Arm, ArmResult, Fleet, SimConfig

__all__ = ["Arm", "ArmResult", "Availability", "BoardProfile", "Fleet", "LINKS", "Link", "PROFILES", "SimConfig",
           "SimulatedBoard", "SimulationDeadlock", "Slowdown", "Trainers", "VirtualClockLoop", "load_traces",
           "parse_traces", "run_virtual", "straggler_factors", "task_work"]
