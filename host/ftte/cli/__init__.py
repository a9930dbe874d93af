"""The `ftte` command: one module per subcommand, each exposing add_parser() and run()."""

from __future__ import annotations

import argparse
import sys

from ftte.cli import convert, demo, devices, plan, run, simulate

COMMANDS = {"demo": demo, "convert": convert, "plan": plan, "run": run, "simulate": simulate, "devices": devices}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ftte", description="Federated Tiny Training Engine")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, module in COMMANDS.items():
        module.add_parser(commands.add_parser(name, help=module.__doc__.splitlines()[0]))
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command].run(args) or 0
    except (ValueError, KeyError, FileNotFoundError) as error:
        print(f"ftte {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
