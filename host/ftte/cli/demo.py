"""Train a reference model on its data set through the C kernels; print accuracy and memory.

Full backpropagation and a sparse update (bias plus the last layer) run side by side from the
same initial weights, so the accuracy/memory trade-off shows in one table.
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console
from rich.table import Table

from ftte.model import LayerUpdate, UpdateSpec
from ftte.train import Trainer
from ftte.zoo import REFERENCE_MODELS, reference_model


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="digits_mlp", choices=sorted(REFERENCE_MODELS))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)


def sparse_spec(model) -> UpdateSpec:
    """Biases everywhere, plus the full weights of the last layer."""
    spec = UpdateSpec.bias_only(model)
    last = model.weighted_layers()[-1]
    layers = list(spec.layers)
    layers[last] = LayerUpdate("full")
    return UpdateSpec(tuple(layers))


def run(args: argparse.Namespace) -> int:
    console = Console()
    reference = reference_model(args.model)
    data = reference.data()
    console.print(f"[bold]{reference.name}[/]: {reference.description}")
    console.print(f"data: {data.source}; {len(data.y_train)} train / {len(data.y_test)} test samples")
    table = Table(title=f"{args.epochs} epochs, batch {args.batch}, lr {args.lr} (from random init)")
    table.add_column("update", no_wrap=True)
    for column in ("trainable params", "arena RAM", "flash", "test accuracy", "time"):
        table.add_column(column, justify="right")
    for label, make_spec in (("full backprop", UpdateSpec.full), ("bias + last layer", sparse_spec)):
        model = reference.build(args.seed)
        trainer = Trainer(model, make_spec(model), batch=args.batch)
        start = time.perf_counter()
        trainer.fit(data.x_train, data.y_train, args.epochs, args.lr, seed=args.seed)
        elapsed = time.perf_counter() - start
        m = trainer.memory
        table.add_row(label, f"{m.trainable_params:,}", f"{m.total / 1024:.1f} KB",
                      f"{m.params_flash / 1024:.1f} KB", f"{trainer.evaluate(data.x_test, data.y_test):.1%}",
                      f"{elapsed:.1f} s")
    console.print(table)
    return 0
