"""Simulation configs in TOML: the keys of `SimConfig`, at the top level or under [sim].

    model = "mnist1d_cnn"
    boards = 200
    ram = "16KB"
    mix = { nrf52840 = 0.5, esp32c3 = 0.5 }
    [[arms]]
    strategy = "ftte"
    [[arms]]
    strategy = "fedavg"
    spec = "full"

Unknown keys are errors with a "did you mean" hint, as in fleet.toml.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path

from ftte.fleet.config import ConfigError, parse_ram, read_toml
from ftte.sim.simulation import Arm, SimConfig


def parse_sim_config(raw: dict, base: SimConfig | None = None, source: str = "<config>") -> SimConfig:
    raw = dict(raw.get("sim", raw))
    base = base or SimConfig()
    fields = {f.name: f for f in dataclasses.fields(SimConfig)}
    changes = {}
    for key, value in raw.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), 1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{source}: unknown key {key!r}{hint}")
        try:
            if key == "ram":
                value = parse_ram(value)
            elif key == "mix":
                value = tuple((str(k), float(v)) for k, v in dict(value).items())
            elif key == "arms":
                value = tuple(Arm(**dict(a)) for a in value)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{source}: {key}: {error}") from None
        default = getattr(base, key)
        if isinstance(default, (int, float)) and not isinstance(default, bool) and not isinstance(value, (int, float)):
            raise ConfigError(f"{source}: {key}: expected a number, got {value!r}")
        changes[key] = value
    return base.replace(**changes)


def load_sim_config(path: str | Path, base: SimConfig | None = None) -> SimConfig:
    path = Path(path)
    return parse_sim_config(read_toml(path), base, str(path))
