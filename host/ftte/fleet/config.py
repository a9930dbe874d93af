"""`fleet.toml`: what a run trains, on which boards, with which strategy, until when.

    cfg = load_config("fleet.toml")     # RunConfig, or ConfigError naming the file, section, key

Every section and key is optional except that [model] needs `name` or `path` and at least one
[[boards]] entry is needed; docs/coordinator.md lists them all with their defaults. Unknown
keys are errors (with a "did you mean" hint), so a typo never silently falls back to a default.
Relative paths are relative to the TOML file.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftte.aggregation import STRATEGIES, AgeWeight, VarianceWeight

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DATASETS = ("digits", "digits28", "accelerometer")
START_MODES = ("pretrained", "scratch")
PARTITIONS = ("iid", "dirichlet")


class ConfigError(ValueError):
    """A config problem; the message names the file, the section and the key."""


@dataclass(frozen=True)
class ModelConfig:
    name: str | None = None  # a reference model (ftte.zoo)
    path: str | None = None  # or a model directory / .npz written by `ftte convert`
    seed: int = 0            # initialisation of a reference model


@dataclass(frozen=True)
class DataConfig:
    name: str | None = None  # digits | digits28 | accelerometer; default: the reference model's
    path: str | None = None  # or an .npz with x_train, y_train, x_test, y_test
    partition: str = "iid"
    alpha: float = 0.5       # Dirichlet concentration (partition = "dirichlet")
    server_share: float = 0.1  # fraction of the training samples the host keeps (pretraining)
    seed: int = 0


@dataclass(frozen=True)
class StartConfig:
    mode: str = "pretrained"  # pretrained: the host first trains on its share; scratch: random init
    epochs: int = 50
    lr: float = 0.1
    batch: int = 16


@dataclass(frozen=True)
class StrategyConfig:
    name: str = "ftte"
    params: dict = field(default_factory=dict)  # as written in the TOML
    config: Any = None                          # the strategy's config object, built from params


@dataclass(frozen=True)
class TrainingConfig:
    lr: float = 0.05
    local_steps: int = 10
    batch: int = 16
    momentum: float = 0.0


@dataclass(frozen=True)
class BudgetConfig:
    margin: float = 0.1             # fraction of the weakest board's RAM kept free
    spec: str | dict = "auto"       # auto | importance | full | bias | {layer = "full" | "bias" | [channels]}
    grow: float | None = None       # choose w* again when a board leaves and the budget grew by this fraction
    tiers: bool = False             # nested tiers: a board with more RAM trains a superset of w*
    refresh_every: int = 10         # tiers: versions before a smaller-tier board is provisioned again
    reselect_every: int | None = None  # choose w* again at the current global model every N versions


@dataclass(frozen=True)
class BoardGroup:
    kind: str                       # inprocess | emulated | port
    count: int = 1
    port: str | None = None         # port boards: a serial port, pty or pyserial URL (socket://host:port)
    ram: int = 64 * 1024            # bytes the board gives the training arena
    delay: float = 0.0              # in-process: seconds each task takes (simulated link/compute)
    threads: bool = False           # in-process: train in a worker thread (cffi releases the GIL)
    fail_after: int | None = None   # in-process fault injection: raise on task n+1
    hang_after: int | None = None   # in-process fault injection: never answer task n+1
    join_at_version: int = 0        # join when the global model reaches this version (0: at the start)


@dataclass(frozen=True)
class StopConfig:
    max_versions: int | None = 100  # 0 in the TOML: no limit
    target_accuracy: float | None = None
    max_seconds: float | None = None  # wall time of one invocation


@dataclass(frozen=True)
class RunSection:
    seed: int = 0
    task_timeout: float = 30.0  # seconds a board may take for one task before it is dropped
    eval_every: int = 1         # evaluate the global model every N versions


@dataclass(frozen=True)
class OutputConfig:
    dir: str = "runs/ftte"
    progress: bool = True
    keep_versions: int = 0  # parameters of the last N versions kept in run.sqlite (0: all)


@dataclass(frozen=True)
class RunConfig:
    model: ModelConfig
    data: DataConfig
    start: StartConfig
    strategy: StrategyConfig
    training: TrainingConfig
    budget: BudgetConfig
    boards: tuple[BoardGroup, ...]
    stop: StopConfig
    run: RunSection
    output: OutputConfig
    source: str = "<config>"

    @property
    def output_dir(self) -> Path:
        return Path(self.output.dir)

    def as_dict(self) -> dict:
        """Plain JSON values (what run.sqlite stores and --resume compares)."""
        data = dataclasses.asdict(self)
        data["strategy"].pop("config")
        data.pop("source")
        return data


# ------------------------------------------------------------------------------------------

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024 ** 2, "mb": 1024 ** 2, "mib": 1024 ** 2}


class _Table:
    """One TOML table being read: each key is taken once, leftovers are unknown keys."""

    def __init__(self, data: Any, where: str, source: str):
        self.where, self.source = where, source
        if not isinstance(data, dict):
            raise self.error(f"must be a table, got {type(data).__name__}")
        self.data = dict(data)

    def error(self, message: str, key: str | None = None) -> ConfigError:
        return ConfigError(f"{self.source}: {self.where}{' ' + key if key else ''}: {message}")

    def take(self, key: str, kinds: tuple[type, ...], default: Any, check=None, hint: str = "") -> Any:
        if key not in self.data:
            return default
        value = self.data.pop(key)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if ok and check is not None:
            ok = check(value)
        if not ok:
            expected = hint or " or ".join(k.__name__ for k in kinds)
            raise self.error(f"expected {expected}, got {value!r}", key)
        return float(value) if float in kinds and int not in kinds else value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        return self.take(key, (str,), default, lambda v: v in choices, " | ".join(repr(c) for c in choices))

    def done(self, known: tuple[str, ...]) -> None:
        for key in (k for k in self.data if k not in known):
            close = difflib.get_close_matches(key, known, 1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
            raise self.error(f"unknown key{hint}", repr(key))


def _positive(v) -> bool:
    return v > 0


def _nonneg(v) -> bool:
    return v >= 0


def _fraction(v) -> bool:
    return 0 <= v < 1


def parse_ram(value: int | str) -> int:
    """Bytes from 65536, "64K", "64KB", "64KiB", "0.5MB" (K = 1024, as MCU datasheets count)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise ValueError("must be > 0")
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([a-zA-Z]*)\s*", str(value))
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError("expected bytes, e.g. 65536 or \"64KB\"")
    number = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if number <= 0 or number != int(number):
        raise ValueError("must be a positive whole number of bytes")
    return int(number)


def _section(raw: dict, name: str, source: str) -> _Table:
    return _Table(raw.pop(name, {}), f"[{name}]", source)


def parse_config(raw: dict, base: Path | None = None, source: str = "<config>") -> RunConfig:
    """A RunConfig from parsed TOML; `base` resolves relative paths."""
    raw = dict(raw)
    base = base or Path.cwd()
    resolve = lambda p: None if p is None else str((base / Path(p).expanduser()))  # noqa: E731

    t = _section(raw, "model", source)
    model = ModelConfig(t.take("name", (str,), None), resolve(t.take("path", (str,), None)),
                        t.take("seed", (int,), ModelConfig.seed))
    t.done(("name", "path", "seed"))
    if (model.name is None) == (model.path is None):
        raise t.error("give exactly one of name (a reference model) or path (a converted model)")
    if model.name is not None:
        from ftte.zoo import REFERENCE_MODELS
        if model.name not in REFERENCE_MODELS:
            raise t.error(f"unknown reference model {model.name!r}; known: {', '.join(REFERENCE_MODELS)}", "name")

    t = _section(raw, "data", source)
    d = DataConfig
    data = DataConfig(t.choice("name", DATASETS, d.name), resolve(t.take("path", (str,), d.path)),
                      t.choice("partition", PARTITIONS, d.partition),
                      t.take("alpha", (int, float), d.alpha, _positive, "a number > 0"),
                      t.take("server_share", (int, float), d.server_share, _fraction, "a fraction in [0, 1)"),
                      t.take("seed", (int,), d.seed))
    t.done(("name", "path", "partition", "alpha", "server_share", "seed"))
    if data.name is not None and data.path is not None:
        raise t.error("give name or path, not both")
    if data.name is None and data.path is None and model.name is None:
        raise t.error("a converted model needs a data set: give name or path")

    t = _section(raw, "start", source)
    s = StartConfig
    start = StartConfig(t.choice("mode", START_MODES, s.mode),
                        t.take("epochs", (int,), s.epochs, _nonneg, "an int >= 0"),
                        t.take("lr", (int, float), s.lr, _positive, "a number > 0"),
                        t.take("batch", (int,), s.batch, _positive, "an int >= 1"))
    t.done(("mode", "epochs", "lr", "batch"))
    if start.mode == "pretrained" and data.server_share == 0 and start.epochs > 0 and model.path is None:
        raise ConfigError(f"{source}: [start] mode: 'pretrained' needs data the host holds: "
                          "set [data] server_share > 0 (or mode = 'scratch')")

    strategy = _strategy(raw.pop("strategy", {}), source)

    t = _section(raw, "training", source)
    tc = TrainingConfig
    training = TrainingConfig(t.take("lr", (int, float), tc.lr, _positive, "a number > 0"),
                              t.take("local_steps", (int,), tc.local_steps, _positive, "an int >= 1"),
                              t.take("batch", (int,), tc.batch, _positive, "an int >= 1"),
                              t.take("momentum", (int, float), tc.momentum, _fraction, "a number in [0, 1)"))
    t.done(("lr", "local_steps", "batch", "momentum"))

    t = _section(raw, "budget", source)
    budget = BudgetConfig(t.take("margin", (int, float), BudgetConfig.margin, _fraction, "a fraction in [0, 1)"),
                          t.take("spec", (str, dict), BudgetConfig.spec,
                                 lambda v: isinstance(v, dict) or v in ("auto", "importance", "full", "bias"),
                                 "'auto' | 'importance' | 'full' | 'bias' or a table {layer = mode}"),
                          t.take("grow", (int, float), BudgetConfig.grow, _positive, "a fraction > 0"),
                          t.take("tiers", (bool,), BudgetConfig.tiers),
                          t.take("refresh_every", (int,), BudgetConfig.refresh_every, _positive, "an int >= 1"),
                          t.take("reselect_every", (int,), BudgetConfig.reselect_every, _positive, "an int >= 1"))
    t.done(("margin", "spec", "grow", "tiers", "refresh_every", "reselect_every"))
    if budget.reselect_every is not None and budget.spec not in ("auto", "importance"):
        raise t.error(f"needs spec = 'auto' or 'importance' (a chosen w*), got spec = {budget.spec!r}",
                      "reselect_every")

    entries = raw.pop("boards", None)
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: [[boards]]: at least one boards entry is needed "
                          "(port = \"/dev/ttyUSB0\", emulated = N or inprocess = N)")
    boards = tuple(_board(entry, i, source) for i, entry in enumerate(entries, 1))

    t = _section(raw, "stop", source)
    max_versions = t.take("max_versions", (int,), StopConfig.max_versions, _nonneg, "an int >= 0 (0: no limit)")
    stop = StopConfig(max_versions or None,
                      t.take("target_accuracy", (int, float), None, lambda v: 0 < v <= 1, "a fraction in (0, 1]"),
                      t.take("max_seconds", (int, float), None, _positive, "a number > 0"))
    t.done(("max_versions", "target_accuracy", "max_seconds"))
    if stop == StopConfig(None, None, None):
        raise t.error("a run must end: give max_versions, target_accuracy or max_seconds")

    t = _section(raw, "run", source)
    r = RunSection
    run = RunSection(t.take("seed", (int,), r.seed),
                     t.take("task_timeout", (int, float), r.task_timeout, _positive, "a number > 0"),
                     t.take("eval_every", (int,), r.eval_every, _positive, "an int >= 1"))
    t.done(("seed", "task_timeout", "eval_every"))

    t = _section(raw, "output", source)
    o = OutputConfig
    output = OutputConfig(resolve(t.take("dir", (str,), o.dir)), t.take("progress", (bool,), o.progress),
                          t.take("keep_versions", (int,), o.keep_versions, _nonneg, "an int >= 0"))
    t.done(("dir", "progress", "keep_versions"))

    known = ("model", "data", "start", "strategy", "training", "budget", "boards", "stop", "run", "output")
    _Table(raw, "top level", source).done(known)
    return RunConfig(model, data, start, strategy, training, budget, boards, stop, run, output, source)


def _strategy(raw: Any, source: str) -> StrategyConfig:
    t = _Table(raw, "[strategy]", source)
    name = t.choice("name", tuple(STRATEGIES), "ftte")
    config_type = STRATEGIES[name].config_type
    fields = {f.name: f for f in dataclasses.fields(config_type)}
    t.done(("name", *fields))
    params = dict(t.data)
    kwargs: dict[str, Any] = {}
    for key, value in params.items():
        if key in ("age", "variance"):
            kind = AgeWeight if key == "age" else VarianceWeight
            sub = _Table(value, f"[strategy] {key}", source)
            sub.done(tuple(f.name for f in dataclasses.fields(kind)))
            try:
                value = kind(**sub.data)
            except (TypeError, ValueError) as error:
                raise sub.error(str(error)) from None
        else:
            value = _typed(t, key, value, fields[key])
        kwargs[key] = value
    try:
        config = config_type(**kwargs)
    except (TypeError, ValueError) as error:
        for key, value in kwargs.items():  # name the key when one value alone is the problem
            try:
                config_type(**{key: value})
            except (TypeError, ValueError):
                raise t.error(str(error), key) from None
        raise t.error(f"{name}: {error}") from None
    return StrategyConfig(name, params, config)


def _typed(t: _Table, key: str, value: Any, spec: dataclasses.Field) -> Any:
    """A strategy parameter checked against its config field's annotation ("none" for None)."""
    kind = str(spec.type)
    if "None" in kind and value == "none":
        return None
    for name, kinds in (("bool", (bool,)), ("float", (int, float)), ("int", (int,)), ("str", (str,))):
        if name in kind:
            ok = isinstance(value, kinds) and (name == "bool" or not isinstance(value, bool))
            if not ok:
                hint = " or \"none\"" if "None" in kind else ""
                raise t.error(f"expected {name}{hint}, got {value!r}", key)
            return float(value) if name == "float" else value
    return value


def _board(raw: Any, number: int, source: str) -> BoardGroup:
    t = _Table(raw, f"[[boards]] #{number}", source)
    kinds = [k for k in ("port", "emulated", "inprocess") if k in t.data]
    if len(kinds) != 1:
        raise t.error("give exactly one of port = \"/dev/...\", emulated = N, inprocess = N")
    kind = kinds[0]
    port = t.take("port", (str,), None, lambda v: v.strip() != "",
                  "a serial port or pyserial URL, e.g. \"/dev/ttyUSB0\" or \"socket://host:4000\"")
    count = 1 if kind == "port" else t.take(kind, (int,), 1, _positive, "an int >= 1")
    ram_raw = t.take("ram", (int, str), BoardGroup.ram)
    try:
        ram = parse_ram(ram_raw)
    except ValueError as error:
        raise t.error(f"{error}, got {ram_raw!r}", "ram") from None
    group = BoardGroup(kind, count, port, ram, t.take("delay", (int, float), 0.0, _nonneg, "a number >= 0"),
                       t.take("threads", (bool,), False),
                       t.take("fail_after", (int,), None, _nonneg, "an int >= 0"),
                       t.take("hang_after", (int,), None, _nonneg, "an int >= 0"),
                       t.take("join_at_version", (int,), 0, _nonneg, "an int >= 0"))
    t.done(("port", "emulated", "inprocess", "ram", "delay", "threads", "fail_after", "hang_after",
            "join_at_version"))
    return group


def read_toml(path: Path) -> dict:
    """A TOML file's tables, or a ConfigError naming the file (missing, or not TOML)."""
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None


def load_config(path: str | Path) -> RunConfig:
    """Reads and checks a fleet.toml."""
    path = Path(path)
    return parse_config(read_toml(path), path.resolve().parent, str(path))
