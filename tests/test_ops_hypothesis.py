"""Property-based tests of every C kernel, called directly through cffi, against numpy.

Geometry (sizes, kernel, stride, padding, output size, batch, channel slice) is drawn by
hypothesis over everything ftte_layer_validate accepts, not only what TensorFlow's 'same' and
'valid' produce; the data comes from a drawn numpy seed. The references are float64 numpy.

Every buffer handed to C sits between guard floats that must come back untouched, and buffers
a kernel must not write (columns outside a slice, everything on an error) are painted first:
a kernel that writes out of place fails even if the values it computes are right.

Tolerance of sums: |ours - ref| <= 1e-5 |ref| + 1e-5 * bound, where bound is the same sum
taken over absolute values (plus |initial| for accumulating kernels). A float32 sum of K terms
is off by at most about K * 2^-24 * bound whatever its own value (cancellation), and K stays
below ~300 here, so this holds for correct code while any indexing error, which is of the
order of bound itself, fails.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftte.native import ffi, lib

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

GUARD = 8
GUARD_VALUE = np.float32(-31337.5)
PAINT = np.float32(np.nan)

OK = lib.FTTE_OK
ERR_ARG = lib.FTTE_ERR_ARG
ERR_SHAPE = lib.FTTE_ERR_SHAPE
ERR_UNSUPPORTED = lib.FTTE_ERR_UNSUPPORTED
ERR_LABEL = lib.FTTE_ERR_LABEL


# ------------------------------------------------------------------------------------------
# Buffers and checks
# ------------------------------------------------------------------------------------------

class Buf:
    """A float32 array handed to C between guard floats."""

    def __init__(self, values):
        values = np.asarray(values, np.float32)
        self.shape = values.shape
        self.mem = np.full(values.size + 2 * GUARD, GUARD_VALUE, np.float32)
        self.mem[GUARD:GUARD + values.size] = values.ravel()
        self._whole = ffi.from_buffer("float[]", self.mem)
        self.ptr = self._whole + GUARD  # does not keep the memory alive: keep the Buf

    @classmethod
    def painted(cls, shape):
        return cls(np.full(shape, PAINT, np.float32))

    @property
    def value(self) -> np.ndarray:
        return self.mem[GUARD:self.mem.size - GUARD].reshape(self.shape)

    def check_guards(self, what: str) -> None:
        assert (self.mem[:GUARD] == GUARD_VALUE).all(), f"{what}: written before the buffer"
        assert (self.mem[self.mem.size - GUARD:] == GUARD_VALUE).all(), f"{what}: written past the buffer"

    def check_unchanged(self, before: np.ndarray, what: str) -> None:
        self.check_guards(what)
        np.testing.assert_array_equal(self.value, before, err_msg=f"{what}: written")


def assert_sums(actual, expected, bound, what: str) -> None:
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, what
    tol = 1e-5 * np.abs(expected) + 1e-5 * np.asarray(bound, np.float64) + 1e-30
    bad = ~(np.abs(actual - expected) <= tol)  # NaN fails
    if bad.any():
        index = tuple(np.argwhere(bad)[0])
        raise AssertionError(f"{what}: {bad.sum()} of {bad.size} elements off; first at {index}: "
                             f"ours {actual[index]!r}, reference {expected[index]!r}, tol {tol[index]!r}")


# ------------------------------------------------------------------------------------------
# Geometry
# ------------------------------------------------------------------------------------------

OP_IDS = {"dense": lib.FTTE_OP_DENSE, "conv2d": lib.FTTE_OP_CONV2D, "conv1d": lib.FTTE_OP_CONV1D,
          "depthwise_conv2d": lib.FTTE_OP_DEPTHWISE_CONV2D,
          "pointwise_conv2d": lib.FTTE_OP_POINTWISE_CONV2D, "max_pool2d": lib.FTTE_OP_MAX_POOL2D,
          "avg_pool2d": lib.FTTE_OP_AVG_POOL2D, "global_avg_pool": lib.FTTE_OP_GLOBAL_AVG_POOL,
          "flatten": lib.FTTE_OP_FLATTEN, "relu": lib.FTTE_OP_RELU, "relu6": lib.FTTE_OP_RELU6}


@dataclass(frozen=True)
class Geom:
    op: str
    n: int
    in_: tuple[int, int, int]
    out: tuple[int, int, int]
    kernel: tuple[int, int] = (0, 0)
    stride: tuple[int, int] = (0, 0)
    pad: tuple[int, int] = (0, 0)

    def record(self):
        return ffi.new("ftte_layer *", {
            "op": OP_IDS[self.op],
            "in": dict(zip("hwc", self.in_)), "out": dict(zip("hwc", self.out)),
            "kernel_h": self.kernel[0], "kernel_w": self.kernel[1],
            "stride_h": self.stride[0], "stride_w": self.stride[1],
            "pad_top": self.pad[0], "pad_left": self.pad[1]})

    @property
    def x_shape(self):
        return (self.n,) + self.in_

    @property
    def y_shape(self):
        return (self.n,) + self.out

    # the window geometry numpy uses: dense and pointwise are 1x1 convolutions
    @property
    def window(self):
        if self.op in ("dense", "pointwise_conv2d"):
            return (1, 1), (1, 1), (0, 0)
        return self.kernel, self.stride, self.pad


@st.composite
def window_axis(draw, size_max=9, kernel_max=4, stride_max=3):
    """(in, out, kernel, stride, pad) of one axis that ftte_layer_validate accepts: any
    padding below the kernel and any output count whose last window overlaps the input."""
    kernel = draw(st.integers(1, kernel_max))
    stride = draw(st.integers(1, stride_max))
    pad = draw(st.integers(0, kernel - 1))
    size = draw(st.integers(1, size_max))
    out = draw(st.integers(1, (size + pad - 1) // stride + 1))
    return size, out, kernel, stride, pad


@st.composite
def weighted_geometry(draw, op):
    n = draw(st.integers(1, 4))
    if op == "dense":
        ci, co = draw(st.integers(1, 13)), draw(st.integers(1, 11))
        return Geom(op, draw(st.integers(1, 7)), (1, 1, ci), (1, 1, co))
    if op == "pointwise_conv2d":
        h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
        ci, co = draw(st.integers(1, 9)), draw(st.integers(1, 9))
        return Geom(op, n, (h, w, ci), (h, w, co), (1, 1), (1, 1), (0, 0))
    hy = (1, 1, 1, 1, 0) if op == "conv1d" else draw(window_axis())
    wx = draw(window_axis(size_max=12 if op == "conv1d" else 9, kernel_max=5 if op == "conv1d" else 4))
    ci = draw(st.integers(1, 9 if op == "depthwise_conv2d" else 5))
    co = ci if op == "depthwise_conv2d" else draw(st.integers(1, 9))
    return Geom(op, n, (hy[0], wx[0], ci), (hy[1], wx[1], co), (hy[2], wx[2]), (hy[3], wx[3]), (hy[4], wx[4]))


@st.composite
def pool_geometry(draw, op):
    n = draw(st.integers(1, 3))
    axes = []
    for _ in range(2):
        kernel, stride = draw(st.integers(1, 4)), draw(st.integers(1, 3))
        size = draw(st.integers(kernel, 9))
        axes.append((size, draw(st.integers(1, (size - kernel) // stride + 1)), kernel, stride))
    c = draw(st.integers(1, 6))
    (h, oh, kh, sh), (w, ow, kw, sw) = axes
    return Geom(op, n, (h, w, c), (oh, ow, c), (kh, kw), (sh, sw), (0, 0))


@st.composite
def slices(draw, channels):
    begin = draw(st.integers(0, channels - 1))
    return begin, draw(st.integers(1, channels - begin))


seeds = st.integers(0, 2**32 - 1)


# ------------------------------------------------------------------------------------------
# numpy references (float64)
# ------------------------------------------------------------------------------------------

def _padded(g: Geom, x):
    (kh, kw), (sh, sw), (pt, pl) = g.window
    (h, w, c), (oh, ow, _) = g.in_, g.out
    big = np.zeros((g.n, max(h + pt, (oh - 1) * sh + kh), max(w + pl, (ow - 1) * sw + kw), c))
    big[:, pt:pt + h, pl:pl + w] = x
    return big


def _tap(g: Geom, big, ky, kx):
    """The view of `big` (padded input) that tap (ky, kx) reads at every output position."""
    _, (sh, sw), _ = g.window
    (oh, ow, _) = g.out
    return big[:, ky:ky + (oh - 1) * sh + 1:sh, kx:kx + (ow - 1) * sw + 1:sw]


def _taps(g: Geom):
    (kh, kw), _, _ = g.window
    return [(ky, kx) for ky in range(kh) for kx in range(kw)]


def _w4(g: Geom, w):
    """Weights as [out][kh][kw][in] (conv family) or [c][kh][kw] (depthwise)."""
    (kh, kw), _, _ = g.window
    if g.op == "depthwise_conv2d":
        return w.reshape(-1, kh, kw)
    return w.reshape(-1, kh, kw, g.in_[2])


def ref_forward(g: Geom, x, w, b):
    big, w4 = _padded(g, x.reshape(g.x_shape)), _w4(g, w)
    y = np.zeros(g.y_shape)
    for ky, kx in _taps(g):
        patch = _tap(g, big, ky, kx)
        y += patch * w4[:, ky, kx] if g.op == "depthwise_conv2d" else patch @ w4[:, ky, kx, :].T
    return y + (0.0 if b is None else b)


def ref_backward_input(g: Geom, gy, w):
    w4 = _w4(g, w)
    big = _padded(g, np.zeros(g.x_shape))
    for ky, kx in _taps(g):
        view = _tap(g, big, ky, kx)
        view += gy * w4[:, ky, kx] if g.op == "depthwise_conv2d" else gy @ w4[:, ky, kx, :]
    _, _, (pt, pl) = g.window
    return big[:, pt:pt + g.in_[0], pl:pl + g.in_[1]]


def ref_backward_weight(g: Geom, x, gy):
    big = _padded(g, x.reshape(g.x_shape))
    (kh, kw), _, _ = g.window
    if g.op == "depthwise_conv2d":
        gw = np.zeros((g.out[2], kh, kw))
        for ky, kx in _taps(g):
            gw[:, ky, kx] = np.einsum("nyxc,nyxc->c", gy, _tap(g, big, ky, kx))
    else:
        gw = np.zeros((g.out[2], kh, kw, g.in_[2]))
        for ky, kx in _taps(g):
            gw[:, ky, kx, :] = np.einsum("nyxo,nyxi->oi", gy, _tap(g, big, ky, kx))
    return gw.reshape(g.out[2], -1)


# ------------------------------------------------------------------------------------------
# Weighted kernels: forward, backward to the input, backward to the weights, with slices
# ------------------------------------------------------------------------------------------

WEIGHTED = ("dense", "conv2d", "conv1d", "depthwise_conv2d", "pointwise_conv2d")
SCRATCH = ("conv2d", "conv1d")


def kernel(op: str, direction: str):
    return getattr(lib, f"ftte_{op}_{direction}")


def scratch_for(op: str, direction: str, record, n: int) -> Buf:
    size = kernel(op, f"{direction}_get_buffer_size")(record, n)
    assert size >= 0 and size % 4 == 0
    return Buf.painted(max(size // 4, 0))


def call_weighted(op, direction, record, n, slice_, a, b, c, d=None, scratch=None):
    """Calls a weighted kernel; (a, b, c[, d]) are its pointer arguments in header order."""
    args = [record, n, slice_, a, b, c] + ([d] if direction == "forward" else [])
    if op in SCRATCH:
        args.append(scratch.ptr if scratch is not None else ffi.NULL)
    return kernel(op, direction)(*args)


def row_length(g: Geom) -> int:
    (kh, kw), _, _ = g.window
    return kh * kw if g.op == "depthwise_conv2d" else kh * kw * g.in_[2]


@pytest.mark.parametrize("op", WEIGHTED)
@SETTINGS
@given(data=st.data(), seed=seeds)
def test_weighted_kernels_match_numpy(op, data, seed):
    g = data.draw(weighted_geometry(op), label="geometry")
    begin, count = data.draw(slices(g.out[2]), label="slice")
    use_bias = data.draw(st.booleans(), label="bias")
    rng = np.random.default_rng(seed)
    record = g.record()
    assert lib.ftte_layer_validate(record) == OK
    rl = row_length(g)
    assert lib.ftte_layer_row_length(record) == rl
    assert lib.ftte_layer_macs(record) == g.out[0] * g.out[1] * g.out[2] * rl
    sl = slice(begin, begin + count)

    x = rng.normal(size=g.x_shape).astype(np.float32)
    w = rng.normal(size=(g.out[2], rl)).astype(np.float32)
    bias = rng.normal(size=g.out[2]).astype(np.float32) if use_bias else None
    gy = rng.normal(size=g.y_shape).astype(np.float32)
    x64, w64, gy64 = x.astype(np.float64), w.astype(np.float64), gy.astype(np.float64)

    # forward: only the slice's channels are written
    xb, wb = Buf(x), Buf(w[sl])
    bb = Buf(bias[sl]) if use_bias else None
    yb = Buf.painted(g.y_shape)
    sc = scratch_for(op, "forward", record, g.n)
    status = call_weighted(op, "forward", record, g.n, (begin, count), xb.ptr, wb.ptr,
                           bb.ptr if bb else ffi.NULL, yb.ptr, scratch=sc)
    assert status == OK
    for buf, what in ((xb, "input"), (wb, "weights"), (yb, "output"), (sc, "scratch")) + \
            (((bb, "bias"),) if bb else ()):
        buf.check_guards(f"forward {what}")
    np.testing.assert_array_equal(xb.value, x, err_msg="forward wrote its input")
    y = ref_forward(g, x64, w64, None if bias is None else bias.astype(np.float64))
    bound = ref_forward(g, np.abs(x64), np.abs(w64), None if bias is None else np.abs(bias.astype(np.float64)))
    assert_sums(yb.value[..., sl], y[..., sl], bound[..., sl], f"{op} forward")
    outside = np.ones(g.out[2], bool)
    outside[sl] = False
    assert np.isnan(yb.value[..., outside]).all(), "forward wrote channels outside the slice"

    # backward to the input: accumulates the slice channels' contribution
    init = rng.normal(size=g.x_shape).astype(np.float32)
    gyb, gib = Buf(gy), Buf(init)
    wb = Buf(w[sl])
    sc = scratch_for(op, "backward_input", record, g.n)
    status = call_weighted(op, "backward_input", record, g.n, (begin, count), gyb.ptr, wb.ptr,
                           gib.ptr, scratch=sc)
    assert status == OK
    for buf, what in ((gyb, "grad_output"), (wb, "weights"), (gib, "grad_input"), (sc, "scratch")):
        buf.check_guards(f"backward_input {what}")
    masked = np.zeros_like(gy64)
    masked[..., sl] = gy64[..., sl]
    expected = init + ref_backward_input(g, masked, w64)
    bound = np.abs(init) + ref_backward_input(g, np.abs(masked), np.abs(w64))
    assert_sums(gib.value, expected, bound, f"{op} backward_input")
    if op == "depthwise_conv2d":
        np.testing.assert_array_equal(gib.value[..., outside], init[..., outside],
                                      err_msg="depthwise backward_input changed channels outside the slice")

    # backward to the weights: accumulates into the slice's rows
    init_w = rng.normal(size=(count, rl)).astype(np.float32)
    xb, gyb, gwb = Buf(x), Buf(gy), Buf(init_w)
    sc = scratch_for(op, "backward_weight", record, g.n)
    status = call_weighted(op, "backward_weight", record, g.n, (begin, count), xb.ptr, gyb.ptr,
                           gwb.ptr, scratch=sc)
    assert status == OK
    for buf, what in ((xb, "input"), (gyb, "grad_output"), (gwb, "grad_weights"), (sc, "scratch")):
        buf.check_guards(f"backward_weight {what}")
    expected = init_w + ref_backward_weight(g, x64, gy64)[sl]
    bound = np.abs(init_w) + ref_backward_weight(g, np.abs(x64), np.abs(gy64))[sl]
    assert_sums(gwb.value, expected, bound, f"{op} backward_weight")


@pytest.mark.parametrize("op", WEIGHTED)
@FEW
@given(data=st.data(), seed=seeds)
def test_slices_partition_the_full_layer(op, data, seed):
    """Running the kernels slice by slice over a partition of the channels gives the whole
    layer: the forward fills every channel, the backward sums add up to the full ones."""
    g = data.draw(weighted_geometry(op), label="geometry")
    cuts = data.draw(st.lists(st.integers(1, g.out[2] - 1), max_size=3), label="cuts") if g.out[2] > 1 else []
    bounds = [0] + sorted(set(cuts)) + [g.out[2]]
    rng = np.random.default_rng(seed)
    record, rl = g.record(), row_length(g)
    x = rng.normal(size=g.x_shape).astype(np.float32)
    w = rng.normal(size=(g.out[2], rl)).astype(np.float32)
    b = rng.normal(size=g.out[2]).astype(np.float32)
    gy = rng.normal(size=g.y_shape).astype(np.float32)

    def run(direction, parts):
        out = {"forward": Buf.painted(g.y_shape), "backward_input": Buf(np.zeros(g.x_shape)),
               "backward_weight": Buf(np.zeros((g.out[2], rl)))}[direction]
        sc = scratch_for(op, direction, record, g.n)
        xb, gyb = Buf(x), Buf(gy)  # kept alive: a Buf's ptr does not own its memory
        for lo, hi in parts:
            wb, bb = Buf(w[lo:hi]), Buf(b[lo:hi])
            if direction == "forward":
                status = call_weighted(op, direction, record, g.n, (lo, hi - lo), xb.ptr, wb.ptr,
                                       bb.ptr, out.ptr, scratch=sc)
            elif direction == "backward_input":
                status = call_weighted(op, direction, record, g.n, (lo, hi - lo), gyb.ptr, wb.ptr,
                                       out.ptr, scratch=sc)
            else:
                status = call_weighted(op, direction, record, g.n, (lo, hi - lo), xb.ptr, gyb.ptr,
                                       out.ptr + lo * rl, scratch=sc)
            assert status == OK
        out.check_guards(direction)
        return out.value

    parts = list(zip(bounds[:-1], bounds[1:]))
    for direction in ("forward", "backward_input", "backward_weight"):
        whole, pieces = run(direction, [(0, g.out[2])]), run(direction, parts)
        scale = np.abs(whole).max(initial=1.0)
        np.testing.assert_allclose(pieces, whole, rtol=1e-5, atol=1e-5 * scale, err_msg=f"{op} {direction}")


@SETTINGS
@given(rows=st.integers(1, 40), channels=st.integers(1, 11), seed=seeds)
def test_bias_backward_sums_columns(rows, channels, seed):
    rng = np.random.default_rng(seed)
    gy = rng.normal(size=(rows, channels)).astype(np.float32)
    init = rng.normal(size=channels).astype(np.float32)
    gyb, gbb = Buf(gy), Buf(init)
    assert lib.ftte_bias_backward(rows, channels, gyb.ptr, gbb.ptr) == OK
    gbb.check_guards("grad_bias")
    gyb.check_unchanged(gy, "grad_output")
    assert_sums(gbb.value, init + gy.astype(np.float64).sum(0), np.abs(init) + np.abs(gy).sum(0), "bias")


# ------------------------------------------------------------------------------------------
# Pools, flatten
# ------------------------------------------------------------------------------------------

def _windows(g: Geom):
    (kh, kw), (sh, sw) = g.kernel, g.stride
    for oy in range(g.out[0]):
        for ox in range(g.out[1]):
            yield oy, ox, slice(oy * sh, oy * sh + kh), slice(ox * sw, ox * sw + kw)


def ref_max_pool(g: Geom, x, gy):
    """Forward, and backward routing each window's gradient to its first maximum (row-major)."""
    y = np.zeros(g.y_shape)
    gx = np.zeros(g.x_shape)
    kw = g.kernel[1]
    n_idx, c_idx = np.meshgrid(np.arange(g.n), np.arange(g.in_[2]), indexing="ij")
    for oy, ox, ys, xs in _windows(g):
        win = x[:, ys, xs].reshape(g.n, -1, g.in_[2])
        y[:, oy, ox] = win.max(axis=1)
        first = win.argmax(axis=1)  # the first occurrence of the maximum
        np.add.at(gx, (n_idx, ys.start + first // kw, xs.start + first % kw, c_idx), gy[:, oy, ox])
    return y, gx


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@SETTINGS
@given(data=st.data(), seed=seeds)
def test_max_pool2d(ties, data, seed):
    g = data.draw(pool_geometry("max_pool2d"), label="geometry")
    rng = np.random.default_rng(seed)
    x = (rng.integers(-2, 3, g.x_shape) if ties else rng.normal(size=g.x_shape)).astype(np.float32)
    gy = rng.normal(size=g.y_shape).astype(np.float32)
    init = rng.normal(size=g.x_shape).astype(np.float32)
    record = g.record()
    y_ref, gx_ref = ref_max_pool(g, x.astype(np.float64), gy.astype(np.float64))

    xb, yb = Buf(x), Buf.painted(g.y_shape)
    assert lib.ftte_max_pool2d_forward(record, g.n, xb.ptr, yb.ptr) == OK
    yb.check_guards("output")
    xb.check_unchanged(x, "input")
    np.testing.assert_array_equal(yb.value, y_ref.astype(np.float32))

    xb, gyb, gib = Buf(x), Buf(gy), Buf(init)
    assert lib.ftte_max_pool2d_backward(record, g.n, xb.ptr, gyb.ptr, gib.ptr) == OK
    gib.check_guards("grad_input")
    bound = np.abs(init) + ref_max_pool(g, x.astype(np.float64), np.abs(gy.astype(np.float64)))[1]
    assert_sums(gib.value, init + gx_ref, bound, "max_pool2d backward")


@SETTINGS
@given(data=st.data(), seed=seeds)
def test_avg_pool2d(data, seed):
    g = data.draw(pool_geometry("avg_pool2d"), label="geometry")
    rng = np.random.default_rng(seed)
    x = rng.normal(size=g.x_shape).astype(np.float32)
    gy = rng.normal(size=g.y_shape).astype(np.float32)
    init = rng.normal(size=g.x_shape).astype(np.float32)
    area = g.kernel[0] * g.kernel[1]
    y_ref, gx_ref, bound_y, bound_gx = (np.zeros(g.y_shape), np.zeros(g.x_shape), np.zeros(g.y_shape),
                                        np.abs(init).astype(np.float64))
    for oy, ox, ys, xs in _windows(g):
        y_ref[:, oy, ox] = x[:, ys, xs].astype(np.float64).mean(axis=(1, 2))
        bound_y[:, oy, ox] = np.abs(x[:, ys, xs]).mean(axis=(1, 2))
        gx_ref[:, ys, xs] += gy[:, oy, ox][:, None, None, :] / area
        bound_gx[:, ys, xs] += np.abs(gy[:, oy, ox])[:, None, None, :] / area
    record = g.record()
    xb, yb = Buf(x), Buf.painted(g.y_shape)
    assert lib.ftte_avg_pool2d_forward(record, g.n, xb.ptr, yb.ptr) == OK
    yb.check_guards("output")
    assert_sums(yb.value, y_ref, bound_y, "avg_pool2d forward")
    gyb, gib = Buf(gy), Buf(init)
    assert lib.ftte_avg_pool2d_backward(record, g.n, gyb.ptr, gib.ptr) == OK
    gib.check_guards("grad_input")
    assert_sums(gib.value, init + gx_ref, bound_gx, "avg_pool2d backward")


@SETTINGS
@given(n=st.integers(1, 4), h=st.integers(1, 7), w=st.integers(1, 7), c=st.integers(1, 9), seed=seeds)
def test_global_avg_pool(n, h, w, c, seed):
    g = Geom("global_avg_pool", n, (h, w, c), (1, 1, c))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=g.x_shape).astype(np.float32)
    gy = rng.normal(size=g.y_shape).astype(np.float32)
    init = rng.normal(size=g.x_shape).astype(np.float32)
    record = g.record()
    xb, yb = Buf(x), Buf.painted(g.y_shape)
    assert lib.ftte_global_avg_pool_forward(record, n, xb.ptr, yb.ptr) == OK
    yb.check_guards("output")
    assert_sums(yb.value, x.astype(np.float64).mean(axis=(1, 2), keepdims=True),
                np.abs(x).mean(axis=(1, 2), keepdims=True), "global_avg_pool forward")
    gyb, gib = Buf(gy), Buf(init)
    assert lib.ftte_global_avg_pool_backward(record, n, gyb.ptr, gib.ptr) == OK
    gib.check_guards("grad_input")
    share = gy.astype(np.float64) / (h * w)
    assert_sums(gib.value, init + share, np.abs(init) + np.abs(share), "global_avg_pool backward")


@FEW
@given(n=st.integers(1, 4), h=st.integers(1, 6), w=st.integers(1, 6), c=st.integers(1, 5), seed=seeds)
def test_flatten(n, h, w, c, seed):
    g = Geom("flatten", n, (h, w, c), (1, 1, h * w * c))
    rng = np.random.default_rng(seed)
    x = rng.normal(size=g.x_shape).astype(np.float32)
    record = g.record()
    xb, yb = Buf(x), Buf.painted(g.y_shape)
    assert lib.ftte_flatten_forward(record, n, xb.ptr, yb.ptr) == OK
    yb.check_guards("output")
    np.testing.assert_array_equal(yb.value.reshape(n, -1), x.reshape(n, -1))
    assert lib.ftte_flatten_forward(record, n, xb.ptr, xb.ptr) == OK  # aliased: a no-op
    xb.check_unchanged(x, "aliased flatten")
    gy = rng.normal(size=g.y_shape).astype(np.float32)
    init = rng.normal(size=g.x_shape).astype(np.float32)
    gyb, gib = Buf(gy), Buf(init)
    assert lib.ftte_flatten_backward(record, n, gyb.ptr, gib.ptr) == OK
    gib.check_guards("grad_input")
    np.testing.assert_array_equal(gib.value, (init + gy.reshape(g.x_shape)))
    # aliasing grad_input and grad_output would double the gradient: refused, nothing written
    assert lib.ftte_flatten_backward(record, n, gyb.ptr, gyb.ptr) == ERR_ARG
    gyb.check_unchanged(gy, "aliased flatten backward")


# ------------------------------------------------------------------------------------------
# Activations
# ------------------------------------------------------------------------------------------

ACTIVATIONS = {"relu": (lambda v: np.maximum(v, 0), lambda o: o > 0),
               "relu6": (lambda v: np.minimum(np.maximum(v, 0), 6), lambda o: (o > 0) & (o < 6))}


@pytest.mark.parametrize("op", list(ACTIVATIONS))
@SETTINGS
@given(size=st.integers(0, 70), in_place=st.booleans(), seed=seeds)
def test_activation(op, size, in_place, seed):
    forward_ref, passes = ACTIVATIONS[op]
    rng = np.random.default_rng(seed)
    # the boundaries 0 and 6 (a clipped output has no gradient) and values beyond them
    x = np.where(rng.random(size) < 0.3, rng.choice([0.0, 6.0, -0.0], size),
                 rng.normal(0, 5, size)).astype(np.float32)
    gy = rng.normal(size=size).astype(np.float32)
    forward, backward = getattr(lib, f"ftte_{op}_forward"), getattr(lib, f"ftte_{op}_backward")

    xb = Buf(x)
    yb = xb if in_place else Buf.painted(size)
    assert forward(size, xb.ptr, yb.ptr) == OK
    yb.check_guards("output")
    y = yb.value.copy()
    np.testing.assert_array_equal(y, forward_ref(x).astype(np.float32))
    if not in_place:
        xb.check_unchanged(x, "input")

    # backward reads the forward output and writes (does not accumulate)
    ob, gyb = Buf(y), Buf(gy)
    gib = gyb if in_place else Buf(rng.normal(size=size))
    assert backward(size, ob.ptr, gyb.ptr, gib.ptr) == OK
    gib.check_guards("grad_input")
    ob.check_unchanged(y, "forward output")
    np.testing.assert_array_equal(gib.value, np.where(passes(y), gy, np.float32(0)))


# ------------------------------------------------------------------------------------------
# Softmax and cross-entropy
# ------------------------------------------------------------------------------------------

def ref_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def ref_loss(z, labels):
    m = z.max(axis=1)
    lse = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
    return float(np.mean(lse - z[np.arange(len(z)), labels]))


@st.composite
def logits_case(draw):
    n, classes = draw(st.integers(1, 6)), draw(st.integers(1, 12))
    scale = draw(st.sampled_from([1.0, 10.0, 80.0]))  # 80: exp would overflow without the max shift
    rng = np.random.default_rng(draw(seeds))
    z = (rng.normal(size=(n, classes)) * scale).astype(np.float32)
    labels = rng.integers(0, classes, n).astype(np.int32)
    return z, labels


@SETTINGS
@given(case=logits_case(), in_place=st.booleans())
def test_softmax(case, in_place):
    z, _ = case
    n, classes = z.shape
    zb = Buf(z)
    pb = zb if in_place else Buf.painted(z.shape)
    assert lib.ftte_softmax_forward(n, classes, zb.ptr, pb.ptr) == OK
    pb.check_guards("probs")
    p = pb.value
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p, ref_softmax(z.astype(np.float64)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


@SETTINGS
@given(case=logits_case(), in_place=st.booleans(), want_loss=st.booleans())
def test_cross_entropy(case, in_place, want_loss):
    z, labels = case
    n, classes = z.shape
    z64 = z.astype(np.float64)
    expected_loss = ref_loss(z64, labels)
    lb = ffi.from_buffer("int32_t[]", labels)

    zb, loss = Buf(z), ffi.new("float *", np.nan)
    assert lib.ftte_cross_entropy_forward(n, classes, zb.ptr, lb, loss) == OK
    zb.check_unchanged(z, "logits")
    # relative to the loss, and to the logits' scale when the loss is ~0 (cancellation)
    atol = 2e-6 * max(1.0, float(np.abs(z64).max()))
    np.testing.assert_allclose(loss[0], expected_loss, rtol=1e-5, atol=atol)

    zb = Buf(z)
    gb = zb if in_place else Buf.painted(z.shape)
    loss = ffi.new("float *", np.nan)
    assert lib.ftte_cross_entropy_backward(n, classes, zb.ptr, lb, gb.ptr, loss if want_loss else ffi.NULL) == OK
    gb.check_guards("grad_logits")
    grad = ref_softmax(z64)
    grad[np.arange(n), labels] -= 1.0
    np.testing.assert_allclose(gb.value, grad / n, rtol=1e-5, atol=1e-7)
    if want_loss:
        np.testing.assert_allclose(loss[0], expected_loss, rtol=1e-5, atol=atol)
    else:
        assert np.isnan(loss[0])


@FEW
@given(case=logits_case(), bad=st.sampled_from([-1, 0, 1, 1000]), where=st.integers(0, 5))
def test_cross_entropy_rejects_labels_outside_the_classes(case, bad, where):
    z, labels = case
    n, classes = z.shape
    labels = labels.copy()
    labels[where % n] = -1 if bad == -1 else classes + bad
    lb = ffi.from_buffer("int32_t[]", labels)
    zb, gb, loss = Buf(z), Buf.painted(z.shape), ffi.new("float *", 123.0)
    assert lib.ftte_cross_entropy_forward(n, classes, zb.ptr, lb, loss) == ERR_LABEL
    assert loss[0] == 123.0
    assert lib.ftte_cross_entropy_backward(n, classes, zb.ptr, lb, gb.ptr, loss) == ERR_LABEL
    assert loss[0] == 123.0
    gb.check_unchanged(np.full(z.shape, PAINT), "grad_logits")
    zb.check_unchanged(z, "logits")


# ------------------------------------------------------------------------------------------
# SGD
# ------------------------------------------------------------------------------------------

@SETTINGS
@given(count=st.integers(0, 50), lr=st.floats(0.0, 1.0, width=32),
       momentum=st.floats(0.0, float(np.float32(0.99)), width=32), use_velocity=st.booleans(), seed=seeds)
def test_sgd_update(count, lr, momentum, use_velocity, seed):
    """Keras' SGD step in float32 arithmetic. The extension is built with -ffp-contract=off,
    so every product and difference rounds separately, exactly as numpy's float32 does."""
    rng = np.random.default_rng(seed)
    g = rng.normal(size=count).astype(np.float32)
    p = rng.normal(size=count).astype(np.float32)
    v = rng.normal(size=count).astype(np.float32)
    lr32, m32 = np.float32(lr), np.float32(momentum)
    gb, pb, vb = Buf(g), Buf(p), Buf(v)
    status = lib.ftte_sgd_update(count, lr, momentum, gb.ptr, vb.ptr if use_velocity else ffi.NULL, pb.ptr)
    assert status == OK
    for buf in (gb, pb, vb):
        buf.check_guards("sgd")
    gb.check_unchanged(g, "grad")
    if use_velocity:
        v_new = m32 * v - lr32 * g
        np.testing.assert_array_equal(vb.value, v_new)
        np.testing.assert_array_equal(pb.value, p + v_new)
    else:
        vb.check_unchanged(v, "velocity")
        np.testing.assert_array_equal(pb.value, p - lr32 * g)


# ------------------------------------------------------------------------------------------
# Invalid calls: an error status and nothing written
# ------------------------------------------------------------------------------------------

def _elementwise_calls(b, labels):
    """Invalid calls of the kernels without a layer record: {kernel: {variant: (call, status)}}."""
    p = [x.ptr for x in b]
    loss = ffi.new("float *", 5.0)
    return {
        "relu_forward": {"negative size": (lambda: lib.ftte_relu_forward(-1, p[0], p[1]), ERR_ARG),
                         "NULL input": (lambda: lib.ftte_relu_forward(4, ffi.NULL, p[1]), ERR_ARG)},
        "relu_backward": {"negative size": (lambda: lib.ftte_relu_backward(-2, p[0], p[1], p[2]), ERR_ARG),
                          "NULL output": (lambda: lib.ftte_relu_backward(4, ffi.NULL, p[1], p[2]), ERR_ARG)},
        "relu6_forward": {"negative size": (lambda: lib.ftte_relu6_forward(-1, p[0], p[1]), ERR_ARG),
                          "NULL output": (lambda: lib.ftte_relu6_forward(4, p[0], ffi.NULL), ERR_ARG)},
        "relu6_backward": {"NULL grad_output": (lambda: lib.ftte_relu6_backward(4, p[0], ffi.NULL, p[2]), ERR_ARG)},
        "softmax": {"zero batch": (lambda: lib.ftte_softmax_forward(0, 3, p[0], p[1]), ERR_ARG),
                    "zero classes": (lambda: lib.ftte_softmax_forward(2, 0, p[0], p[1]), ERR_SHAPE)},
        "cross_entropy_forward": {
            "zero batch": (lambda: lib.ftte_cross_entropy_forward(0, 3, p[0], labels, loss), ERR_ARG),
            "zero classes": (lambda: lib.ftte_cross_entropy_forward(2, 0, p[0], labels, loss), ERR_SHAPE),
            "NULL labels": (lambda: lib.ftte_cross_entropy_forward(2, 3, p[0], ffi.NULL, loss), ERR_ARG)},
        "cross_entropy_backward": {
            "negative batch": (lambda: lib.ftte_cross_entropy_backward(-1, 3, p[0], labels, p[1], loss), ERR_ARG),
            "zero classes": (lambda: lib.ftte_cross_entropy_backward(2, 0, p[0], labels, p[1], loss), ERR_SHAPE),
            "NULL grad": (lambda: lib.ftte_cross_entropy_backward(2, 3, p[0], labels, ffi.NULL, loss), ERR_ARG)},
        "bias_backward": {"zero rows": (lambda: lib.ftte_bias_backward(0, 3, p[0], p[1]), ERR_ARG),
                          "zero channels": (lambda: lib.ftte_bias_backward(2, 0, p[0], p[1]), ERR_SHAPE),
                          "NULL grad_bias": (lambda: lib.ftte_bias_backward(2, 3, p[0], ffi.NULL), ERR_ARG)},
        "sgd_update": {"negative count": (lambda: lib.ftte_sgd_update(-1, 0.1, 0.9, p[0], p[1], p[2]), ERR_ARG),
                       "NULL param": (lambda: lib.ftte_sgd_update(4, 0.1, 0.9, p[0], p[1], ffi.NULL), ERR_ARG),
                       "NULL grad": (lambda: lib.ftte_sgd_update(4, 0.1, 0.9, ffi.NULL, p[1], p[2]), ERR_ARG)},
    }, loss


def test_invalid_arguments_of_kernels_without_a_layer():
    """Negative sizes, an empty batch, no classes, NULL pointers: the documented status, and
    no buffer (nor the loss) written."""
    rng = np.random.default_rng(0)
    b = [Buf(rng.normal(size=16)) for _ in range(3)]
    before = [x.value.copy() for x in b]
    labels = ffi.new("int32_t[]", [0, 1])
    calls, loss = _elementwise_calls(b, labels)
    for kernel_name, variants in calls.items():
        for what, (call, expected) in variants.items():
            assert call() == expected, f"{kernel_name}, {what}"
            for x, old in zip(b, before):
                x.check_unchanged(old, f"{kernel_name}, {what}")
            assert loss[0] == 5.0, f"{kernel_name}, {what}: loss written"


def _size(shape) -> int:
    return int(np.prod([max(d, 1) for d in shape]))


class Call:
    """Runs every kernel of an operator on painted buffers sized (generously) for the VALID
    geometry `base`, each kernel on freshly painted buffers; a kernel that returns an error
    must have left every buffer, guards included, as it was."""

    def __init__(self, base: Geom):
        big = 4 * max(_size(base.x_shape), _size(base.y_shape),
                      base.out[2] * max(row_length(base), 1) if base.op in WEIGHTED else 1)
        self.buffers = [Buf(np.arange(big, dtype=np.float32) % 7 - 3) for _ in range(4)]
        self.scratch = Buf(np.zeros(max(big, 4 * 4 * 16 * 9)))  # above any valid conv scratch here
        self.before = [b.value.copy() for b in self.buffers + [self.scratch]]

    def _one(self, what: str, call) -> int:
        for b, before in zip(self.buffers + [self.scratch], self.before):
            b.value[...] = before
        status = call()
        if status != OK:
            for b, before in zip(self.buffers + [self.scratch], self.before):
                b.check_unchanged(before, f"{what} returned {status}")
        return status

    def run(self, g: Geom, n: int | None = None, slice_=None, null: int | None = None,
            kernels_of: str | None = None) -> dict[str, int]:
        """Status of every kernel of `kernels_of` (default g.op) on g's record. `null`: the
        pointer argument (0-3 in header order, 4 the scratch) passed as NULL."""
        record, n = g.record(), g.n if n is None else n
        slice_ = slice_ or (0, max(g.out[2], 1))
        op = kernels_of or g.op

        def p(i):
            return ffi.NULL if i == null else self.buffers[i].ptr

        scratch = None if null == 4 else self.scratch
        calls = {}
        if op in WEIGHTED:
            calls["forward"] = lambda: call_weighted(op, "forward", record, n, slice_, p(0), p(1), p(2), p(3),
                                                     scratch=scratch)
            for direction in ("backward_input", "backward_weight"):
                calls[direction] = (lambda d: lambda: call_weighted(op, d, record, n, slice_, p(0), p(1), p(2),
                                                                    scratch=scratch))(direction)
        elif op == "max_pool2d":
            calls["forward"] = lambda: lib.ftte_max_pool2d_forward(record, n, p(0), p(1))
            calls["backward"] = lambda: lib.ftte_max_pool2d_backward(record, n, p(0), p(1), p(2))
        else:
            calls["forward"] = lambda: getattr(lib, f"ftte_{op}_forward")(record, n, p(0), p(1))
            calls["backward"] = lambda: getattr(lib, f"ftte_{op}_backward")(record, n, p(0), p(1))
        return {direction: self._one(f"{op} {direction}", call) for direction, call in calls.items()}


GEOMETRY_OPS = WEIGHTED + ("max_pool2d", "avg_pool2d", "global_avg_pool", "flatten")


@st.composite
def any_geometry(draw, op):
    if op in WEIGHTED:
        return draw(weighted_geometry(op))
    if op in ("max_pool2d", "avg_pool2d"):
        return draw(pool_geometry(op))
    n, h, w, c = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    return Geom(op, n, (h, w, c), (1, 1, c if op == "global_avg_pool" else h * w * c))


def _mutations(g: Geom):
    """Ways to break g's geometry, each of which ftte_layer_validate must refuse."""
    (h, w, c), (oh, ow, oc) = g.in_, g.out
    (kh, kw), (sh, sw), (pt, pl) = g.kernel, g.stride, g.pad
    m = {"zero_in_channels": replace(g, in_=(h, w, 0)), "negative_width": replace(g, in_=(h, -w, c)),
         "zero_out_height": replace(g, out=(0, ow, oc))}
    if g.op in ("conv2d", "depthwise_conv2d", "conv1d", "max_pool2d", "avg_pool2d"):
        pooled = g.op.endswith("pool2d")
        # one output column more than the last window that still overlaps the input (pools:
        # that still fits inside it)
        max_ow = (w - kw) // sw + 1 if pooled else (w + pl - 1) // sw + 1
        m |= {"output_too_wide": replace(g, out=(oh, max_ow + 1, oc)),
              "pad_not_below_kernel": replace(g, pad=(pt, kw)),
              "negative_pad": replace(g, pad=(pt, -1)),
              "zero_stride": replace(g, stride=(sh, 0)),
              "zero_kernel": replace(g, kernel=(kh, 0))}
        if g.op != "conv1d":
            max_oh = (h - kh) // sh + 1 if pooled else (h + pt - 1) // sh + 1
            m["output_too_tall"] = replace(g, out=(max_oh + 1, ow, oc))
        if pooled and kw >= 2:  # a padding that a convolution of this shape would accept
            m["pooling_with_padding"] = replace(g, pad=(0, 1))
        elif pooled and kh >= 2:
            m["pooling_with_padding"] = replace(g, pad=(1, 0))
    if g.op in ("depthwise_conv2d", "max_pool2d", "avg_pool2d", "global_avg_pool"):
        m["channels_differ"] = replace(g, out=(oh, ow, c + 1))
    if g.op == "conv1d":
        m |= {"conv1d_height_2": replace(g, in_=(2, w, c), out=(2, ow, oc)),
              "conv1d_kernel_height_2": replace(g, in_=(2, w, c), kernel=(2, kw)),
              "conv1d_pad_top": replace(g, pad=(1, pl))}
    if g.op == "dense":
        m |= {"dense_not_flat": replace(g, in_=(2, 1, c)), "dense_output_not_flat": replace(g, out=(1, 2, oc))}
    if g.op == "pointwise_conv2d":
        m["pointwise_resizes"] = replace(g, out=(oh + 1, ow, oc))
    if g.op == "global_avg_pool":
        m["global_pool_not_flat"] = replace(g, out=(2, 1, oc))
    if g.op == "flatten":
        m["flatten_wrong_size"] = replace(g, out=(1, 1, oc + 1))
    return m


@pytest.mark.parametrize("op", GEOMETRY_OPS)
@FEW
@given(data=st.data())
def test_invalid_geometry_is_refused_without_writing(op, data):
    g = data.draw(any_geometry(op), label="geometry")
    mutations = _mutations(g)
    name = data.draw(st.sampled_from(sorted(mutations)), label="mutation")
    bad = mutations[name]
    assert lib.ftte_layer_validate(g.record()) == OK
    assert lib.ftte_layer_validate(bad.record()) == ERR_SHAPE, name
    statuses = Call(g).run(bad, slice_=(0, max(min(bad.out[2], g.out[2]), 1)))
    assert statuses == {k: ERR_SHAPE for k in statuses}, f"{name}: {statuses}"
    if op in SCRATCH:
        for direction in ("forward", "backward_input", "backward_weight"):
            assert kernel(op, f"{direction}_get_buffer_size")(bad.record(), g.n) == 0


@pytest.mark.parametrize("op", GEOMETRY_OPS)
@FEW
@given(data=st.data())
def test_invalid_arguments_are_refused_without_writing(op, data):
    """Batch size below 1, a slice outside [0, out.c), or a NULL pointer: FTTE_ERR_ARG."""
    g = data.draw(any_geometry(op), label="geometry")
    kinds = ["zero_batch", "negative_batch", "null_pointer"]
    if op in WEIGHTED:
        kinds += ["slice_negative_begin", "slice_empty", "slice_past_the_end"]
    kind = data.draw(st.sampled_from(kinds), label="kind")
    call = Call(g)
    oc = g.out[2]
    if kind == "zero_batch":
        statuses = call.run(g, n=0)
    elif kind == "negative_batch":
        statuses = call.run(g, n=-2)
    elif kind == "slice_negative_begin":
        statuses = call.run(g, slice_=(-1, 1))
    elif kind == "slice_empty":
        statuses = call.run(g, slice_=(data.draw(st.integers(0, oc - 1)), 0))
    elif kind == "slice_past_the_end":
        begin = data.draw(st.integers(0, oc - 1))
        statuses = call.run(g, slice_=(begin, oc - begin + data.draw(st.integers(1, 3))))
    else:
        statuses = {}
        for null in range(5 if op in SCRATCH else 4):
            for direction, status in call.run(g, null=null).items():
                if status != OK:
                    statuses[(direction, null)] = status
        # the pointers each kernel reads, all checked (the forward's bias, argument 2, may be NULL)
        if op in WEIGHTED:
            required = {("forward", 0), ("forward", 1), ("forward", 3)} | {
                (d, i) for d in ("backward_input", "backward_weight") for i in (0, 1, 2)}
            if op in SCRATCH:
                required |= {(d, 4) for d in ("forward", "backward_input", "backward_weight")}
        else:
            required = {("forward", 0), ("forward", 1), ("backward", 0), ("backward", 1)}
            if op == "max_pool2d":
                required.add(("backward", 2))
        assert set(statuses) == required, statuses
    assert set(statuses.values()) == {ERR_ARG}, f"{kind}: {statuses}"


# ------------------------------------------------------------------------------------------
# A valid layer of another operator: FTTE_ERR_UNSUPPORTED (ftte_kernels.h, common contract)
# ------------------------------------------------------------------------------------------

OTHER = {  # a valid layer of some other operator for each kernel family
    "dense": Geom("pointwise_conv2d", 2, (1, 1, 3), (1, 1, 4), (1, 1), (1, 1), (0, 0)),
    "pointwise_conv2d": Geom("dense", 2, (1, 1, 3), (1, 1, 4)),
    "conv2d": Geom("conv1d", 2, (1, 6, 3), (1, 4, 4), (1, 3), (1, 1), (0, 0)),
    "conv1d": Geom("conv2d", 2, (1, 6, 3), (1, 4, 4), (1, 3), (1, 1), (0, 0)),
    "depthwise_conv2d": Geom("conv2d", 2, (3, 3, 4), (3, 3, 4), (3, 3), (1, 1), (1, 1)),
    "max_pool2d": Geom("avg_pool2d", 2, (4, 4, 2), (2, 2, 2), (2, 2), (2, 2), (0, 0)),
    "avg_pool2d": Geom("max_pool2d", 2, (4, 4, 2), (2, 2, 2), (2, 2), (2, 2), (0, 0)),
    "global_avg_pool": Geom("flatten", 2, (1, 1, 4), (1, 1, 4)),
    "flatten": Geom("global_avg_pool", 2, (1, 1, 4), (1, 1, 4)),
}


@pytest.mark.parametrize("op", GEOMETRY_OPS)
def test_a_valid_layer_of_another_operator_is_unsupported(op):
    other = OTHER[op]
    assert lib.ftte_layer_validate(other.record()) == OK
    statuses = Call(other).run(other, slice_=(0, 1), kernels_of=op)
    assert statuses == {k: ERR_UNSUPPORTED for k in statuses}, f"{op} kernels on a {other.op} layer: {statuses}"
