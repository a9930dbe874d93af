"""A run assembled from its config: model, data, starting point, boards, update spec, strategy,
store and metrics, ready for the coordinator; and resumed from run.sqlite the same way.

    fleet = open_run(load_config("fleet.toml"), resume=False)
    summary = asyncio.run(fleet.run())
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ftte.aggregation import STRATEGIES, Strategy, flat_parameters, load_flat_parameters, restore
from ftte.coordinator.board import Board, Hyper
from ftte.coordinator.inprocess import InProcessBoard
from ftte.coordinator.loop import Coordinator, StopRule, Summary
from ftte.coordinator.metrics import Evaluator, MetricsLog, Sink
from ftte.coordinator.trainable import FleetSelector, Trainable
from ftte.data import Dataset, accelerometer, digits, digits_28
from ftte.fleet.config import BoardGroup, RunConfig
from ftte.fleet.partition import partition
from ftte.fleet.select import Selection, calibrate, choose_spec, usable_budget
from ftte.model import Model, UpdateSpec
from ftte.store import RunStore, SelectionRecord
from ftte.train import Trainer, plan_memory
from ftte.zoo import reference_model

DATASETS = {"digits": digits, "digits28": digits_28, "accelerometer": accelerometer}


@dataclass
class FleetRun:
    """Everything a run needs, built; `run()` drives it to its stopping rule."""

    config: RunConfig
    model: Model           # the starting model w0 (its frozen part is what every board runs)
    data: Dataset
    selection: Selection
    strategy: Strategy
    boards: list[Board]
    later: list[tuple[int, Board]]  # (version, board): boards that join when the model reaches it
    store: RunStore
    log: MetricsLog
    coordinator: Coordinator
    start: dict            # the starting point, stated with every accuracy figure
    resumed: bool

    async def run(self) -> Summary:
        try:
            summary = await self.coordinator.run(self.boards, self.later)
            self.store.set_meta("status", {"reason": summary.reason, "version": summary.version,
                                           "accuracy": summary.accuracy, "at": time.time()})
            return summary
        finally:
            self.close()

    def close(self) -> None:
        self.log.close()
        self.store.close()


def open_run(config: RunConfig, resume: bool = False, sinks: Sequence[Sink] = ()) -> FleetRun:
    out = config.output_dir
    if resume and not (out / "run.sqlite").exists():
        raise ValueError(f"nothing to resume: no {out / 'run.sqlite'}")
    out.mkdir(parents=True, exist_ok=True)
    store = RunStore(out / "run.sqlite", config.output.keep_versions)
    try:
        return _open(config, store, resume, sinks)
    except BaseException:
        store.close()
        raise


def _open(config: RunConfig, store: RunStore, resume: bool, sinks: Sequence[Sink]) -> FleetRun:
    if resume and not store.has_run:
        raise ValueError(f"nothing to resume: {store.path} holds no run")
    if not resume and store.has_run:
        raise ValueError(f"{store.path} already holds a run: continue it with --resume, or set another [output] dir")
    if resume:
        _check_same_run(store.meta("config"), config.as_dict())
    model, data = load_model(config), load_data(config)
    _check_fit(model, data)
    server, rest = _server_split(len(data.y_train), config)
    rams = [g.ram for g in config.boards if g.join_at_version == 0 for _ in range(g.count)]
    t, momentum = config.training, config.training.momentum > 0
    if resume:
        load_flat_parameters(model, store.params(0))
        start = store.meta("start")
    else:
        start = _starting_point(model, data, server, config)
    evaluator = Evaluator(model, data.x_test, data.y_test)
    importance = (calibrate(model, data.x_train[server], data.y_train[server])
                  if config.budget.spec == "importance" else None)  # the host's share (docs/selection.md)
    recalibrate = ((lambda at: calibrate(at, data.x_train[server], data.y_train[server]))
                   if config.budget.spec == "importance" else None)  # reselect_every: importance at the current model
    selector = FleetSelector(model, config.budget.margin, t.batch, momentum, config.budget.spec, importance,
                             t.lr * t.local_steps, config.budget.grow, config.budget.tiers, recalibrate)
    if resume:
        record = store.selections()[-1]
        spec = UpdateSpec.from_json(record.spec)
        selection = Selection(spec, record.label, plan_memory(model, spec, t.batch, momentum), record.budget)
        strategy = restore(store.load_state())
    else:
        start["accuracy"] = evaluator(flat_parameters(model)).accuracy
        selection = choose_spec(model, usable_budget(rams, config.budget.margin), t.batch, momentum,
                                config.budget.spec, importance)
        strategy = _strategy(config, flat_parameters(model))
        store.create({"config": config.as_dict(), "start": start, "created": time.time()}, strategy.state())
        store.selection(SelectionRecord(0, strategy.version, selection.spec.to_json(), selection.label,
                                        selection.memory.total, selection.budget, "start"))
    boards, later = _boards(config, model, data, rest)
    session = int(store.meta("sessions", 0)) + 1
    store.set_meta("sessions", session)
    log = MetricsLog(config.output_dir / "metrics.jsonl", store, tuple(sinks))
    stop = StopRule(config.stop.max_versions, config.stop.target_accuracy, config.stop.max_seconds)
    trainable = Trainable.of(model, selection)
    coordinator = Coordinator(strategy, trainable, Hyper(t.lr, t.local_steps, t.batch, t.momentum),
                              evaluate=evaluator, stop=stop, task_timeout=config.run.task_timeout,
                              eval_every=config.run.eval_every, store=store, log=log,
                              next_task_id=store.max_task_id() + 1, elapsed=store.elapsed(), selector=selector,
                              refresh_every=config.budget.refresh_every if config.budget.tiers else None,
                              reselect_every=config.budget.reselect_every,
                              generation=len(store.selections()) - 1)
    log({"event": "start", "session": session, "resumed": resume, "version": strategy.version,
         "pending": len(strategy.pending), "model": model.name, "data": data.name, "strategy": strategy.name,
         "boards": len(boards), "spec": selection.label, "trainable": selection.memory.trainable_params,
         "arena_bytes": selection.memory.total, "budget": selection.budget, "start": start})
    return FleetRun(config, model, data, selection, strategy, boards, later, store, log, coordinator, start, resume)


# ------------------------------------------------------------------------------------------

def load_model(config: RunConfig) -> Model:
    if config.model.name is not None:
        return reference_model(config.model.name).build(config.model.seed)
    from ftte.model.io import load_model as load
    return load(config.model.path)


def load_data(config: RunConfig) -> Dataset:
    if config.data.path is not None:
        with np.load(config.data.path, allow_pickle=False) as npz:
            missing = {"x_train", "y_train", "x_test", "y_test"} - set(npz.files)
            if missing:
                raise ValueError(f"{config.data.path}: missing arrays {sorted(missing)}")
            arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        classes = int(max(arrays["y_train"].max(), arrays["y_test"].max()) + 1)
        return Dataset(Path(config.data.path).stem, arrays["x_train"].astype(np.float32),
                       arrays["y_train"].astype(np.int32), arrays["x_test"].astype(np.float32),
                       arrays["y_test"].astype(np.int32), classes, config.data.path)
    if config.data.name is not None:
        return DATASETS[config.data.name]()
    return reference_model(config.model.name).data()


def _check_fit(model: Model, data: Dataset) -> None:
    if int(np.prod(data.sample_shape)) != int(np.prod(model.input_shape)):
        raise ValueError(f"data samples are {data.sample_shape}, the model takes {model.input_shape}")
    if data.classes > model.classes:
        raise ValueError(f"data has {data.classes} classes, the model outputs {model.classes}")


def _check_same_run(stored: dict, given: dict) -> None:
    """Resume only the run the config describes; [stop] and [output] may change."""
    given = json.loads(json.dumps(given))  # tuples -> lists, as stored
    differ = [k for k in stored if k not in ("stop", "output") and stored[k] != given.get(k)]
    if differ:
        raise ValueError(f"the config differs from the stored run in [{'], ['.join(differ)}]; "
                         "only [stop] and [output] may change on --resume")


def _server_split(n: int, config: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    """The training samples the host holds (for pretraining) and those the boards share."""
    order = np.random.default_rng(config.data.seed).permutation(n)
    cut = int(round(n * config.data.server_share))
    return np.sort(order[:cut]), np.sort(order[cut:])


def _starting_point(model: Model, data: Dataset, server: np.ndarray, config: RunConfig) -> dict:
    """Makes w0 in place: pretrained on the host's share, or left at its random init."""
    s = config.start
    if s.mode == "scratch":
        if config.model.path is not None:
            _reinitialise(model, config.model.seed)
        return {"mode": "scratch", "detail": f"random init (seed {config.model.seed})"}
    if s.epochs == 0 or len(server) == 0:
        origin = "as converted" if config.model.path is not None else "random init, no pretraining"
        return {"mode": "pretrained", "epochs": 0, "server_samples": 0, "detail": origin}
    trainer = Trainer(model, UpdateSpec.full(model), batch=s.batch)
    trainer.fit(data.x_train[server], data.y_train[server], s.epochs, s.lr, seed=config.run.seed)
    trainer.export()
    return {"mode": "pretrained", "epochs": s.epochs, "server_samples": int(len(server)),
            "detail": f"host pretrained {s.epochs} epochs (full backprop) on {len(server)} server-side samples"}


def _reinitialise(model: Model, seed: int) -> None:
    """Glorot-uniform weights, zero biases (a converted model started from scratch)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.weights is not None:
            fan_in, fan_out = layer.weights.size // layer.channels, layer.channels
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            layer.weights[...] = rng.uniform(-limit, limit, layer.weights.shape)
        if layer.bias is not None:
            layer.bias[...] = 0.0


def _strategy(config: RunConfig, params: np.ndarray) -> Strategy:
    cls = STRATEGIES[config.strategy.name]
    extra = {"rng": np.random.default_rng(config.run.seed)} if config.strategy.name == "fedavg" else {}
    return cls(params, config.strategy.config, **extra)


def _boards(config: RunConfig, model: Model, data: Dataset,
            rest: np.ndarray) -> tuple[list[Board], list[tuple[int, Board]]]:
    """The boards that join at the start, and (version, board) for those that join later."""
    groups = [g for g in config.boards for _ in range(g.count)]
    parts = partition(data.y_train[rest], len(groups), config.data.partition, config.data.alpha,
                      config.data.seed, min_size=1)
    boards: list[Board] = []
    later: list[tuple[int, Board]] = []
    for i, (group, part) in enumerate(zip(groups, parts)):
        board = _board(group, i, model, data.x_train[rest[part]], data.y_train[rest[part]], config.run.seed)
        if group.join_at_version > 0:
            later.append((group.join_at_version, board))
        else:
            boards.append(board)
    return boards, later


def _board(group: BoardGroup, i: int, model: Model, x: np.ndarray, y: np.ndarray, seed: int) -> Board:
    if group.kind == "port":  # a board on a serial port or URL, given its shard (ftte.link.port)
        from ftte.link.port import PortBoard
        return PortBoard(f"port-{i:02d}", group.port, model, x, y, group.ram, seed=seed * 1000 + i)
    if group.kind == "emulated":  # the native firmware on a pty, driven through the serial link
        from ftte.link.native import EmulatedBoard
        return EmulatedBoard(f"emulated-{i:02d}", model, x, y, group.ram, seed=seed * 1000 + i)
    return InProcessBoard(f"inproc-{i:02d}", model, x, y, group.ram, seed=seed * 1000 + i, delay=group.delay,
                          threads=group.threads, fail_after=group.fail_after, hang_after=group.hang_after)


def with_overrides(config: RunConfig, **stop) -> RunConfig:
    """The config with some [stop] values replaced (None: keep)."""
    changes = {k: v for k, v in stop.items() if v is not None}
    return dataclasses.replace(config, stop=dataclasses.replace(config.stop, **changes)) if changes else config
