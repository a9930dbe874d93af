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
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).with_name("instructions_m4f.json")
DATA_RV32 = Path(__file__).with_name("instructions_rv32imc.json")  # ftte.bench.instructions_rv32
DIRECTIONS = ("forward", "backward_input", "backward_weight")


@dataclass(frozen=True)
class Measured:
    """Rows of (kernel, direction, batch) -> exact counts, and what they were measured with."""

    header: dict
    rows: tuple[dict, ...]

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


def rows_of(runs) -> list[dict]:
    """The rows of `ftte.bench.instructions` runs (each with .case and .instructions)."""
    return [{"kernel": r.case.kernel, "direction": r.case.direction, "batch": r.case.batch,
             "geometry": r.case.describe(), "macs": r.case.macs, "instructions": r.instructions}
            for r in runs]


def save(rows: list[dict], header: dict, path: Path | str = DATA) -> Path:
    path = Path(path)
    lines = ",\n  ".join(json.dumps(row) for row in rows)  # one case a line: diffs stay readable
    path.write_text(f'{{"header": {json.dumps(header, indent=1)},\n "rows": [\n  {lines}\n ]\n}}\n')
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
    return Measured(data["header"], rows)
