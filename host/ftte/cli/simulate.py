"""Simulate a fleet: the same coordinator and strategies as `ftte run`, on simulated boards and time.

`ftte simulate` with no arguments runs the embedded default (100 simulated boards of four
kinds, half of them stragglers, digits MLP, Dirichlet(0.5)) with FTTE, FedBuff, FedAsync and
FedAvg, prints a comparison table, and writes accuracy/bytes/memory plots (PNG), report.md and
results.json into --out. Every option overrides the default; `--config sim.toml` gives the same
keys in a file (docs/simulator.md).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from rich.console import Console

ARM_SPECS = {"ftte": "auto", "fedbuff": "full", "fedasync": "full", "fedavg": "full"}


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="a TOML file of simulation keys (docs/simulator.md)")
    parser.add_argument("--model", help="reference model, mnist1d_cnn/mnist1d_mlp, or a converted model path")
    parser.add_argument("--data", help="digits | digits28 | accelerometer | mnist1d | path to an .npz")
    parser.add_argument("--samples", type=int, help="size of a generated data set (mnist1d: total; accelerometer: per class)")
    parser.add_argument("--boards", type=int, help="number of simulated boards (default 100)")
    parser.add_argument("--mix", help="board profiles and weights, e.g. nrf52840=0.4,esp32=0.2,esp32c3=0.3,cortex-m7=0.1")
    parser.add_argument("--link", help="every board on this link: uart115200 | uart921600 | ble1m | ble2m")
    parser.add_argument("--ram", help="training-arena budget of every board, e.g. 16KB (default: 16KB)")
    parser.add_argument("--partition", choices=("iid", "dirichlet"))
    parser.add_argument("--alpha", type=float, help="Dirichlet alpha (default 0.5)")
    parser.add_argument("--start", choices=("pretrained", "scratch"))
    parser.add_argument("--stragglers", type=float, help="fraction of slowed-down boards (default 0.5)")
    parser.add_argument("--slowdown", help="straggler factor distribution: uniform:2:10 | lognormal:MU:SIGMA | const:F | pareto:A")
    parser.add_argument("--traces", help="FedScale-style availability traces (.json, or FedScale's .pkl)")
    parser.add_argument("--uptime", type=float, help="without traces: fraction of each period a board is up")
    parser.add_argument("--dropout", type=float, help="probability that a task ends its board for good")
    parser.add_argument("--strategies", help="comma list of ftte,fedbuff,fedasync,fedavg (default all four)")
    parser.add_argument("--lr", type=float)
    parser.add_argument("--local-steps", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--buffer-size", type=int, help="K of FTTE and FedBuff")
    parser.add_argument("--reselect-every", type=int,
                        help="FTTE (a chosen w*): choose w* again at the current model every N versions")
    parser.add_argument("--updates", type=int, help="accepted updates of the first asynchronous arm")
    parser.add_argument("--rounds", type=int, help="FedAvg rounds")
    parser.add_argument("--horizon", type=float, help="simulated seconds for every arm instead")
    parser.add_argument("--target", type=float, help="target test accuracy (default: 95%% of FedAvg's best)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--backend", choices=("local", "ray"))
    parser.add_argument("--out", default="runs/simulate", help="output dir (default runs/simulate)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def default_config():
    """The embedded default: runs in well under 2 minutes on 2 cores."""
    from ftte.sim import SimConfig

    return SimConfig(model="digits_mlp", boards=100, ram=16 * 1024, lr=0.02, local_steps=10, batch=1,
                     updates=3000, rounds=30, buffer_size=10, stragglers=0.5, slowdown="uniform:2:10")


def config_from(args: argparse.Namespace):
    from ftte.fleet.config import parse_ram
    from ftte.sim import Arm
    from ftte.sim.toml import load_sim_config

    config = load_sim_config(args.config, default_config()) if args.config else default_config()
    changes = {}
    for key in ("model", "data", "samples", "boards", "link", "partition", "alpha", "start", "stragglers",
                "slowdown", "traces", "uptime", "dropout", "lr", "local_steps", "batch", "buffer_size", "reselect_every", "updates",
                "rounds", "horizon", "seed", "backend"):
        value = getattr(args, key)
        if value is not None:
            changes[key] = value
    if args.ram is not None:
        changes["ram"] = parse_ram(args.ram)
    if args.mix is not None:
        changes["mix"] = parse_mix(args.mix)
    if args.strategies is not None:
        names = [s.strip() for s in args.strategies.split(",") if s.strip()]
        unknown = [n for n in names if n not in ARM_SPECS]
        if unknown or not names:
            raise ValueError(f"--strategies: unknown {unknown}; choose from {', '.join(ARM_SPECS)}")
        changes["arms"] = tuple(Arm(n, ARM_SPECS[n]) for n in names)
    return config.replace(**changes)


def parse_mix(text: str) -> tuple[tuple[str, float], ...]:
    out = []
    for item in text.split(","):
        name, _, weight = item.partition("=")
        try:
            out.append((name.strip(), float(weight) if weight else 1.0))
        except ValueError:
            raise ValueError(f"--mix: {item!r} is not profile=weight") from None
    return tuple(out)


class Bars:
    """Progress: one bar per arm, advanced by the coordinator's update events."""

    def __init__(self, console: Console, config, fleet):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console)
        self.tasks = {}
        self.config, self.fleet = config, fleet

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def __call__(self, arm: str, event: dict) -> None:
        kind = event["event"]
        if arm not in self.tasks:
            strategy = next(a for a in self.config.arms if a.name == arm).strategy
            total = self.config.rounds if strategy == "fedavg" else self.config.updates
            self.tasks[arm] = self.progress.add_task(arm, total=None if self.config.horizon else total, status="")
        task = self.tasks[arm]
        if kind == "version":
            strategy = next(a for a in self.config.arms if a.name == arm).strategy
            if strategy == "fedavg":
                self.progress.update(task, completed=event["version"])
            if event["accuracy"] is not None:
                self.progress.update(task, status=f"t={event['time']:,.0f}s acc {event['accuracy']:.1%}")
        elif kind == "update":
            strategy = next(a for a in self.config.arms if a.name == arm).strategy
            if strategy != "fedavg":
                self.progress.advance(task)
        elif kind == "end":
            self.progress.update(task, total=self.progress.tasks[task].completed or 1)


def run(args: argparse.Namespace) -> int:
    from ftte.sim import Fleet
    from ftte.sim.report import auto_target, rich_table, write_report

    console = Console()
    if not console.is_terminal:  # a pipe or a file: room for the whole table
        console = Console(width=110)
    config = config_from(args)
    wall = time.perf_counter()
    console.print("building the fleet (data, partition, host pretraining)...")
    fleet = Fleet.build(config)
    console.print(f"[bold]{fleet.model.name}[/] on {fleet.data.name}: {config.boards} simulated boards, "
                  f"start {fleet.start['mode']} ({fleet.start['accuracy']:.1%}), weakest budget {fleet.budget:,} B, "
                  f"arms: {', '.join(a.name for a in config.arms)}")
    show = not args.no_progress and console.is_terminal
    if show:
        with Bars(console, config, fleet) as bars:
            results = fleet.run_all(bars)
    else:
        def say(arm: str, event: dict) -> None:
            if event["event"] == "end":
                console.print(f"  {arm}: {event['accepted']:,} updates, {event['time']:,.1f} simulated s, "
                              f"accuracy {event['accuracy']:.1%} ({event['reason']})")
        results = fleet.run_all(say)
    target = args.target if args.target is not None else auto_target(results)
    console.print(rich_table(results, target))
    out = Path(args.out)
    command = "ftte simulate " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if sys.argv[1:2] == ["simulate"] else ""
    report = write_report(results, fleet, target, out, command)
    console.print(f"report: {report}; plots: {out / 'accuracy.png'}, {out / 'bytes.png'}, {out / 'memory.png'}; "
                  f"data: {out / 'results.json'} ({time.perf_counter() - wall:.0f} s)")
    return 0
