"""Run a fleet: train one model on many boards with a federated strategy (`ftte run fleet.toml`).

`ftte run fleet.toml` runs the config (docs/coordinator.md); `--resume` continues the run stored
in its output dir (after a crash or kill, nothing accepted is lost). `ftte run --inprocess N`
needs no config: N in-process boards train a reference model. Metrics go to
<dir>/metrics.jsonl, the run state to <dir>/run.sqlite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from rich.console import Console

from ftte.aggregation import STRATEGIES
from ftte.fleet.config import PARTITIONS, START_MODES, RunConfig, load_config, parse_config
from ftte.zoo import REFERENCE_MODELS

def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="fleet.toml (see docs/coordinator.md)")
    parser.add_argument("--resume", action="store_true", help="continue the run stored in the output dir")
    parser.add_argument("--inprocess", type=int, metavar="N", help="no config: N in-process boards")
    parser.add_argument("--emulated", type=int, metavar="N", help="no config: N native firmware boards on ptys")
    quick = parser.add_argument_group("with --inprocess")
    quick.add_argument("--model", default="digits_mlp", choices=sorted(REFERENCE_MODELS))
    quick.add_argument("--strategy", default="ftte", choices=sorted(STRATEGIES))
    quick.add_argument("--start", default="pretrained", choices=START_MODES)
    quick.add_argument("--partition", default="iid", choices=PARTITIONS)
    quick.add_argument("--alpha", type=float, default=0.5, help="Dirichlet alpha (default 0.5)")
    quick.add_argument("--ram", default="32KB", help="each board's RAM for training (default 32KB)")
    quick.add_argument("--out", default="runs/inprocess", help="output dir (default runs/inprocess)")
    quick.add_argument("--seed", type=int, default=0)
    stop = parser.add_argument_group("stopping (override the config's [stop])")
    stop.add_argument("--max-versions", type=int)
    stop.add_argument("--target-accuracy", type=float)
    stop.add_argument("--max-seconds", type=float)
    parser.add_argument("--no-progress", action="store_true", help="no live display")


def quick_config(args: argparse.Namespace) -> RunConfig:
    """The config `--inprocess N` stands for."""
    return parse_config({
        "model": {"name": args.model},
        "data": {"partition": args.partition, "alpha": args.alpha, "seed": args.seed},
        "start": {"mode": args.start},
        "strategy": {"name": args.strategy},
        "boards": [{"emulated": args.emulated, "ram": args.ram} if args.emulated is not None
                   else {"inprocess": args.inprocess, "ram": args.ram}],
        "stop": {"max_versions": 50},
        "run": {"seed": args.seed},
        "output": {"dir": args.out},
    }, source="--inprocess")


def check_ports(config: RunConfig, timeout: float = 1.0) -> None:
    """Fails early, naming the entry, when a port board's port cannot be opened or no FTTE board
    answers on it (the run would otherwise start and drop the board at its join)."""
    from ftte.link.probe import probe_all

    entries = [(n, g.port) for n, g in enumerate(config.boards, 1) if g.kind == "port"]
    if not entries:
        return
    results = asyncio.run(probe_all([port for _, port in entries], timeout=timeout, retries=2))
    for (number, port), result in zip(entries, results):
        if not result.is_board:
            raise ValueError(f"{config.source}: [[boards]] #{number} port {port!r}: {result.error}")


def run(args: argparse.Namespace) -> int:
    from ftte.coordinator.progress import LiveProgress
    from ftte.coordinator.session import open_run, with_overrides

    console = Console()
    quick = args.inprocess if args.emulated is None else args.emulated
    if (args.config is None) == (quick is None) or (args.inprocess is not None and args.emulated is not None):
        raise ValueError("give a fleet.toml, or --inprocess N, or --emulated N (one of them)")
    if quick is not None and quick < 1:
        raise ValueError("--inprocess and --emulated need N >= 1")
    config = load_config(args.config) if args.config else quick_config(args)
    check_ports(config)
    config = with_overrides(config, max_versions=args.max_versions, target_accuracy=args.target_accuracy,
                            max_seconds=args.max_seconds)
    show = config.output.progress and not args.no_progress and console.is_terminal
    display = LiveProgress(config.stop.max_versions) if show else None
    fleet = open_run(config, resume=args.resume, sinks=(display,) if display else ())
    start, sel, strategy = fleet.start, fleet.selection, fleet.strategy
    resumed = f" (resumed at version {strategy.version}, {len(strategy.pending)} pending)" if fleet.resumed else ""
    console.print(f"[bold]{fleet.model.name}[/] on {fleet.data.name}, {len(fleet.boards)} boards, "
                  f"strategy {strategy.name}{resumed}")
    console.print(f"update spec: {sel.label}: {sel.memory.trainable_params:,} trainable parameters, "
                  f"{sel.memory.total:,} B arena (budget {sel.budget:,} B)")
    console.print(f"starting point: {start['mode']}, {start['detail']}: test accuracy {start['accuracy']:.1%}")
    with display if display else contextlib.nullcontext():
        summary = asyncio.run(fleet.run())
    accuracy = "n/a" if summary.accuracy is None else f"{summary.accuracy:.1%}"
    console.print(f"stopped ({summary.reason}) at version {summary.version}: test accuracy {accuracy} "
                  f"(from {start['accuracy']:.1%}, {start['mode']}), {summary.accepted} updates accepted, "
                  f"{summary.refused} refused, {(summary.bytes_down + summary.bytes_up) / 1024:.0f} KB moved, "
                  f"{summary.seconds:.1f} s")
    if summary.reselections:
        now = fleet.coordinator.trainable
        console.print(f"w* chosen again {summary.reselections} time(s) as the fleet changed; now "
                      f"{now.label}: {now.indices.size:,} trainable parameters, {now.arena_bytes:,} B arena")
    for board, reason in summary.dropped.items():
        console.print(f"dropped {board}: {reason}", style="yellow")
    console.print(f"metrics: {config.output_dir / 'metrics.jsonl'}, state: {config.output_dir / 'run.sqlite'}")
    return 0
