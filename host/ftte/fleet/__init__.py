"""A fleet run's description: the fleet.toml config, data partition across boards, and the
choice of the update spec that fits the weakest board."""

from ftte.fleet.config import ConfigError, RunConfig, load_config, parse_config
from ftte.fleet.partition import dirichlet, iid, partition
from ftte.fleet.select import Selection, choose_spec, usable_budget

__all__ = ["ConfigError", "RunConfig", "Selection", "choose_spec", "dirichlet", "iid", "load_config",
           "parse_config", "partition", "usable_budget"]
