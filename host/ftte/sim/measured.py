"""Instructions per multiply-accumulate of the C kernels, as `python -m ftte.bench.instructions`
last measured them: the one source of the cost model's numbers (`ftte.sim.profiles`).

The benchmark writes `instructions_m4f.json` beside this module whenever it measures every case
(`--no-save` to leave it alone), so re-running it after a kernel change refreshes the simulator's
costs; the file is committed with the kernels it describes. Each row keeps the case's exact MAC
and instruction counts, so the ratio is not rounded, and the header says what was measured, how
and from which sources. `tests/test_sim_costs.py` checks, where the cross compiler and unicorn
are installed, that the committed counts are what the kernels measure today.
"""

from __future__ import annotations

import json
import math

import numpy as np
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).with_name("instructions_m4f.json")
DATA_RV32 = Path(__file__).with_name("instructions_rv32imc.json")  # ftte.bench.instructions_rv32
DIRECTIONS = ("forward", "backward_input", "backward_weight")


SLICE_WIDTHS = (8, 4, 3, 2, 1)  # the channel slices bench_op_cases measures each MAC kernel on


@dataclass(frozen=True)
class Measured:
    """Rows of (kernel, direction, batch) -> exact counts, and what they were measured with;
    `ops`: the rest of a training step (bench_op_cases), exact counts per case."""

    header: dict
    rows: tuple[dict, ...]
    ops: tuple[dict, ...] = ()

    def _ops(self, name: str) -> list[dict]:
        rows = [r for r in self.ops if r["op"] == name]
        if not rows:
            raise KeyError(f"no measurement of {name!r} in the ops section")
        return rows

    def linear(self, name: str) -> tuple[float, float]:
        """(per-call constant, per element) of an elementwise op, solved exactly from its two
        sizes: sgd, sgd_momentum, relu, relu6, relu_mask, relu6_mask, masked_backward,
        relu_backward, zero (per float), cross_entropy (per class)."""
        a, b = sorted(self._ops(name), key=lambda r: r["count"])[:2]
        per = (b["instructions"] - a["instructions"]) / (b["count"] - a["count"])
        return a["instructions"] - per * a["count"], per

    def elementwise(self, name: str, count: int) -> float:
        if count <= 0:
            return 0.0
        constant, per = self.linear(name)
        return constant + per * count

    def pool(self, direction: str, outputs: int, inputs: int) -> float:
        """Indexed max pool (direction 'forward' or 'backward'): constant + a x output elements
        + b x input elements, solved from its three cases."""
        rows = self._ops(f"pool_{direction}")
        m = np.array([[1.0, _size(r["geometry"][4:7]), _size(r["geometry"][1:4])] for r in rows[:3]])
        c, a, b = np.linalg.solve(m, [r["instructions"] for r in rows[:3]])
        return float(c + a * outputs + b * inputs)

    def bias_backward(self, rows: int, channels: int) -> float:
        """constant + a x rows x channels + b x channels, solved from its three cases."""
        cases = self._ops("bias_backward")
        m = np.array([[1.0, r["count"] * r["geometry"][6], r["geometry"][6]] for r in cases[:3]])
        c, a, b = np.linalg.solve(m, [r["instructions"] for r in cases[:3]])
        return float(c + a * rows * channels + b * channels)

    def kernel_call(self, kernel: str, direction: str, width: int, channels: int, macs_per_channel: float) -> float | None:
        """Instructions of one call of a MAC kernel on `width` of a layer's `channels` output
        channels, whose forward does macs_per_channel MACs per channel (times the batch). From
        the kernel's slices on its reference geometry: the per-call constant (the whole layer
        at two sizes), and per MAC of a slice of the width, the width made of the measured
        slices (8, 4, 3, 2, 1: a kernel works 8, 6, 4 or 1 channels at a time), the whole layer
        when the width is every channel. None if the kernel has no slices measured."""
        rows = [r for r in self.ops if r.get("kernel") == kernel and r["kind"] == direction]
        if not rows:
            return None
        full = [r for r in rows if r["count"] == r["geometry"][6]]
        a, b = sorted(full, key=lambda r: r["macs"])[:2]
        per_mac = (b["instructions"] - a["instructions"]) / (b["macs"] - a["macs"])
        constant = a["instructions"] - per_mac * a["macs"]
        big = b  # the reference geometry (the slices')
        ref_channels = big["geometry"][6]
        ref_per_channel = big["macs"] / ref_channels
        scale = macs_per_channel / ref_per_channel
        slices = {r["count"]: r["instructions"] - constant for r in rows
                  if r["geometry"] == big["geometry"] and r["count"] < ref_channels}
        if width >= channels:  # the whole layer
            return constant + per_mac * macs_per_channel * channels
        work, left = 0.0, width
        while left > 0:
            part = next(w for w in SLICE_WIDTHS if w <= left and w in slices)
            work += slices[part]
            left -= part
        return constant + work * scale

    def per_mac(self, kernel: str, direction: str, batch: int = 1) -> float | None:
        """Instructions/MAC of the measured batch nearest to `batch` (in log2: batch >= 4 takes
        dense's batch-8 row, batch 1 or 2 its batch-1 row); None if the kernel was not measured."""
        rows = [r for r in self.rows if r["kernel"] == kernel and r["direction"] == direction]
        if not rows:
            return None
        row = min(rows, key=lambda r: (abs(math.log2(r["batch"]) - math.log2(max(batch, 1))), r["batch"]))
        return row["instructions"] / row["macs"]

    @property
    def source(self) -> str:
        h = self.header
        return f"{h['command']} ({h['target']}, {h['compiler']}; {h['sources']}; {h['date']})"


def _size(shape) -> int:
    return int(np.prod(shape))


def op_rows_of(runs) -> list[dict]:
    """The rows of the ops section from `ftte.bench.instructions.measure_ops` runs."""
    return [{"op": r.case.name, "kernel": r.case.kernel, "kind": r.case.kind, "batch": r.case.batch,
             "count": r.case.count, "geometry": list(r.case.geometry), "describe": r.case.describe(),
             "macs": r.case.macs, "instructions": r.instructions} for r in runs]


def rows_of(runs) -> list[dict]:
    """The rows of `ftte.bench.instructions` runs (each with .case and .instructions)."""
    return [{"kernel": r.case.kernel, "direction": r.case.direction, "batch": r.case.batch,
             "geometry": r.case.describe(), "macs": r.case.macs, "instructions": r.instructions}
            for r in runs]


def save(rows: list[dict], header: dict, path: Path | str = DATA, ops: list[dict] | None = None) -> Path:
    path = Path(path)
    lines = ",\n  ".join(json.dumps(row) for row in rows)  # one case a line: diffs stay readable
    text = f'{{"header": {json.dumps(header, indent=1)},\n "rows": [\n  {lines}\n ]'
    if ops:
        op_lines = ",\n  ".join(json.dumps(row) for row in ops)
        text += f',\n "ops": [\n  {op_lines}\n ]'
    path.write_text(text + "\n}\n")
    _load.cache_clear()
    return path


def load(path: Path | str | None = None) -> Measured:
    """The measurements in `path` (default: the committed file), read once."""
    return _load(Path(path) if path is not None else DATA)


@lru_cache(maxsize=None)
def _load(path: Path) -> Measured:
    data = json.loads(path.read_text())
    rows = tuple(data["rows"])
    for row in rows:
        if row["direction"] not in DIRECTIONS or row["macs"] <= 0 or row["instructions"] <= 0:
            raise ValueError(f"{path}: bad row {row}")
    ops = tuple(data.get("ops", ()))
    for row in ops:
        if row["instructions"] <= 0 or row["count"] <= 0 and not row["kind"].startswith("pool"):
            raise ValueError(f"{path}: bad ops row {row}")
    return Measured(data["header"], rows, ops)
