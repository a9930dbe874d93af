"""A simulated fleet run: the production coordinator and strategies over simulated boards on a
virtual clock.

    config = SimConfig(boards=100, stragglers=0.5)
    fleet = Fleet.build(config)                 # data, partition, starting model, board behaviour
    result = fleet.run_arm(Arm("ftte"))         # one strategy, to its stopping rule
    results = fleet.run_all()                   # every arm of the config, same fleet, same start

Everything the coordinator does is production code (`ftte.coordinator.Coordinator`,
`ftte.aggregation` strategies, `ftte.fleet.select.choose_spec`, `ftte.fleet.partition`,
`ftte.coordinator.metrics.Evaluator`); the simulator only supplies the boards
(`SimulatedBoard`) and the clock (`run_virtual`). Every arm of one fleet starts from the same
parameters, the same data split and the same board behaviour (profiles, straggler factors,
availability), all derived from the seed.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ftte.aggregation import (
    STRATEGIES, FedAsyncConfig, FedAvgConfig, FedBuffConfig, FTTEConfig, ParameterIndex, flat_parameters,
)
from ftte.coordinator import Coordinator, Evaluator, Hyper, StopRule, Trainable
from ftte.coordinator.trainable import FleetSelector
from ftte.data import Dataset
from ftte.fleet.partition import partition
from ftte.fleet.select import calibrate, choose_spec, usable_budget
from ftte.model import Model, UpdateSpec
from ftte.sim.behaviour import ALWAYS, Slowdown, assign_traces, load_traces, straggler_factors, synthetic_traces
from ftte.sim.board import LocalBackend, SimulatedBoard, Trainers
from ftte.sim.clock import run_virtual
from ftte.sim.datasets import load_data, load_model
from ftte.sim.profiles import PROFILES, profile
from ftte.train import Trainer, plan_memory

STRATEGY_ORDER = ("ftte", "fedbuff", "fedasync", "fedavg")


@dataclass(frozen=True)
class Arm:
    """One strategy to run on the fleet. `spec`: "auto" (the largest structured w* that fits
    the weakest board), "importance" (the most importance per byte that fits it, importance
    measured on the host's share: docs/selection.md), "full" (the whole model, full backprop)
    or "bias"."""

    strategy: str
    spec: str = "auto"
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.strategy


@dataclass(frozen=True)
class SimConfig:
    # model and data
    model: str = "digits_mlp"
    data: str | None = None            # default: the model's data set; or a name / .npz path
    samples: int | None = None         # size of a generated data set (mnist1d total, accelerometer per class)
    partition: str = "dirichlet"
    alpha: float = 0.5
    server_share: float = 0.1          # the host's share of the training set (pretraining)
    start: str = "pretrained"          # pretrained | scratch
    start_epochs: int = 30
    start_lr: float = 0.05
    start_momentum: float = 0.0
    # fleet
    boards: int = 100
    mix: tuple[tuple[str, float], ...] = (("nrf52840", 0.4), ("esp32", 0.2), ("esp32c3", 0.3), ("cortex-m7", 0.1))
    link: str | None = None            # force every board onto this link (uart115200, uart921600, ble1m, ble2m)
    ram: int | None = None             # training-arena budget of every board (default: each profile's)
    margin: float = 0.1                # of the weakest board's budget kept free
    stragglers: float = 0.5            # fraction of boards slowed down
    slowdown: str = "uniform:2:10"
    traces: str | None = None          # FedScale-style availability trace file
    uptime: float = 1.0                # without traces: fraction of each period a board is up (1: always)
    period: float = 3600.0
    dropout: float = 0.0               # probability that a task ends its board for good
    # training
    lr: float = 0.05
    local_steps: int = 10
    batch: int = 1
    momentum: float = 0.0
    # strategies
    arms: tuple[Arm, ...] = (Arm("ftte"), Arm("fedbuff", "full"), Arm("fedasync", "full"), Arm("fedavg", "full"))
    buffer_size: int = 10              # FTTE and FedBuff K
    max_staleness: int | None = None   # FTTE's refusal threshold (None: weight only, never refuse)
    ftte_server_lr: float = 0.5        # FTTE's server learning rate (FTTEConfig.server_lr, docs/aggregation.md)
    fedasync_alpha: float = 0.6
    fedavg_fraction: float = 0.1       # FedAvg cohort: this fraction of the boards per round
    reselect_every: int | None = None  # arms with a chosen w* ("auto", "importance"): choose it again every N versions
    # stopping
    updates: int = 3000                # asynchronous arms: stop after about this many accepted updates
    rounds: int = 30                   # FedAvg: stop after this many rounds
    horizon: float | None = None       # simulated seconds for every arm (overrides updates / rounds)
    evals: int = 60                    # evaluations per arm (about)
    seed: int = 0
    backend: str = "local"             # local | ray
    ray_workers: int = 2

    def replace(self, **changes) -> "SimConfig":
        return dataclasses.replace(self, **changes)


@dataclass
class ArmResult:
    arm: Arm
    strategy: str
    spec_label: str
    trainable: int
    parameters: int
    arena_bytes: int               # training arena each board needs (C planner, task batch)
    fits_weakest: bool             # ... within the weakest board's budget
    curve: list[tuple[float, int, float]]  # (simulated s, version, test accuracy)
    reason: str
    versions: int
    accepted: int
    refused: int
    bytes_down: int
    bytes_up: int
    sim_seconds: float
    wall_seconds: float
    staleness_mean: float
    dropped: int
    events: list[dict] = field(repr=False, default_factory=list)

    @property
    def name(self) -> str:
        return self.arm.name

    @property
    def joined(self) -> float:
        """Simulated time at which every board had joined (provisioning done): the first evaluation."""
        return self.curve[0][0] if self.curve else 0.0

    @property
    def final_accuracy(self) -> float:
        return self.curve[-1][2] if self.curve else float("nan")

    @property
    def best_accuracy(self) -> float:
        return max(a for _, _, a in self.curve) if self.curve else float("nan")

    @property
    def payload_per_update(self) -> float:
        """Bytes down + up per board update (values sent + deltas returned)."""
        n = self.accepted + self.refused
        return (self.bytes_down + self.bytes_up) / n if n else float("nan")

    def time_to(self, target: float) -> float | None:
        """Simulated seconds until the test accuracy first reached `target` (None: never)."""
        for t, _, accuracy in self.curve:
            if accuracy >= target:
                return t
        return None

    def accuracy_at(self, t: float) -> float:
        """Test accuracy of the latest evaluated version at simulated time t."""
        best = self.curve[0][2] if self.curve else float("nan")
        for when, _, accuracy in self.curve:
            if when > t:
                break
            best = accuracy
        return best

    def summary(self) -> dict:
        return {"arm": self.name, "strategy": self.strategy, "spec": self.spec_label, "trainable": self.trainable,
                "parameters": self.parameters, "arena_bytes": self.arena_bytes, "fits_weakest": self.fits_weakest,
                "reason": self.reason, "versions": self.versions, "accepted": self.accepted, "refused": self.refused,
                "bytes_down": self.bytes_down, "bytes_up": self.bytes_up, "sim_seconds": self.sim_seconds,
                "wall_seconds": self.wall_seconds, "staleness_mean": self.staleness_mean, "dropped": self.dropped,
                "final_accuracy": self.final_accuracy, "best_accuracy": self.best_accuracy,
                "payload_per_update": self.payload_per_update, "curve": self.curve}


Progress = Callable[[str, dict], None]  # (arm name, coordinator event)


class Fleet:
    """The shared part of every arm: data, its split, the starting model, the boards' behaviour."""

    def __init__(self, config: SimConfig, model: Model, data: Dataset, start: dict,
                 shards: list[np.ndarray], profiles: list[str], factors: np.ndarray, availability: list,
                 server: np.ndarray | None = None):
        self.config, self.model, self.data, self.start = config, model, data, start
        self.server = np.zeros(0, np.int64) if server is None else server  # the host's share (pretraining, calibration)
        self._selections: dict[str, tuple] = {}
        self.shards, self.profiles, self.factors, self.availability = shards, profiles, factors, availability
        self.rams = [config.ram if config.ram is not None else PROFILES[p].train_ram for p in profiles]
        self.budget = usable_budget(self.rams, config.margin)
        self.evaluator = Evaluator(model, data.x_test, data.y_test)
        self.start["accuracy"] = self.evaluator(flat_parameters(model)).accuracy

    # ------------------------------------------------------------------------------ building

    @staticmethod
    def build(config: SimConfig) -> "Fleet":
        model, default_data = load_model(config.model, config.seed)
        data = load_data(config.data or default_data or "", config.samples, 0) if (config.data or default_data) \
            else _no_data(config.model)
        if int(np.prod(data.sample_shape)) != int(np.prod(model.input_shape)):
            raise ValueError(f"data samples are {data.sample_shape}, the model takes {model.input_shape}")
        rng = np.random.default_rng([config.seed, 0x5E7])
        order = rng.permutation(len(data.y_train))
        cut = int(round(len(order) * config.server_share))
        server, rest = np.sort(order[:cut]), np.sort(order[cut:])
        start = _starting_point(model, data, server, config)
        parts = partition(data.y_train[rest], config.boards, config.partition, config.alpha, config.seed, min_size=1)
        shards = [rest[p] for p in parts]
        profiles = _mix(config.mix, config.boards, config.seed)
        for name in set(profiles):
            p = profile(name)
            if 4 * model.parameter_count() > p.flash:
                raise ValueError(f"{model.name}'s weights ({4 * model.parameter_count():,} B) exceed "
                                 f"{name}'s flash ({p.flash:,} B)")
            if config.link is not None:
                p.with_link(config.link)  # raises if the board has no such link
        factors = straggler_factors(config.boards, config.stragglers, Slowdown.parse(config.slowdown), config.seed)
        if config.traces is not None:
            availability = assign_traces(load_traces(config.traces), config.boards)
        elif config.uptime < 1:
            availability = synthetic_traces(config.boards, config.uptime, config.period, config.seed)
        else:
            availability = [ALWAYS] * config.boards
        return Fleet(config, model, data, start, shards, profiles, factors, availability, server)

    def spec_for(self, arm: Arm):
        """(spec, label, memory plan) of an arm at the task batch. "auto": the structured
        heuristic; "importance": greedy importance per byte, the importance measured on the
        host's share as `ftte run` does (fleet.select.calibrate, docs/selection.md)."""
        c = self.config
        if arm.spec in ("auto", "importance"):
            if arm.spec not in self._selections:
                importance = self.calibrate(self.model) if arm.spec == "importance" else None
                selection = choose_spec(self.model, self.budget, c.batch, c.momentum > 0, arm.spec, importance)
                self._selections[arm.spec] = (selection.spec, selection.label, selection.memory, importance)
            return self._selections[arm.spec][:3]
        spec = UpdateSpec.full(self.model) if arm.spec == "full" else UpdateSpec.bias_only(self.model)
        return spec, arm.spec, plan_memory(self.model, spec, c.batch, c.momentum > 0)

    def calibrate(self, model: Model):
        """The importance of `model`'s parameter groups on the host's share (fleet.select.calibrate)."""
        return calibrate(model, self.data.x_train[self.server], self.data.y_train[self.server])

    def selector(self, arm: Arm) -> FleetSelector | None:
        """The coordinator's Selector for an arm whose w* is chosen ("auto", "importance") when the
        config asks for periodic reselection (`reselect_every`), as `ftte run` builds it."""
        c = self.config
        if c.reselect_every is None or arm.spec not in ("auto", "importance"):
            return None
        self.spec_for(arm)
        importance = self._selections[arm.spec][3]
        return FleetSelector(self.model, c.margin, c.batch, c.momentum > 0, arm.spec, importance,
                             c.lr * c.local_steps, recalibrate=self.calibrate if arm.spec == "importance" else None)

    def strategy(self, arm: Arm, params: np.ndarray):
        c = self.config
        if arm.strategy == "ftte":
            return STRATEGIES["ftte"](params, FTTEConfig(buffer_size=c.buffer_size, max_staleness=c.max_staleness,
                                                           server_lr=c.ftte_server_lr))
        if arm.strategy == "fedbuff":
            return STRATEGIES["fedbuff"](params, FedBuffConfig(buffer_size=c.buffer_size))
        if arm.strategy == "fedasync":
            return STRATEGIES["fedasync"](params, FedAsyncConfig(alpha=c.fedasync_alpha))
        if arm.strategy == "fedavg":
            return STRATEGIES["fedavg"](params, FedAvgConfig(fraction=c.fedavg_fraction),
                                        rng=np.random.default_rng([c.seed, 0xFEDA]))
        raise ValueError(f"unknown strategy {arm.strategy!r}; known: {', '.join(STRATEGY_ORDER)}")

    def updates_per_version(self, arm: Arm) -> int:
        c = self.config
        if arm.strategy in ("ftte", "fedbuff"):
            return c.buffer_size
        if arm.strategy == "fedavg":
            return FedAvgConfig(fraction=c.fedavg_fraction).cohort_size(c.boards)
        return 1

    def boards(self, backend, check_ram: bool) -> list[SimulatedBoard]:
        c = self.config
        out = []
        for i, (shard, name) in enumerate(zip(self.shards, self.profiles)):
            p = profile(name) if c.link is None else profile(name).with_link(c.link)
            out.append(SimulatedBoard(f"{name}-{i:03d}", p, shard, backend, ram_budget=self.rams[i],
                                      factor=float(self.factors[i]), availability=self.availability[i],
                                      dropout=c.dropout, seed=c.seed * 100_003 + i, check_ram=check_ram))
        return out

    def backend(self):
        trainers = Trainers(self.model, self.data.x_train, self.data.y_train)
        if self.config.backend == "local":
            return LocalBackend(trainers)
        if self.config.backend == "ray":
            from ftte.sim.ray_backend import RayBackend
            return RayBackend(trainers, self.config.ray_workers)
        raise ValueError(f"backend must be 'local' or 'ray', got {self.config.backend!r}")

    # ------------------------------------------------------------------------------ running

    def stop_rule(self, arm: Arm, horizon: float | None) -> StopRule:
        c = self.config
        if c.horizon is not None or horizon is not None:
            limit = c.horizon if c.horizon is not None else horizon
            versions = None
        else:
            limit = None
            versions = c.rounds if arm.strategy == "fedavg" else max(1, c.updates // self.updates_per_version(arm))
        if horizon is not None and arm.strategy == "fedavg" and c.horizon is None:
            limit, versions = None, c.rounds  # FedAvg keeps its round budget
        return StopRule(max_versions=versions, max_seconds=limit)

    def run_arm(self, arm: Arm, horizon: float | None = None, progress: Progress | None = None) -> ArmResult:
        """One strategy on this fleet to its stopping rule: `updates` accepted updates (async
        arms), `rounds` rounds (FedAvg), or `horizon` simulated seconds when given."""
        c = self.config
        spec, label, memory = self.spec_for(arm)
        params0 = flat_parameters(self.model)
        strategy = self.strategy(arm, params0)
        indices = ParameterIndex.of(self.model).indices(spec)
        stop = self.stop_rule(arm, horizon)
        per_version = self.updates_per_version(arm)
        expected = (stop.max_versions or c.rounds) * per_version if stop.max_versions else c.updates
        eval_every = max(1, round(expected / per_version / max(c.evals, 1)))
        events: list[dict] = []

        def log(event: dict) -> None:
            events.append(event)
            if progress is not None:
                progress(arm.name, event)

        fits = memory.total <= self.budget
        backend = self.backend()
        boards = self.boards(backend, check_ram=fits)
        trainable = Trainable(spec, indices, memory.total if fits else 0, label, self.budget)
        selector = self.selector(arm)
        coordinator = Coordinator(strategy, trainable, Hyper(c.lr, c.local_steps, c.batch, c.momentum),
                                  evaluate=self.evaluator, stop=stop, task_timeout=math.inf,
                                  eval_every=eval_every, log=log, selector=selector,
                                  reselect_every=c.reselect_every if selector is not None else None)
        wall = time.perf_counter()
        try:
            summary = run_virtual(coordinator.run(boards))
        finally:
            backend.close()
        wall = time.perf_counter() - wall
        curve = [(e["time"], e["version"], e["accuracy"]) for e in events
                 if e["event"] == "version" and e["accuracy"] is not None]
        stale = [s for e in events if e["event"] == "update" and e["accepted"] for s in [e["staleness"]]]
        return ArmResult(arm, arm.strategy, label, memory.trainable_params, self.model.parameter_count(),
                         memory.total, fits, curve, summary.reason, summary.version, summary.accepted,
                         summary.refused, summary.bytes_down, summary.bytes_up, summary.seconds, wall,
                         float(np.mean(stale)) if stale else 0.0, len(summary.dropped), events)

    def run_all(self, progress: Progress | None = None) -> list[ArmResult]:
        """Every arm of the config. Without a horizon, the asynchronous arms after the first one
        stop at the simulated time the first (FTTE, by default) took for its `updates`, so that
        they are compared at equal simulated time; FedAvg runs its `rounds`."""
        results, horizon = [], None
        for arm in self.config.arms:
            result = self.run_arm(arm, None if arm.strategy == "fedavg" else horizon, progress)
            if horizon is None and arm.strategy != "fedavg" and self.config.horizon is None:
                horizon = result.sim_seconds - result.joined  # max_seconds counts from the joins
            results.append(result)
        return results


def _no_data(model: str) -> Dataset:
    raise ValueError(f"{model}: a converted model needs a data set (data = name or .npz path)")


def _mix(mix: Sequence[tuple[str, float]], boards: int, seed: int) -> list[str]:
    """Profile names for `boards` boards in the mix's proportions (largest remainder), shuffled."""
    names = [name for name, _ in mix]
    for name in names:
        profile(name)
    weights = np.array([w for _, w in mix], np.float64)
    if np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(f"mix weights must be >= 0 and not all 0, got {list(mix)}")
    exact = weights / weights.sum() * boards
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[:boards - counts.sum()]:
        counts[i] += 1
    out = [name for name, count in zip(names, counts) for _ in range(count)]
    return [out[i] for i in np.random.default_rng([seed, 0x313]).permutation(boards)]


def _starting_point(model: Model, data: Dataset, server: np.ndarray, config: SimConfig) -> dict:
    """w0 in place, as `ftte run` makes it: host pretraining (full backprop) on its share, or init."""
    if config.start == "scratch" or config.start_epochs == 0 or len(server) == 0:
        return {"mode": "scratch", "detail": f"random init (seed {config.seed})"}
    if config.start != "pretrained":
        raise ValueError(f"start must be 'pretrained' or 'scratch', got {config.start!r}")
    trainer = Trainer(model, UpdateSpec.full(model), batch=16, momentum=config.start_momentum > 0)
    trainer.fit(data.x_train[server], data.y_train[server], config.start_epochs, config.start_lr,
                config.start_momentum, seed=config.seed)
    trainer.export()
    momentum = f", momentum {config.start_momentum:g}" if config.start_momentum else ""
    return {"mode": "pretrained", "epochs": config.start_epochs, "server_samples": int(len(server)),
            "detail": f"host pretrained {config.start_epochs} epochs (full backprop, batch 16, lr "
                      f"{config.start_lr:g}{momentum}) on {len(server)} server-side samples"}
