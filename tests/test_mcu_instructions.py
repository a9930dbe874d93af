"""The Cortex-M4F instruction benchmark (ftte.bench.instructions): the harness builds with
arm-none-eabi-gcc, the dense forward kernel runs in unicorn, its output equals numpy, and the
instruction count per multiply-accumulate is a sane, reproducible number. Counts, not timings."""

from __future__ import annotations

import numpy as np
import pytest

from ftte.bench import instructions as bench

try:
    bench.require_tools()
    MISSING = None
except bench.MissingTools as error:  # no cross compiler, make or unicorn here
    MISSING = str(error)

pytestmark = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    return bench.Emulator(bench.build(tmp_path_factory.mktemp("mcu_bench")))


def test_dense_forward_runs_on_the_m4_and_matches_numpy(emulator):
    case = emulator.find_case("dense", "forward", batch=1)
    assert (case.in_shape[2], case.out_shape[2]) == (64, 32)
    assert case.macs == 64 * 32
    inputs = bench.make_inputs(case, np.random.default_rng(1))
    run = emulator.run(case, inputs)

    assert run.status == 0
    # Output starts NaN in the emulator's memory: every element must have been written.
    np.testing.assert_allclose(run.result, bench.numpy_dense_forward(case, inputs),
                               rtol=1e-5, atol=1e-5)
    # The FPU really ran: the kernel's inner loop is made of VFMA instructions.
    assert bench.hot_loop(run, emulator.fw).fmas >= 4
    assert 0.5 < run.per_mac < 20, f"{run.instructions} instructions for {case.macs} MACs"


def test_counts_are_exact_and_reproducible(emulator):
    case = emulator.find_case("dense", "forward", batch=1)
    counts = [emulator.run(case, bench.make_inputs(case, np.random.default_rng(seed))).instructions
              for seed in (2, 3)]
    assert counts[0] == counts[1] > 0  # data-independent kernel: same path, same count


def test_a_wrong_result_is_caught(emulator):
    case = emulator.find_case("dense", "forward", batch=1)
    inputs = bench.make_inputs(case, np.random.default_rng(4))
    run = emulator.run(case, inputs)
    bench.verify(run, inputs)  # the real run passes
    run.result = run.result.copy()
    run.result[5] += 0.5
    with pytest.raises(bench.BenchError, match="differs"):
        bench.verify(run, inputs)


def run_geometry(emulator, kernel, direction, geometry, batch, seed):
    """A case of `kernel` and `direction` with its row of bench_cases rewritten to another
    geometry (the op, then the 12 integers after it) and batch; its result checked against the
    host build."""
    base = emulator.find_case(kernel, direction)
    row = [bench.DIRECTIONS.index(direction), batch, base.geometry[0], *geometry]
    address = emulator.fw.address("bench_cases") + 4 * bench.FIELDS * base.index
    emulator.uc.mem_write(address, np.array(row, "<i4").tobytes())
    case = bench.Case(index=base.index, kernel=kernel, direction=direction, batch=batch,
                      geometry=(base.geometry[0], *geometry))
    try:
        inputs = bench.make_inputs(case, np.random.default_rng(seed))
        run = emulator.run(case, inputs)
        assert run.status == 0
        bench.verify(run, inputs)
    finally:
        original = [bench.DIRECTIONS.index(direction), base.batch, *base.geometry]
        emulator.uc.mem_write(address, np.array(original, "<i4").tobytes())
    return run


# The M4F's 3x3 depthwise asm covers "same" layers (padding 1, h, w >= 2): odd and even
# heights and widths, each count of middle columns modulo 3, a batch, one channel; the others
# (valid padding, padding 2 on the way back, 2-wide windows) take the C.
DEPTHWISE_GEOMETRIES = [
    (2, 2, 1, 2, 2, 1, 3, 3, 1, 1, 1, 1),
    (3, 3, 2, 3, 3, 2, 3, 3, 1, 1, 1, 1),
    (5, 4, 3, 5, 4, 3, 3, 3, 1, 1, 1, 1),
    (4, 7, 5, 4, 7, 5, 3, 3, 1, 1, 1, 1),
    (7, 6, 4, 7, 6, 4, 3, 3, 1, 1, 1, 1),
    (9, 5, 2, 7, 3, 2, 3, 3, 1, 1, 0, 0),
    (6, 6, 3, 6, 6, 3, 3, 3, 1, 1, 1, 0),
]


@pytest.mark.parametrize("direction", bench.DIRECTIONS)
@pytest.mark.parametrize("geometry", DEPTHWISE_GEOMETRIES)
def test_depthwise_3x3_on_the_m4_matches_the_host(emulator, direction, geometry):
    for batch in (1, 2):
        run_geometry(emulator, "depthwise_conv2d", direction, geometry, batch, seed=batch)


def test_a_whole_training_step_runs_on_the_m4_and_matches_the_host(emulator):
    """ftte.bench.steps: one ftte_train_step of a paper-benchmark model under its sparse w*
    runs in the emulator, plans the host's arena, and trains the host's loss and parameters."""
    from ftte.bench import steps

    model = steps.paper_model("mnist1d_cnn")
    run = steps.measure_step(emulator, model, steps.paper_spec(model), "importance w*")
    again = steps.measure_step(emulator, model, steps.paper_spec(model), "importance w*")
    assert run.instructions == again.instructions > run.macs  # the same path, counted exactly
    assert run.predicted > 0 and np.isfinite(run.loss)


@pytest.mark.parametrize("name", ["mnist1d_cnn", "accel_cnn1d"])
def test_steps_with_scattered_channels_run_on_the_m4_and_match_the_host(emulator, name):
    """Random channel specs split dense and conv layers into many runs: the board's one-pass
    row-table paths (the M4F asm included) train what the host trains (measure_step checks the
    plan, the loss and every trained parameter)."""
    from ftte.bench import steps

    model = steps.paper_model(name)
    rng = np.random.default_rng(11)
    for k in range(2):
        spec = steps.random_spec(model, rng)
        assert any(u.mode == "channels" for u in spec.layers)
        run = steps.measure_step(emulator, model, spec, f"random {k}")
        assert np.isfinite(run.loss) and run.instructions > run.macs
