"""Instructions of one whole training step on a Cortex-M4F (or RV32IMC), against the simulator's cost model.

The per-kernel benchmark (`ftte.bench.instructions`) measures each kernel on a whole layer; the
simulator (`ftte.sim.profiles.task_work`) charges a training sample as the sum over layers of
MACs x those instructions per MAC. This benchmark checks that sum against what the firmware
really executes: it writes a model and an update spec into the same harness
(`tools/mcu_bench/bench_entry.c`: bench_step_prepare plans and initialises the arena, not
counted), counts the one call of `ftte_train_step` (forward, loss, backward, SGD update of one
batch) in unicorn, checks the loss and the trained parameters against the host library, and
prints measured / predicted instructions.

The cases are the two paper-benchmark models (`ftte.bench.paper`) under the full spec and under
the importance w* the paper benchmark chose for them at seed 0 (`fleet.spec_for(Arm("ftte",
"importance"))`, copied here so that the benchmark does not pretrain a fleet).

The same check runs on RV32IMC (the ESP32-C3's instruction set, soft float) with ``--isa
rv32imc``: the firmware of `ftte.bench.instructions_rv32` (riscv64-unknown-elf-gcc) in unicorn's
RV32 core, against ``task_work(..., isa="rv32imc")``. About 60x the M4F's instructions, so
slower to emulate (a step of accel_cnn1d is 24 million instructions).

Run: ``python -m ftte.bench.steps [--isa rv32imc] [--profile] [--random N]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ftte.bench import instructions as m4
from ftte.model import Model, UpdateSpec
from ftte.model.spec import LayerUpdate

STEP_FIELDS = 15  # bench_entry.c's STEP_FIELDS

# The importance w* of ftte.bench.paper at seed 0 (Setting(data, 100, 0.5, 0)), by layer index.
PAPER_WSTAR = {
    "mnist1d_cnn": {0: ("full", ()), 3: ("channels", (3, 5, 14)), 7: ("channels", (12, 14, 15, 28)),
                    9: ("channels", (2, 4, 5, 9))},
    "accel_cnn1d": {0: ("channels", (0, 1, 3, 4, 5, 6, 7)), 3: ("channels", (0, 1, 2, 4, 7, 8, 9, 11, 14, 15)),
                    7: ("channels", (2, 6, 31)), 9: ("channels", (0, 1, 3, 4))},
}


def paper_spec(model: Model) -> UpdateSpec:
    """The importance w* of the paper benchmark for `model` (mnist1d_cnn or accel_cnn1d)."""
    return UpdateSpec.of(model, {i: LayerUpdate(mode, channels)
                                 for i, (mode, channels) in PAPER_WSTAR[model.name].items()})


def paper_model(name: str) -> Model:
    from ftte.sim.datasets import load_model
    return load_model(name, 0)[0]


@dataclass
class StepRun:
    model: str
    spec: str
    batch: int
    instructions: int
    predicted: float  # ftte.sim.profiles.task_work(...).instructions x batch
    macs: int         # task_work's MACs x batch
    pcs: Counter
    loss: float

    @property
    def ratio(self) -> float:
        return self.instructions / self.predicted


def _rows(model: Model, spec: UpdateSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(layer rows, channel masks, parameters) as bench_step_prepare reads them."""
    from ftte.native import op_id
    modes = {"frozen": 0, "bias": 1, "channels": 2, "full": 3}
    rows, masks, params = [], [], []
    for layer, update in zip(model.layers, spec.layers):
        has_bias = layer.bias is not None
        rows.append([op_id(layer.op), *layer.in_shape, *layer.out_shape, *layer.kernel, *layer.stride, *layer.pad,
                     int(has_bias), modes[update.mode]])
        bits = np.zeros(max(layer.out_shape[2], 1), np.uint8)
        bits[list(update.channels)] = 1
        masks.append(np.packbits(bits, bitorder="little"))
        if layer.has_weights:
            params.append(np.asarray(layer.weights, np.float32).ravel())
            if has_bias:
                params.append(np.asarray(layer.bias, np.float32).ravel())
    return np.array(rows, np.int32), masks, np.concatenate(params)


def harness_capacity(emulator: m4.Emulator) -> tuple[int, int]:
    """(layers, mask bytes per layer) that bench_step_layers and bench_step_masks hold. The M4F
    image has the constants bench_step_fields, _max_layers and _mask_bytes; the linked RV32 image
    keeps such small constants in .srodata without their symbols (as bench_case_count), so there
    the capacity comes from the sizes of the two tables."""
    symbols = emulator.fw.symbols
    if "bench_step_max_layers" in symbols:
        if int(emulator.read_i32("bench_step_fields")[0]) != STEP_FIELDS:
            raise m4.BenchError("bench_step_layers has another row length than ftte.bench.steps' STEP_FIELDS")
        return int(emulator.read_i32("bench_step_max_layers")[0]), int(emulator.read_i32("bench_step_mask_bytes")[0])
    layers, rest = divmod(symbols["bench_step_layers"].size, 4 * STEP_FIELDS)
    mask_bytes, rest_masks = divmod(symbols["bench_step_masks"].size, max(layers, 1))
    if rest or rest_masks or not layers:
        raise m4.BenchError("bench_step_layers / bench_step_masks do not match ftte.bench.steps' STEP_FIELDS")
    return layers, mask_bytes


def measure_step(emulator: m4.Emulator, model: Model, spec: UpdateSpec, label: str, batch: int = 1,
                 seed: int = 0, lr: float = 0.02) -> StepRun:
    """Counts one ftte_train_step of `model` under `spec` on the emulated board (the M4F, or
    RV32IMC with `ftte.bench.instructions_rv32.Emulator`), after checking its plan, loss and
    trained parameters against the host library's, and compares it with task_work for the
    emulator's isa."""
    from ftte.sim.profiles import task_work
    from ftte.train import Trainer

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *model.input_shape)).astype(np.float32)
    y = rng.integers(0, model.classes, batch).astype(np.int32)
    rows, masks, params = _rows(model, spec)
    fw, uc = emulator.fw, emulator.uc
    max_layers, mask_bytes = harness_capacity(emulator)
    if len(rows) > max_layers:
        raise m4.BenchError(f"{model.name}: {len(rows)} layers, bench_step_layers holds {max_layers}")
    table = np.zeros((max_layers, STEP_FIELDS), "<i4")
    table[:len(rows)] = rows
    uc.mem_write(fw.address("bench_step_layers"), table.tobytes())
    mask_table = np.zeros((max_layers, mask_bytes), np.uint8)
    for i, (m, update) in enumerate(zip(masks, spec.layers)):
        if update.mode == "channels":
            if m.size > mask_bytes:
                raise m4.BenchError(f"layer {i}: {m.size} mask bytes, the harness holds {mask_bytes}")
            mask_table[i, :m.size] = m
    uc.mem_write(fw.address("bench_step_masks"), mask_table.tobytes())
    uc.mem_write(fw.address("bench_step_count"), np.int32(len(rows)).tobytes())
    uc.mem_write(fw.address("bench_step_batch"), np.int32(batch).tobytes())
    uc.mem_write(fw.address("bench_step_labels"), y.astype("<i4").tobytes())
    uc.mem_write(fw.address("bench_step_lr"), np.float32(lr).tobytes())
    emulator.write_floats("bench_step_params", params)
    emulator.write_floats("bench_x", x.ravel())
    status, _ = emulator.call("bench_step_prepare")
    if status != 0:
        raise m4.BenchError(f"{model.name} ({label}): bench_step_prepare returned {status}")
    host = Trainer(model, spec, batch)
    board_total = int(emulator.read_i32("bench_step_memory")[0])
    if board_total != host.memory.total:
        raise m4.BenchError(f"{model.name} ({label}): the board plans {board_total} B, "
                            f"the host {host.memory.total} B")
    status, pcs = emulator.call("bench_step_run", "ftte_train_step")
    if status != 0:
        raise m4.BenchError(f"{model.name} ({label}): ftte_train_step returned {status}")
    loss = float(emulator.read_floats("bench_step_loss", 1)[0])
    want_loss = host.step(x, y, lr)
    persistent = host.memory.params_ram // 4
    board_params = np.frombuffer(bytes(uc.mem_read(fw.address("bench_step_arena"), 4 * persistent)), "<f4")
    if not np.isclose(loss, want_loss, rtol=1e-4, atol=1e-5) or \
            not np.allclose(board_params, host.arena[:persistent], rtol=1e-4, atol=1e-5):
        raise m4.BenchError(f"{model.name} ({label}): the emulated step differs from the host's "
                            f"(loss {loss!r} vs {want_loss!r})")
    work = task_work(model, spec, batch, emulator.isa)
    return StepRun(model.name, label, batch, sum(pcs.values()), work.instructions * batch, work.macs * batch, pcs,
                   loss)


def random_spec(model: Model, rng: np.random.Generator) -> UpdateSpec:
    """Each weighted layer trains each of its channels with probability 1/2."""
    updates = {}
    for i, layer in enumerate(model.layers):
        if layer.has_weights:
            selected = tuple(int(o) for o in np.flatnonzero(rng.random(layer.channels) < 0.5))
            if selected:
                updates[i] = LayerUpdate("channels", selected)
    return UpdateSpec.of(model, updates)


def cases(extra: int = 0, models: list[str] | None = None) -> list[tuple[Model, UpdateSpec, str]]:
    """Full spec and the paper's w* of both models (or of `models`), and `extra` random channel
    specs of each (seeded: the same every run)."""
    out = []
    for name in models or PAPER_WSTAR:
        model = paper_model(name)
        out.append((model, UpdateSpec.full(model), "full"))
        out.append((model, paper_spec(model), "importance w*"))
        rng = np.random.default_rng(5)
        out.extend((model, random_spec(model, rng), f"random {k}") for k in range(extra))
    return out


def measure(emulator: m4.Emulator, batch: int = 1, extra: int = 0, models: list[str] | None = None) -> list[StepRun]:
    return [measure_step(emulator, model, spec, label, batch) for model, spec, label in cases(extra, models)]


def table(runs: list[StepRun]) -> str:
    lines = ["| model | spec | MACs | instructions measured | predicted (task_work) | measured / predicted |",
             "|---|---|---:|---:|---:|---:|"]
    for r in runs:
        lines.append(f"| {r.model} | {r.spec} | {r.macs:,} | {r.instructions:,} | {r.predicted:,.0f} | "
                     f"{r.ratio:.3f} |")
    return "\n".join(lines)


def by_function(run: StepRun, fw: m4.Firmware, top: int = 12) -> str:
    totals: Counter = Counter()
    for address, count in run.pcs.items():
        totals[fw.function_at(address)] += count
    return ", ".join(f"{name} {count:,}" for name, count in totals.most_common(top))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ftte.bench.steps",
                                     description="Instructions of one training step on an emulated board (unicorn) "
                                                 "against the simulator's cost model.")
    parser.add_argument("--isa", choices=("m4f", "rv32imc"), default="m4f",
                        help="m4f: Cortex-M4F (arm-none-eabi-gcc); rv32imc: the ESP32-C3's RV32IMC, soft float "
                             "(riscv64-unknown-elf-gcc, as ftte.bench.instructions_rv32)")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="also the instructions by function")
    parser.add_argument("--random", type=int, default=0,
                        help="also this many random channel specs per model (seeded)")
    parser.add_argument("--model", action="append", choices=tuple(PAPER_WSTAR),
                        help="only this paper model (repeatable)")
    args = parser.parse_args(argv)
    try:
        if args.isa == "rv32imc":
            from ftte.bench import instructions_rv32 as rv32
            target, emulator_class, board = rv32.TARGET, rv32.Emulator, "RV32IMC (no FPU: libgcc soft float)"
        else:
            m4.require_tools()
            target, emulator_class, board = m4.TARGET, m4.Emulator, "Cortex-M4F"
        build_dir = Path(tempfile.mkdtemp(prefix="ftte-mcu-step-"))
        try:
            fw = m4.build(build_dir, target)
            emulator = emulator_class(fw)
            runs = measure(emulator, args.batch, args.random, args.model)
            print(f"{board}, {fw.compiler}\n{m4.source_state()}\n"
                  f"one ftte_train_step (batch {args.batch}, SGD without momentum), executed instructions "
                  f"(unicorn); predicted: ftte.sim.profiles.task_work(..., isa={args.isa!r})\n")
            print(table(runs))
            if args.profile:
                for r in runs:
                    print(f"\n{r.model}, {r.spec}: {by_function(r, fw)}")
        finally:
            shutil.rmtree(build_dir, ignore_errors=True)
    except m4.BenchError as error:
        print(f"ftte.bench.steps: error: {error}", file=sys.stderr)
        return 2 if isinstance(error, m4.MissingTools) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
