"""Plan on-device training memory for a board budget: full, bias only and the best sparse update.

Reads a model made by `ftte convert` (a directory or .npz) or a reference model (--model), and
prints the exact training arena from the C planner, split by kind, for full backpropagation,
bias only, and the sparse update with the most trainable parameters that fits the budget
(ftte.selection). Exit status: 0 when some update fits, 1 when none does, 2 on bad input.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from ftte.model import Model, UpdateSpec
from ftte.model.io import load_model
from ftte.selection import select_sparse_update
from ftte.train import MemoryPlan, plan_memory
from ftte.train.table import LayerTable
from ftte.zoo import REFERENCE_MODELS, reference_model

_UNITS = {"": 1, "b": 1, "kb": 1024, "kib": 1024, "k": 1024, "mb": 1024 ** 2, "mib": 1024 ** 2, "m": 1024 ** 2}
_BUDGET = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_budget(text: str) -> int:
    """Bytes from '262144', '256KB', '256KiB', '0.5MB' (KB = KiB = 1024 bytes, as MCU datasheets
    count RAM; MB = MiB = 1024 KB)."""
    match = _BUDGET.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"budget {text!r}: expected bytes with an optional unit B, KB, KiB, MB or MiB "
                         "(e.g. 256KB, 262144, 0.5MB)")
    value = float(match.group(1)) * _UNITS[unit]
    if value != int(value) or value <= 0:
        raise ValueError(f"budget {text!r}: must be a positive whole number of bytes")
    return int(value)


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", help="model directory or .npz written by `ftte convert`")
    parser.add_argument("--model", choices=sorted(REFERENCE_MODELS), help="a reference model instead")
    parser.add_argument("--budget", default="256KB", help="board RAM for training (default 256KB)")
    parser.add_argument("--batch", type=int, default=1, help="training batch size (default 1)")
    parser.add_argument("--momentum", action="store_true", help="SGD with momentum (velocity buffers)")


@dataclass(frozen=True)
class Column:
    label: str
    spec: UpdateSpec | None
    memory: MemoryPlan | None
    detail: str = ""


_ROWS = (("params in RAM", "params_ram"), ("params in flash", "params_flash"),
         ("optimizer state", "optimizer_state"), ("saved activations", "saved_activations"),
         ("working activations", "working_activations"), ("gradients", "gradients"),
         ("scratch", "scratch"), ("total (arena RAM)", "total"))


def _load(args: argparse.Namespace) -> Model:
    if (args.path is None) == (args.model is None):
        raise ValueError("give either a model directory/.npz or --model NAME (not both)")
    if args.batch < 1:
        raise ValueError(f"--batch must be at least 1, got {args.batch}")
    return load_model(args.path) if args.path else reference_model(args.model).build(0)


def columns(model: Model, budget: int, batch: int, momentum: bool) -> list[Column]:
    """Full backprop, bias only, and the selected sparse update (memory None when nothing fits)."""
    plans = [Column(label, spec, plan_memory(model, spec, batch, momentum))
             for label, spec in (("full backprop", UpdateSpec.full(model)),
                                 ("bias only", UpdateSpec.bias_only(model)))]
    chosen = select_sparse_update(model, budget, batch, momentum)
    if chosen is None:
        return plans + [Column("sparse", None, None, "not even one output channel of the last layer fits")]
    return plans + [Column("sparse", chosen.spec, chosen.memory, f"{chosen.label}: {chosen.spec.describe(model)}")]


def _kb(value: int) -> str:
    return f"{value:,} B" if value < 1024 else f"{value:,} B ({value / 1024:.1f} KB)"


def _table(cols: list[Column], budget: int, batch: int, momentum: bool) -> Table:
    table = Table(title="training memory (bytes)")
    table.add_column("")
    for col in cols:
        table.add_column(col.label, justify="right")
    for label, name in _ROWS:
        if name != "optimizer_state" or momentum:
            table.add_row(label, *(f"{getattr(c.memory, name):,}" if c.memory else "-" for c in cols))
    table.add_row("trainable params", *(f"{c.memory.trainable_params:,}" if c.memory else "-" for c in cols))
    table.add_row("headroom", *(f"{budget - c.memory.total:+,}" if c.memory else "-" for c in cols))
    table.add_row("fits", *(_fits(c.memory, budget) for c in cols))
    return table


def _fits(memory: MemoryPlan | None, budget: int) -> str:
    if memory is None:
        return "[red]nothing fits[/]"
    return "[green]yes[/]" if memory.total <= budget else "[red]no[/]"


def run(args: argparse.Namespace) -> int:
    budget = parse_budget(args.budget)
    model = _load(args)
    table = LayerTable(model)
    macs = sum(table.macs(i) for i in range(len(model.layers)))
    console = Console()
    console.print(f"[bold]{model.name}[/]: {len(model.layers)} layers, {model.parameter_count():,} parameters "
                  f"({4 * model.parameter_count() / 1024:.1f} KB in flash), {macs:,} MACs/sample, "
                  f"layout hash 0x{table.layout_hash:08x}")
    console.print(f"budget {_kb(budget)}, batch {args.batch}{', SGD momentum' if args.momentum else ''}")
    cols = columns(model, budget, args.batch, args.momentum)
    console.print(_table(cols, budget, args.batch, args.momentum))
    console.print(f"sparse: {cols[-1].detail}")
    return 0 if any(c.memory and c.memory.total <= budget for c in cols) else 1
