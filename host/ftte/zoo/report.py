"""The model zoo table of docs/zoo.md: size, compute, on-device training memory and accuracy.

For each reference model: parameters, forward multiply-accumulates per sample (C
ftte_layer_macs), the weights in flash, and the training arena (RAM, batch 1, C planner) under
full backprop and under the sparse update ftte.selection picks within SPARSE_FRACTION of full
backprop's arena; then a brief full training run (SGD with momentum) and its test accuracy.

Run: ``python -m ftte.zoo.report [--epochs N]``.
"""

from __future__ import annotations

import argparse
import datetime
from dataclasses import dataclass

from ftte.model import Model, UpdateSpec
from ftte.selection import select_sparse_update
from ftte.train import Trainer, plan_memory
from ftte.train.table import LayerTable
from ftte.zoo.reference import REFERENCE_MODELS, ReferenceModel

SPARSE_FRACTION = 0.20  # of full backprop's arena, the budget ftte.bench.memory uses


@dataclass(frozen=True)
class ZooRow:
    name: str
    data: str
    parameters: int
    macs: int
    flash: int  # weight bytes (const arrays in flash)
    full_ram: int
    sparse_ram: int
    sparse_trainable: int
    sparse_frozen_flash: int  # frozen weights read in place from flash
    sparse_label: str
    accuracy: float


def model_macs(model: Model) -> int:
    """Forward multiply-accumulates of one sample, from the C kernels' own count."""
    table = LayerTable(model)
    return sum(table.macs(i) for i in range(len(model.layers)))


def train_accuracy(reference: ReferenceModel, epochs: int, seed: int) -> float:
    """Test accuracy after `epochs` of full training (batch 16, lr 0.02, momentum 0.9)."""
    data = reference.data()
    trainer = Trainer(reference.build(seed), batch=16, momentum=True)
    trainer.fit(data.x_train, data.y_train, epochs, lr=0.02, momentum=0.9, seed=seed)
    return trainer.evaluate(data.x_test, data.y_test)


def zoo_row(reference: ReferenceModel, epochs: int, seed: int) -> ZooRow:
    model = reference.build(seed)
    full = plan_memory(model, UpdateSpec.full(model), batch=1)
    sparse = select_sparse_update(model, int(SPARSE_FRACTION * full.total), batch=1)
    assert sparse is not None, f"{reference.name}: nothing fits {SPARSE_FRACTION:.0%} of full backprop"
    return ZooRow(reference.name, reference.data().name, model.parameter_count(), model_macs(model),
                  4 * model.parameter_count(), full.total, sparse.memory.total, sparse.memory.trainable_params,
                  sparse.memory.params_flash, sparse.label, train_accuracy(reference, epochs, seed))


def markdown(rows: list[ZooRow]) -> str:
    lines = [
        "| model | data | params | MACs/sample | weights (flash) | full: arena RAM | sparse: arena RAM |"
        " sparse: trains | sparse: frozen read from flash | test accuracy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.name} | {r.data} | {r.parameters:,} | {r.macs:,} | {r.flash:,} B | {r.full_ram:,} B"
                     f" | {r.sparse_ram:,} B ({r.sparse_ram / r.full_ram:.0%}) | {r.sparse_trainable:,} params:"
                     f" {r.sparse_label} | {r.sparse_frozen_flash:,} B | {r.accuracy:.1%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15, help="full training epochs per model")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = [zoo_row(reference, args.epochs, args.seed) for reference in REFERENCE_MODELS.values()]
    print(f"Generated {datetime.date.today()} by `python -m ftte.zoo.report --epochs {args.epochs}`."
          f" Memory at batch 1 from the C planner; sparse = the update `ftte plan` selects within"
          f" {SPARSE_FRACTION:.0%} of full backprop's arena; accuracy after {args.epochs} epochs of full"
          " training from scratch (batch 16, SGD lr 0.02, momentum 0.9), on the test split.\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
