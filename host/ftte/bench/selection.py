"""Importance-based selection against the structured heuristic, on the three reference models.

For each reference model and seed: pretrain on the server share (ftte.bench.memory.pretrain:
30% of the training set, 15 epochs, full backprop), measure importance on `--calibration`
samples of that server share (ftte.selection.calibration_importance, batch 1), then fine-tune
from the same pretrained start for the same number of batch-1 steps on the device share
(ftte.bench.memory.fine_tune) under each w* whose C-planned arena (batch 1) fits `--fraction`
of full backprop's:

- heuristic: ftte.selection.select_sparse_update (top k layers full, plus channels of the layer
  below ranked by weight-row norm; the candidate with the most trainable parameters);
- importance: ftte.selection.select_by_importance (greedy gain per byte, planner as oracle), with
  the "power" importance (the default) and with the "signal" one;
- bias only, for reference (it fits 20% on all three models).

With `--fleet`, the same comparison inside `ftte run` (the coordinator, in-process boards, the
FTTE strategy, the run's defaults: the host pretrains on its 10% share, 8 boards with IID shards
train 10 local steps of batch 16 per task, 100 versions): `[budget] spec = "auto"` (the
heuristic) against `"importance"` (importance measured on the host's share), per model and board
RAM.

Accuracy: mean ± std over seeds; "vs heuristic": the per-seed difference to the heuristic's
accuracy, mean ± its standard error.

Run: ``python -m ftte.bench.selection [--steps 1500] [--seeds 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time

import numpy as np

from ftte.bench.memory import SERVER_SHARE, fine_tune, pretrain
from ftte.model import UpdateSpec
from ftte.selection import calibration_importance, select_by_importance, select_sparse_update
from ftte.train import Trainer, plan_memory
from ftte.zoo import REFERENCE_MODELS


def compare(name: str, steps: int, lr: float, seeds: list[int], fraction: float, calibration: int) -> list[dict]:
    reference = REFERENCE_MODELS[name]
    data = reference.data()
    rows: dict[str, dict] = {}
    starts = []
    for seed in seeds:
        model, device = pretrain(reference, data, epochs=15, seed=seed)
        server = np.setdiff1d(np.arange(len(data.y_train)), device)
        calib = np.random.default_rng(seed).permutation(server)[:calibration]
        starts.append(Trainer(model.copy(), UpdateSpec.frozen(model), batch=16).evaluate(data.x_test, data.y_test))
        budget = int(fraction * plan_memory(model, UpdateSpec.full(model), batch=1).total)
        importance = calibration_importance(model, data.x_train[calib], data.y_train[calib], batch=1)
        signal = calibration_importance(model, data.x_train[calib], data.y_train[calib], batch=1, kind="signal")
        began = time.perf_counter()
        chosen = select_by_importance(model, importance, budget, batch=1)
        seconds = time.perf_counter() - began
        by_signal = select_by_importance(model, signal, budget, batch=1)
        heuristic = select_sparse_update(model, budget, batch=1)
        bias = UpdateSpec.bias_only(model)
        for method, spec, memory, label, extra in (
                ("heuristic: top k + channels by weight norm", heuristic.spec, heuristic.memory, heuristic.label, 0.0),
                ("**importance: greedy, power**", chosen.spec, chosen.memory, chosen.label, seconds),
                ("importance: greedy, signal", by_signal.spec, by_signal.memory, by_signal.label, 0.0),
                ("bias only (reference)", bias, plan_memory(model, bias, batch=1), "bias only", 0.0)):
            row = rows.setdefault(method, {"model": name, "method": method, "budget": budget, "acc": [], "arena": [],
                                           "trainable": [], "gain": [], "labels": [], "seconds": []})
            row["acc"].append(fine_tune(model, spec, data, device, steps, lr, seed))
            row["arena"].append(memory.total)
            row["trainable"].append(memory.trainable_params)
            row["gain"].append(importance.gain(spec) / importance.total())  # share of the power importance
            row["labels"].append(label)
            row["seconds"].append(extra)
    for row in rows.values():
        row["start"] = float(np.mean(starts))
    return list(rows.values())


FLEETS = (("digits_mlp", "16KB"), ("digits_mlp", "32KB"), ("accel_cnn1d", "110KB"), ("accel_cnn1d", "130KB"),
          ("digits_cnn2d", "400KB"), ("digits_cnn2d", "500KB"))


def fleet_run(name: str, ram: str, spec: str, seed: int, versions: int) -> tuple[float, float, object]:
    """One `ftte run`: (start accuracy, final accuracy, selection)."""
    from ftte.coordinator.session import open_run
    from ftte.fleet import parse_config

    with tempfile.TemporaryDirectory() as out:
        raw = {"model": {"name": name, "seed": seed}, "data": {"seed": seed}, "run": {"seed": seed},
               "start": {"mode": "pretrained"}, "boards": [{"inprocess": 8, "ram": ram}], "strategy": {"name": "ftte"},
               "output": {"dir": out, "progress": False}, "stop": {"max_versions": versions, "target_accuracy": 1.0}}
        config = parse_config(raw)
        config = dataclasses.replace(config, budget=dataclasses.replace(config.budget, spec=spec))
        fleet = open_run(config)
        summary = asyncio.run(fleet.run())
        return fleet.start["accuracy"], summary.accuracy, fleet.selection


def fleet_table(seeds: list[int], versions: int) -> None:
    print(f"`ftte run` defaults (host pretrains on its 10% share, 8 in-process boards, IID, FTTE K=10, lr 0.05, "
          f"10 local steps of batch 16), {versions} versions; mean ± std over {len(seeds)} seeds (model, data and "
          f"run seed).\n")
    print("| model | board RAM | start acc. | [budget] spec | w* (seed 0) | arena | trainable | final acc. |"
          " vs auto (paired) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, ram in FLEETS:
        runs = {spec: [fleet_run(name, ram, spec, seed, versions) for seed in seeds] for spec in ("auto", "importance")}
        base = np.array([final for _, final, _ in runs["auto"]])
        for spec, results in runs.items():
            start, final = np.mean([r[0] for r in results]), np.array([r[1] for r in results])
            chosen = results[0][2]
            diff = final - base
            paired = "—" if spec == "auto" else f"{diff.mean():+.1%} ± {diff.std(ddof=1) / np.sqrt(len(diff)):.1%}"
            print(f"| {name} | {ram} | {start:.1%} | {spec} | {chosen.label} | {chosen.memory.total:,} B | "
                  f"{chosen.memory.trainable_params:,} | {final.mean():.1%} ± {final.std():.1%} | {paired} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500, help="batch-1 fine-tuning steps")
    parser.add_argument("--lr", type=float, default=0.02)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--fraction", type=float, default=0.20, help="budget: this fraction of full backprop's arena")
    parser.add_argument("--calibration", type=int, default=256, help="server-share samples for importance")
    parser.add_argument("--models", nargs="*", default=list(REFERENCE_MODELS))
    parser.add_argument("--fleet", action="store_true", help="compare inside `ftte run` instead")
    parser.add_argument("--versions", type=int, default=100, help="with --fleet: global versions per run")
    args = parser.parse_args(argv)
    if args.fleet:
        fleet_table(list(range(args.seeds)), args.versions)
        return 0
    print(f"Pretrained on {SERVER_SHARE:.0%} (15 epochs), then {args.steps} batch-1 SGD steps (lr {args.lr}) on the "
          f"rest; budget {args.fraction:.0%} of full backprop's arena (batch 1); importance from "
          f"{args.calibration} server-share samples; mean ± std over {args.seeds} seeds.\n")
    print("| model | start acc. | budget | selection | w* (seed 0) | arena | trainable | power share | accuracy |"
          " vs heuristic (paired) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.models:
        rows = compare(name, args.steps, args.lr, list(range(args.seeds)), args.fraction, args.calibration)
        base = np.array(rows[0]["acc"])
        for r in rows:
            diff = np.array(r["acc"]) - base
            paired = "—" if r is rows[0] else f"{diff.mean():+.1%} ± {diff.std(ddof=1) / np.sqrt(len(diff)):.1%}"
            print(f"| {name} | {r['start']:.1%} | {r['budget']:,} B | {r['method']} | {r['labels'][0]} | "
                  f"{np.mean(r['arena']):,.0f} B | {np.mean(r['trainable']):,.0f} | {np.mean(r['gain']):.0%} | "
                  f"{np.mean(r['acc']):.1%} ± {np.std(r['acc']):.1%} | {paired} |")
        seconds = [s for r in rows for s in r["seconds"] if s]
        print(f"<!-- {name}: select_by_importance took {max(seconds) * 1e3:.0f} ms at most -->")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
