/*
 * Depthwise conv2d with a 3x3 kernel and stride 1: one channel at a time, its 9 weights in
 * registers, two output rows at a time sliding along x.
 *
 * The general depthwise code goes tap by tap and adds each tap's products to memory: a load,
 * a multiply-accumulate and a store per MAC, 4 to 5 instructions. Here the 3x3 windows of two
 * output rows (4 input rows x 3 columns) stay in registers and move one column per output
 * column: per step 4 loads, 18 VFMA, 2 loads or moves of the initial values, 2 stores and a
 * pointer step per row (a channel's pixels are in.c floats apart), about 1.8 instructions per
 * MAC. The 3 columns rotate through three sets of registers, so the loop body is unrolled 3
 * times and entered at the step that makes it end on its last one (Duff's device): no moves,
 * whatever the row length.
 *
 * The forward and the backward pass to the input are the same correlation
 *     out[y][x] = init + sum over ky, kx of t[ky][kx] * in[y - T + ky][x - P + kx]
 * (in zero outside its rows and columns): the forward with init the bias, t the weights and
 * T, P the padding; the backward with init the grad_input it accumulates into, in the
 * grad_output, t the weights turned by 180 degrees and T, P = 2 - padding. The weight
 * gradient slides the same windows and keeps its 9 sums in registers instead.
 *
 * A row pair whose 4 input rows are all inside the input (all but the first and last, under
 * the padding) walks them with one column step; the others (out of line) give a row of
 * zeros a step of 0. One step register instead of four is what keeps the loop's pointers,
 * 12 of them otherwise, within the M4's 14 registers.
 */
#include "depthwise3x3.h"

#include <stddef.h>

#include "ftte_mac.h"

int ftte_dw3x3_applies(const ftte_layer *l) {
    return l->kernel_h == 3 && l->kernel_w == 3 && l->stride_h == 1 && l->stride_w == 1;
}

/* One channel of an NHWC batch: its float of pixel (b, y, x) is at ((b * h + y) * w + x) * c. */
typedef struct {
    const float *data;
    int32_t h, w, c;
} plane;

typedef struct {
    float w[9]; /* [ky][kx] */
} taps;

/* One column of the 4 input rows of a row pair: rows 0-2 are output row 0's window, 1-3 output
 * row 1's. */
typedef struct {
    float r[4];
} column;

static const column zeros = {{0.0f, 0.0f, 0.0f, 0.0f}};

/* How a row pair sweeps along x (the same for every pair of a layer): output columns
 * [0, main) each take a new input column x + 2 - pad, the next `tail` ones (at most 2 still
 * see the input) a column of zeros. Before output column 0 the window holds input columns
 * -pad and 1 - pad (first_in, second_in: whether inside the input). entry = main % 3. */
typedef struct {
    int32_t main, entry, tail, first_in, second_in;
} sweep;

static sweep sweep_of(int32_t iw, int32_t ow, int32_t pad) {
    sweep s;
    s.main = iw + pad - 2;
    if (s.main > ow) s.main = ow;
    if (s.main < 0) s.main = 0;
    s.entry = s.main % 3;
    s.tail = ow - s.main < 2 ? ow - s.main : 2;
    s.first_in = pad == 0;
    s.second_in = pad <= 1 && 1 - pad < iw;
    return s;
}

/* The 4 input rows of a row pair at input column 2 - pad (the first new one), and their
 * steps between columns. `uniform` (a constant): all rows inside, s0 is every row's step. */
typedef struct {
    const float *p0, *p1, *p2, *p3;
    ptrdiff_t s0, s1, s2, s3;
} walk;

/* What a row under the padding reads, at every column (step 0). */
static const float zero = 0.0f;

/* Input row y of the sample at `sample` (the channel's float in column 0), from column x. */
FTTE_INLINE void row_from(const plane *in, const float *sample, int32_t y, int32_t x,
                          const float **p, ptrdiff_t *step) {
    const int inside = y >= 0 && y < in->h;
    *p = inside ? sample + ((ptrdiff_t)y * in->w + x) * in->c : &zero;
    *step = inside ? in->c : 0;
}

/* Rows y0 .. y0 + 3 from column x, any of them under the padding; rows 3 (a single last
 * output row): the fourth repeats the third. */
static walk edge_rows(const plane *in, const float *sample, int32_t y0, int32_t x,
                      int32_t rows) {
    walk k;
    row_from(in, sample, y0, x, &k.p0, &k.s0);
    row_from(in, sample, y0 + 1, x, &k.p1, &k.s1);
    row_from(in, sample, y0 + 2, x, &k.p2, &k.s2);
    if (rows > 3) row_from(in, sample, y0 + 3, x, &k.p3, &k.s3);
    else k.p3 = k.p2, k.s3 = k.s2;
    return k;
}

/* The column `back` (1 or 2) columns before the walk's. */
FTTE_INLINE column column_before(const walk *k, int32_t back, const int uniform) {
    const ptrdiff_t s1 = uniform ? k->s0 : k->s1, s2 = uniform ? k->s0 : k->s2;
    const ptrdiff_t s3 = uniform ? k->s0 : k->s3;
    const column c = {{k->p0[-back * k->s0], k->p1[-back * s1], k->p2[-back * s2],
                       k->p3[-back * s3]}};
    return c;
}

/* The window before output column 0: input columns -pad (x) and 1 - pad (y). */
FTTE_INLINE void first_window(const walk *k, sweep sw, column *x, column *y, const int uniform) {
    *x = sw.first_in ? column_before(k, 2, uniform) : zeros;
    *y = sw.second_in ? column_before(k, 1, uniform) : zeros;
}

/* The walk's next column, stepping past it. */
FTTE_INLINE column next_column(walk *k, const int uniform) {
    const column c = {{*k->p0, *k->p1, *k->p2, *k->p3}};
    k->p0 += k->s0;
    k->p1 += uniform ? k->s0 : k->s1;
    k->p2 += uniform ? k->s0 : k->s2;
    k->p3 += uniform ? k->s0 : k->s3;
    return c;
}

/* ---------------------------------------------------------------------------------------- */
/* Forward and backward to the input                                                         */
/* ---------------------------------------------------------------------------------------- */

/* Where a row pair's outputs go: o0, o1, one column per o_step floats. For a single output
 * row o1 is o0, and row 1 (recomputed from rows 1, 2, 2) is stored first so that row 0's
 * value is left; both are read before either is stored. */
typedef struct {
    float *o0, *o1;
    ptrdiff_t o_step;
} outputs;

/* acc + the window of input rows `row` .. row + 2 in columns a, b, c, in tap order. */
FTTE_INLINE float window_dot(taps t, column a, column b, column c, int32_t row, float acc) {
    FTTE_MAC(acc, t.w[0], a.r[row]); FTTE_MAC(acc, t.w[1], b.r[row]);
    FTTE_MAC(acc, t.w[2], c.r[row]); FTTE_MAC(acc, t.w[3], a.r[row + 1]);
    FTTE_MAC(acc, t.w[4], b.r[row + 1]); FTTE_MAC(acc, t.w[5], c.r[row + 1]);
    FTTE_MAC(acc, t.w[6], a.r[row + 2]); FTTE_MAC(acc, t.w[7], b.r[row + 2]);
    FTTE_MAC(acc, t.w[8], c.r[row + 2]);
    return acc;
}

/* The outputs of one column, whose windows are columns a, b, c; then the next column,
 * `step` floats on (o->o_step, or the walk's own step when uniform: depthwise input and
 * output have the same channel count, and one register less keeps the loop unspilled). */
FTTE_INLINE void put(outputs *o, ptrdiff_t step, taps t, float bias, column a, column b,
                     column c, const int accumulate) {
    const float v0 = window_dot(t, a, b, c, 0, accumulate ? *o->o0 : bias);
    const float v1 = window_dot(t, a, b, c, 1, accumulate ? *o->o1 : bias);
    *o->o1 = v1;
    *o->o0 = v0;
    o->o0 += step, o->o1 += step;
}

/* A row pair's output columns, walking k as sw says. */
FTTE_INLINE void correlate_pair(walk k, sweep sw, outputs o, taps t, float bias,
                                const int accumulate, const int uniform) {
    /* The window before output column 0 goes where the unrolled loop below is entered, so
     * that it always leaves through its last step, with the last two columns in a, b. */
    column a, b, c;
    if (sw.entry == 0) first_window(&k, sw, &a, &b, uniform);
    else if (sw.entry == 2) first_window(&k, sw, &b, &c, uniform);
    else first_window(&k, sw, &c, &a, uniform);
    const ptrdiff_t step = uniform ? k.s0 : o.o_step;
    int32_t left = sw.main;
    switch (sw.entry) {
    case 0:
        while (left > 0) {
            c = next_column(&k, uniform);
            put(&o, step, t, bias, a, b, c, accumulate);
            /* fall through */
        case 2:
            a = next_column(&k, uniform);
            put(&o, step, t, bias, b, c, a, accumulate);
            /* fall through */
        case 1:
            b = next_column(&k, uniform);
            put(&o, step, t, bias, c, a, b, accumulate);
            left -= 3;
        }
    }
    /* Past the input's last column: the window keeps a and b, then b alone. */
    if (sw.tail > 0) put(&o, step, t, bias, a, b, zeros, accumulate);
    if (sw.tail > 1) put(&o, step, t, bias, b, zeros, zeros, accumulate);
}

/* What every row pair of a channel shares: the taps and bias, the sweep, the column step
 * (the same for input and output: a depthwise layer keeps its channel count) and the row
 * steps of input and output. */
typedef struct {
    taps t;
    float bias;
    sweep sw;
    ptrdiff_t c, in_row, out_row;
} job;

/* A row pair whose 4 input rows, from p (at column 2 - pad) on, are all inside the input;
 * outputs from o. */
FTTE_INLINE void inner_pair(const float *p, float *o, const job *j, const int accumulate) {
    const ptrdiff_t row = j->in_row;
    const walk k = {p, p + row, p + 2 * row, p + 3 * row, j->c, j->c, j->c, j->c};
    const outputs out = {o, o + j->out_row, j->c};
    correlate_pair(k, j->sw, out, j->t, j->bias, accumulate, 1);
}

/* The row pairs clear of the padding of one sample, from p and o until o_end. Out of line
 * and with little loop state (three pointers): the unrolled loop keeps its 8 pointers and
 * counter in registers (inlined into the loop over samples and edges, GCC spills one). */
FTTE_NOINLINE static void forward_inner(const float *p, float *o, float *o_end, const job *j) {
    for (; o != o_end; p += 2 * j->in_row, o += 2 * j->out_row) inner_pair(p, o, j, 0);
}

FTTE_NOINLINE static void backward_inner(const float *p, float *o, float *o_end, const job *j) {
    for (; o != o_end; p += 2 * j->in_row, o += 2 * j->out_row) inner_pair(p, o, j, 1);
}

/* A row pair with rows under the padding (or a single last row), out of line. */
FTTE_NOINLINE static void forward_edge(walk k, outputs o, const job *j) {
    correlate_pair(k, j->sw, o, j->t, j->bias, 0, 0);
}

FTTE_NOINLINE static void backward_edge(walk k, outputs o, const job *j) {
    correlate_pair(k, j->sw, o, j->t, 0.0f, 1, 0);
}

/* The row pairs y = *lo, *lo + 2, .. < *hi whose 4 input rows (y - top .. y - top + 3) are
 * all inside the input; pairs start at even rows. */
static void inner_pairs(int32_t out_h, int32_t in_h, int32_t top, int32_t *lo, int32_t *hi) {
    *lo = top + top % 2;
    int32_t last = in_h - 4 + top; /* the last such y */
    if (last > out_h - 2) last = out_h - 2;
    *hi = last >= *lo ? *lo + 2 * ((last - *lo) / 2 + 1) : *lo;
}

/* One channel: out (h rows of the output) = the correlation of in, for every sample; top,
 * pad: T and P. */
static void correlate(const plane *in, float *out, int32_t h, int32_t n, int32_t top,
                      int32_t pad, const job *j, const int accumulate) {
    const ptrdiff_t sample_in = (ptrdiff_t)in->h * j->in_row;
    int32_t lo, hi;
    inner_pairs(h, in->h, top, &lo, &hi);
    for (int32_t b = 0; b < n; b++) {
        const float *sample = in->data + b * sample_in;
        float *o_sample = out + (ptrdiff_t)b * h * j->out_row;
        if (hi > lo) { /* the pairs clear of the padding, in one call */
            const float *p = sample + ((ptrdiff_t)(lo - top) * in->w + 2 - pad) * j->c;
            float *o = o_sample + lo * j->out_row, *o_end = o + (hi - lo) * j->out_row;
            if (accumulate) backward_inner(p, o, o_end, j);
            else forward_inner(p, o, o_end, j);
        }
        /* The others: rows under the padding, and a single last row. */
        for (int32_t y = 0; y < h; y += 2) {
            if (y == lo && hi > lo) y = hi;
            if (y >= h) break;
            const int32_t rows = y + 1 < h ? 4 : 3;
            float *o0 = o_sample + y * j->out_row;
            const outputs oo = {o0, rows == 4 ? o0 + j->out_row : o0, j->c};
            const walk k = edge_rows(in, sample, y - top, 2 - pad, rows);
            if (accumulate && !k.s0 && !k.s1 && !k.s2 && !k.s3) continue; /* no window here */
            if (accumulate) backward_edge(k, oo, j);
            else forward_edge(k, oo, j);
        }
    }
}

void ftte_dw3x3_forward(const ftte_layer *l, int32_t n, ftte_slice slice, const float *input,
                        const float *weights, const float *bias, float *output) {
    for (int32_t i = 0; i < slice.count; i++) {
        const int32_t ch = slice.begin + i;
        const plane in = {input + ch, l->in.h, l->in.w, l->in.c};
        const float *w = weights + i * 9;
        const job j = {{{w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8]}},
                       bias != NULL ? bias[i] : 0.0f,
                       sweep_of(l->in.w, l->out.w, l->pad_left),
                       l->in.c,
                       (ptrdiff_t)l->in.w * l->in.c,
                       (ptrdiff_t)l->out.w * l->out.c};
        correlate(&in, output + ch, l->out.h, n, l->pad_top, l->pad_left, &j, 0);
    }
}

void ftte_dw3x3_backward_input(const ftte_layer *l, int32_t n, ftte_slice slice,
                               const float *grad_output, const float *weights,
                               float *grad_input) {
    /* The correlation of grad_output with the weights turned by 180 degrees (tap (ky, kx) is
     * (2 - ky, 2 - kx)), padding 2 - pad. */
    const int32_t top = 2 - l->pad_top, pad = 2 - l->pad_left;
    for (int32_t i = 0; i < slice.count; i++) {
        const int32_t ch = slice.begin + i;
        const plane in = {grad_output + ch, l->out.h, l->out.w, l->out.c};
        const float *w = weights + i * 9;
        const job j = {{{w[8], w[7], w[6], w[5], w[4], w[3], w[2], w[1], w[0]}},
                       0.0f,
                       sweep_of(l->out.w, l->in.w, pad),
                       l->out.c,
                       (ptrdiff_t)l->out.w * l->out.c,
                       (ptrdiff_t)l->in.w * l->in.c};
        correlate(&in, grad_input + ch, l->in.h, n, top, pad, &j, 1);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Backward to the weights                                                                   */
/* ---------------------------------------------------------------------------------------- */

typedef struct {
    float v[9]; /* [ky][kx] */
} sums;

/* The gradients of a row pair: g0, g1, one column per g_step floats. */
typedef struct {
    const float *g0, *g1;
    ptrdiff_t g_step;
} gradients;

/* s[ky][kx] += g * the window of input rows `row` .. row + 2 in columns a, b, c. */
FTTE_INLINE sums add_window(sums s, float g, column a, column b, column c, int32_t row) {
    FTTE_MAC(s.v[0], g, a.r[row]); FTTE_MAC(s.v[1], g, b.r[row]);
    FTTE_MAC(s.v[2], g, c.r[row]); FTTE_MAC(s.v[3], g, a.r[row + 1]);
    FTTE_MAC(s.v[4], g, b.r[row + 1]); FTTE_MAC(s.v[5], g, c.r[row + 1]);
    FTTE_MAC(s.v[6], g, a.r[row + 2]); FTTE_MAC(s.v[7], g, b.r[row + 2]);
    FTTE_MAC(s.v[8], g, c.r[row + 2]);
    return s;
}

/* One output column (of `rows` 1 or 2): its gradients times their windows; then the next,
 * `step` floats on (as in put). */
FTTE_INLINE sums take(sums s, gradients *g, ptrdiff_t step, column a, column b, column c,
                      const int32_t rows) {
    s = add_window(s, *g->g0, a, b, c, 0);
    g->g0 += step;
    if (rows > 1) {
        s = add_window(s, *g->g1, a, b, c, 1);
        g->g1 += step;
    }
    return s;
}

/* s += a row pair's (or single row's) products over its output columns. */
FTTE_INLINE sums weight_pair(sums s, walk k, sweep sw, gradients g, const int32_t rows,
                             const int uniform) {
    column a, b, c;
    if (sw.entry == 0) first_window(&k, sw, &a, &b, uniform);
    else if (sw.entry == 2) first_window(&k, sw, &b, &c, uniform);
    else first_window(&k, sw, &c, &a, uniform);
    const ptrdiff_t step = uniform ? k.s0 : g.g_step;
    int32_t left = sw.main;
    switch (sw.entry) { /* as in correlate_pair */
    case 0:
        while (left > 0) {
            c = next_column(&k, uniform);
            s = take(s, &g, step, a, b, c, rows);
            /* fall through */
        case 2:
            a = next_column(&k, uniform);
            s = take(s, &g, step, b, c, a, rows);
            /* fall through */
        case 1:
            b = next_column(&k, uniform);
            s = take(s, &g, step, c, a, b, rows);
            left -= 3;
        }
    }
    if (sw.tail > 0) s = take(s, &g, step, a, b, zeros, rows);
    if (sw.tail > 1) s = take(s, &g, step, b, zeros, zeros, rows);
    return s;
}

/* The row pairs clear of the padding of one sample: input rows from p (at column 2 - pad),
 * gradients from g until g_end (out of line, as forward_inner). */
FTTE_NOINLINE static sums weight_inner(sums s, const float *p, const float *g,
                                       const float *g_end, sweep sw, ptrdiff_t c,
                                       ptrdiff_t in_row, ptrdiff_t g_row) {
    for (; g != g_end; p += 2 * in_row, g += 2 * g_row) {
        const walk k = {p, p + in_row, p + 2 * in_row, p + 3 * in_row, c, c, c, c};
        const gradients gg = {g, g + g_row, c};
        s = weight_pair(s, k, sw, gg, 2, 1);
    }
    return s;
}

/* Row pairs with rows under the padding, and single last rows, out of line. */
FTTE_NOINLINE static sums weight_edge(sums s, walk k, sweep sw, gradients g) {
    return weight_pair(s, k, sw, g, 2, 0);
}

FTTE_NOINLINE static sums weight_single(sums s, walk k, sweep sw, gradients g) {
    return weight_pair(s, k, sw, g, 1, 0);
}

/* One channel's 9 weight gradients, gw[ky][kx] += the sums over every row pair of every
 * sample, kept in registers throughout. */
FTTE_NOINLINE static void weight_channel(const plane *in, const plane *gy, int32_t n,
                                         int32_t top, int32_t pad, float *gw) {
    const sweep sw = sweep_of(in->w, gy->w, pad);
    const ptrdiff_t g_row = (ptrdiff_t)gy->w * gy->c;
    const ptrdiff_t sample_size = (ptrdiff_t)in->h * in->w * in->c;
    const ptrdiff_t in_row = (ptrdiff_t)in->w * in->c;
    int32_t lo, hi;
    inner_pairs(gy->h, in->h, top, &lo, &hi);
    sums s = {{gw[0], gw[1], gw[2], gw[3], gw[4], gw[5], gw[6], gw[7], gw[8]}};
    for (int32_t b = 0; b < n; b++) {
        const float *sample = in->data + b * sample_size;
        const float *g_sample = gy->data + (ptrdiff_t)b * gy->h * g_row;
        if (hi > lo) { /* the pairs clear of the padding, in one call */
            const float *p = sample + ((ptrdiff_t)(lo - top) * in->w + 2 - pad) * in->c;
            const float *g = g_sample + lo * g_row;
            s = weight_inner(s, p, g, g + (hi - lo) * g_row, sw, in->c, in_row, g_row);
        }
        for (int32_t y = 0; y < gy->h; y += 2) { /* the others, and a single last row */
            if (y == lo && hi > lo) y = hi;
            if (y >= gy->h) break;
            const float *g0 = g_sample + y * g_row;
            const gradients g = {g0, g0 + g_row, gy->c};
            if (y + 1 == gy->h)
                s = weight_single(s, edge_rows(in, sample, y - top, 2 - pad, 3), sw, g);
            else
                s = weight_edge(s, edge_rows(in, sample, y - top, 2 - pad, 4), sw, g);
        }
    }
    gw[0] = s.v[0], gw[1] = s.v[1], gw[2] = s.v[2], gw[3] = s.v[3], gw[4] = s.v[4];
    gw[5] = s.v[5], gw[6] = s.v[6], gw[7] = s.v[7], gw[8] = s.v[8];
}

void ftte_dw3x3_backward_weight(const ftte_layer *l, int32_t n, ftte_slice slice,
                                const float *input, const float *grad_output,
                                float *grad_weights) {
    for (int32_t j = 0; j < slice.count; j++) {
        const int32_t ch = slice.begin + j;
        const plane in = {input + ch, l->in.h, l->in.w, l->in.c};
        const plane gy = {grad_output + ch, l->out.h, l->out.w, l->out.c};
        weight_channel(&in, &gy, n, l->pad_top, l->pad_left, grad_weights + j * 9);
    }
}
