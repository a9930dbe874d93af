"""The simulator's cost model reads its instructions per MAC from one committed file, the one
`python -m ftte.bench.instructions` writes; where the cross compiler and unicorn are installed,
the committed counts must be what the kernels measure today (re-run the benchmark after
changing a kernel: it refreshes the file)."""

from __future__ import annotations

import json

import pytest

from ftte.bench import instructions as bench
from ftte.model import UpdateSpec
from ftte.sim import measured, task_work
from ftte.sim.profiles import IPM_DEFAULT, instructions_per_mac, ipm_source
from ftte.zoo import reference_model

COMMITTED = json.loads(measured.DATA.read_text())


def test_the_cost_model_uses_the_committed_measurements():
    rows = COMMITTED["rows"]
    assert {r["kernel"] for r in rows} >= {"dense", "conv2d", "pointwise_conv2d", "depthwise_conv2d", "conv1d"}
    for row in rows:
        value = instructions_per_mac(row["kernel"], row["direction"], row["batch"])
        assert value == row["instructions"] / row["macs"]
    assert instructions_per_mac("dense", "forward", 16) == instructions_per_mac("dense", "forward", 8)
    assert instructions_per_mac("flatten", "forward") == IPM_DEFAULT  # no MACs to weigh anyway
    header = COMMITTED["header"]
    assert header["command"] == "python -m ftte.bench.instructions" and header["date"] in ipm_source()


def test_task_work_follows_the_file(tmp_path, monkeypatch):
    model = reference_model("accel_cnn1d").build(0)
    before = task_work(model, UpdateSpec.full(model)).instructions
    doubled = [{**r, "instructions": 2 * r["instructions"]} for r in COMMITTED["rows"]]
    path = measured.save(doubled, COMMITTED["header"], tmp_path / "ipm.json")
    monkeypatch.setattr(measured, "DATA", path)
    assert task_work(model, UpdateSpec.full(model)).instructions == pytest.approx(2 * before, rel=1e-9)


def _missing_tools() -> str | None:
    try:
        bench.require_tools()
    except bench.MissingTools as error:
        return str(error)
    return None


@pytest.mark.skipif(_missing_tools() is not None, reason=_missing_tools() or "")
def test_the_committed_counts_are_what_the_kernels_measure_today(tmp_path):
    runs = bench.measure(bench.Emulator(bench.build(tmp_path)))
    now = {(r["kernel"], r["direction"], r["batch"]): (r["macs"], r["instructions"]) for r in measured.rows_of(runs)}
    committed = {(r["kernel"], r["direction"], r["batch"]): (r["macs"], r["instructions"]) for r in COMMITTED["rows"]}
    assert now == committed, "the kernels changed: re-run python -m ftte.bench.instructions to refresh " \
                             f"{measured.DATA.name}"
