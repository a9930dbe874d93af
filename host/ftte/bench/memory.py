"""On-device training memory against accuracy, for each reference model.

For every reference model: pretrain the full model on a "server" share of the training data
(30%, as a TinyML deployment would ship a pretrained model), then fine-tune on the remaining
"device" share for the same number of batch-1 steps under full backprop, bias only, and every
candidate sparse spec whose arena fits in 20% of full backprop's; report each one's exact
arena bytes (from the C planner, batch 1) and its test accuracy. The best candidate is the
most accurate one within the 20% budget.

Run: ``python -m ftte.bench.memory [--steps N]``.
"""

from __future__ import annotations

import argparse
import datetime
from dataclasses import dataclass

import numpy as np

from ftte.data import Dataset
from ftte.model import LayerUpdate, Model, UpdateSpec
from ftte.train import Trainer, plan_memory
from ftte.zoo import REFERENCE_MODELS

BUDGET_FRACTION = 0.20
SERVER_SHARE = 0.30


@dataclass(frozen=True)
class Result:
    model: str
    spec: str
    arena: int
    fraction: float
    params_ram: int
    params_flash: int
    trainable: int
    accuracy: float  # mean over seeds
    spread: float  # standard deviation over seeds


def pretrain(reference, data: Dataset, epochs: int, seed: int) -> tuple[Model, np.ndarray]:
    """Full training on the server share; returns the model and the device-share indices."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.y_train))
    server, device = order[: int(SERVER_SHARE * len(order))], order[int(SERVER_SHARE * len(order)):]
    model = reference.build(seed)
    trainer = Trainer(model, batch=16, momentum=True)
    trainer.fit(data.x_train[server], data.y_train[server], epochs, lr=0.02, momentum=0.9, seed=seed)
    return trainer.export(), device


def row_importance(model: Model, data: Dataset, rows: np.ndarray) -> list[np.ndarray | None]:
    """Per output channel, the gradient norm of its weight row on a calibration batch."""
    trainer = Trainer(model.copy(), UpdateSpec.full(model), batch=len(rows))
    grads = trainer.gradients(data.x_train[rows], data.y_train[rows])
    return [None if w is None else np.linalg.norm(w, axis=1) for w, _ in grads]


def candidates(model: Model, importance: list[np.ndarray | None]) -> dict[str, UpdateSpec]:
    """Sparse specs to try: the top layers in full, and channel subsets chosen by importance."""
    weighted = model.weighted_layers()
    specs: dict[str, UpdateSpec] = {}
    for depth in range(1, len(weighted) + 1):
        top = weighted[-depth:]
        specs[f"top {depth} layer(s) full"] = UpdateSpec.of(model, {i: LayerUpdate("full") for i in top})
    last = weighted[-1]
    for below in weighted[-3:-1]:
        for fraction in (0.125, 0.25, 0.5):
            count = max(1, int(model.layers[below].channels * fraction))
            chosen = tuple(int(c) for c in np.sort(np.argsort(-importance[below])[:count]))
            spec = {last: LayerUpdate("full"), below: LayerUpdate("channels", chosen)}
            specs[f"last full + {count}/{model.layers[below].channels} ch of {model.layers[below].name}"] = (
                UpdateSpec.of(model, spec))
    return specs


def fine_tune(model: Model, spec: UpdateSpec, data: Dataset, device: np.ndarray, steps: int,
              lr: float, seed: int) -> float:
    trainer = Trainer(model.copy(), spec, batch=1)
    rng = np.random.default_rng(seed)
    for index in rng.choice(device, size=steps):
        trainer.step(data.x_train[index:index + 1], data.y_train[index:index + 1], lr)
    return trainer.evaluate(data.x_test, data.y_test)


def benchmark_model(name: str, steps: int, lr: float, seeds: list[int]) -> tuple[float, list[Result]]:
    """Per spec, the accuracy over seeds (each seed: its own pretraining and fine-tuning); the
    candidates come from the first seed's pretrained model."""
    reference = REFERENCE_MODELS[name]
    data = reference.data()
    pretrained = [pretrain(reference, data, epochs=15, seed=seed) for seed in seeds]
    model, device = pretrained[0]
    starts = [Trainer(m.copy(), UpdateSpec.frozen(m), batch=16).evaluate(data.x_test, data.y_test)
              for m, _ in pretrained]
    full = plan_memory(model, UpdateSpec.full(model), batch=1)
    importance = row_importance(model, data, device[:64])
    trial = {"full backprop": UpdateSpec.full(model), "bias only": UpdateSpec.bias_only(model)}
    sparse = {label: spec for label, spec in candidates(model, importance).items()
              if plan_memory(model, spec, batch=1).total <= BUDGET_FRACTION * full.total}
    results = []
    for label, spec in {**trial, **sparse}.items():
        m = plan_memory(model, spec, batch=1)
        accuracies = [fine_tune(p, spec, data, d, steps, lr, seed) for (p, d), seed in zip(pretrained, seeds)]
        results.append(Result(name, label, m.total, m.total / full.total, m.params_ram, m.params_flash,
                              m.trainable_params, float(np.mean(accuracies)), float(np.std(accuracies))))
    best = max((r for r in results if r.spec in sparse), key=lambda r: r.accuracy, default=None)
    kept = results[:2] + ([best] if best else [])
    return float(np.mean(starts)), kept + [r for r in results[2:] if r is not best]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="batch-1 fine-tuning steps per spec")
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--seeds", type=int, default=3, help="pretrain + fine-tune repetitions")
    parser.add_argument("--all", action="store_true", help="list every candidate, not just the best")
    args = parser.parse_args(argv)
    print(f"# Training memory vs accuracy ({datetime.date.today()}, `python -m ftte.bench.memory"
          f" --steps {args.steps} --seeds {args.seeds}`)\n")
    print(f"Arena bytes at batch 1 from the C planner. Accuracy: pretrained on {SERVER_SHARE:.0%} of the"
          f" training data (15 epochs, full), then {args.steps} batch-1 SGD steps (lr {args.lr}) on the"
          f" rest under each spec; test split; mean ± std over {args.seeds} seeds, each with its own"
          f" pretraining. Sparse candidates: the top layers in full, or the last layer plus a subset of"
          f" the channels below chosen by gradient norm.\n")
    print("| model | start acc. | update | arena RAM | % of full | params in RAM | params in flash |"
          " trainable | accuracy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in REFERENCE_MODELS:
        start, results = benchmark_model(name, args.steps, args.lr, list(range(args.seeds)))
        for rank, r in enumerate(results if args.all else results[:3]):
            label = f"**{r.spec}** (best ≤{BUDGET_FRACTION:.0%})" if rank == 2 else r.spec
            print(f"| {name} | {start:.1%} | {label} | {r.arena:,} B | {r.fraction:.1%} | {r.params_ram:,} B"
                  f" | {r.params_flash:,} B | {r.trainable:,} | {r.accuracy:.1%} ± {r.spread:.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
