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
 *
 * On a Cortex-M4F (FTTE_ARM_VLDM), layers with padding 1 and an output as large as the input
 * take asm passes instead (below the C), under 2 instructions per MAC with their setup.
 */
#include "depthwise3x3.h"

#include <stddef.h>
#include <stdint.h>

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

#if FTTE_ARM_VLDM
/* ---------------------------------------------------------------------------------------- */
/* Cortex-M4F: "same" layers (padding 1, output as large as the input) in asm               */
/* ---------------------------------------------------------------------------------------- */

/* In C the loops above stay at 2 instructions per MAC and the passes cost about 100 more
 * each: every column load needs its own pointer step (VLDR takes neither a register offset
 * nor a post-increment). Here one pointer p walks the input; integer LDR reaches the other
 * rows at register offsets, one VMOV moves two of them to the FPU, and the outputs (or
 * gradients) sit at fixed offsets from the same p: per column of two output rows 4 LDR,
 * 2 VMOV, 18 VFMA, 2 to 3 to start the sums, 3 to store them and one step, 30 to 31
 * instructions for 18 MACs. Taps over the padding are skipped instead of multiplied by
 * zero: the first and last columns have code of their own, and output rows 0 and h - 1 are
 * single rows over 2 input rows and 6 taps. Each output sums its taps in the C's order with
 * the same VFMA; the weight gradient adds its rows in another order (row 0, the pairs from
 * row 1, row h - 1). */

/* One pass along a row. p: input column 0 of the pass's first input row, the next rows
 * off1..off3 bytes on, columns c4 bytes apart; with p at input column x + 1, output (or
 * gradient) column x of the pass's rows is at p + d0 and p + d1. Of the w - 2 columns between
 * the first and the last, phase = (w - 2) % 3 go before the unrolled loop's first full round
 * and rounds = w / 3 is how often it ends. taps: the 9 (or for a single row 6) taps, or the
 * gradient sums they add to; bias: the forward's initial value. The order is ldm's. */
typedef struct {
    const float *p;
    int32_t rounds, c4, off1, off2, off3;
    const float *taps; /* written: the weight gradient's sums */
    const float *bias;
    int32_t d0, d1, phase;
} m4_pass;

#define CALL(m, ...) m(__VA_ARGS__)
#define G(d, n, m) "vfma.f32 " d ", " n ", " m "\n\t"
#define NONE(d, n, m) /* a tap over the padding */

/* The window's three column sets rotate through A, B, C: 4 input rows of a pair (P), 2 of a
 * single row (R). */
#define PA "s12", "s13", "s14", "s15"
#define PB "s16", "s17", "s18", "s19"
#define PC "s20", "s21", "s22", "s23"
#define RA "s12", "s13"
#define RB "s14", "s15"
#define RC "s16", "s17"

/* The input column at p into a set (r6, r7: temporaries). */
#define LOAD4(a, b, c, d)                                                                 \
    "ldr r6, [r0]\n\tldr r7, [r0, r3]\n\tvmov " a ", " b ", r6, r7\n\t"                   \
    "ldr r6, [r0, r4]\n\tldr r7, [r0, r5]\n\tvmov " c ", " d ", r6, r7\n\t"
#define LOAD2(a, b) "ldr r6, [r0]\n\tldr r7, [r0, r3]\n\tvmov " a ", " b ", r6, r7\n\t"
#define PLOAD(x) CALL(LOAD4, P##x)
#define WLOAD(x) CALL(LOAD4, P##x)
#define RLOAD(x) CALL(LOAD2, R##x)
#define VLOAD(x) CALL(LOAD2, R##x)

/* One output column from the window (x, y, z); l, r: G, or NONE for a column of padding.
 * Pair: s24 += taps s0-s8 . rows 0-2, s25 += taps . rows 1-3, in tap order. */
#define PDOT(l, r, x, y, z) CALL(PDOT_, l, r, P##x, P##y, P##z)
#define PDOT_(L, R, a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3)                        \
    L("s24", "s0", a0) L("s25", "s0", a1) G("s24", "s1", b0) G("s25", "s1", b1)               \
    R("s24", "s2", c0) R("s25", "s2", c1) L("s24", "s3", a1) L("s25", "s3", a2)               \
    G("s24", "s4", b1) G("s25", "s4", b2) R("s24", "s5", c1) R("s25", "s5", c2)               \
    L("s24", "s6", a2) L("s25", "s6", a3) G("s24", "s7", b2) G("s25", "s7", b3)               \
    R("s24", "s8", c2) R("s25", "s8", c3)
/* Single row: s24 += taps s0-s5 . its 2 rows. */
#define RDOT(l, r, x, y, z) CALL(RDOT_, l, r, R##x, R##y, R##z)
#define RDOT_(L, R, a0, a1, b0, b1, c0, c1)                                                 \
    L("s24", "s0", a0) G("s24", "s1", b0) R("s24", "s2", c0)                                 \
    L("s24", "s3", a1) G("s24", "s4", b1) R("s24", "s5", c1)
/* Weight gradient of a pair: sums s0-s8 += gradient s24 x rows 0-2, then s25 x rows 1-3. */
#define WDOT(l, r, x, y, z) CALL(WDOT_, l, r, P##x, P##y, P##z)
#define WDOT_(L, R, a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3)                        \
    L("s0", "s24", a0) G("s1", "s24", b0) R("s2", "s24", c0) L("s3", "s24", a1)               \
    G("s4", "s24", b1) R("s5", "s24", c1) L("s6", "s24", a2) G("s7", "s24", b2)               \
    R("s8", "s24", c2) L("s0", "s25", a1) G("s1", "s25", b1) R("s2", "s25", c1)               \
    L("s3", "s25", a2) G("s4", "s25", b2) R("s5", "s25", c2) L("s6", "s25", a3)               \
    G("s7", "s25", b3) R("s8", "s25", c3)
/* Weight gradient of a single row: sums s0-s5 += gradient s24 x its 2 rows. */
#define VDOT(l, r, x, y, z) CALL(VDOT_, l, r, R##x, R##y, R##z)
#define VDOT_(L, R, a0, a1, b0, b1, c0, c1)                                                 \
    L("s0", "s24", a0) G("s1", "s24", b0) R("s2", "s24", c0)                                 \
    L("s3", "s24", a1) G("s4", "s24", b1) R("s5", "s24", c1)

/* Starting values: the bias (s9), or the values at p + d0 (and p + d1); and the stores. */
#define BIAS2 "vmov.f32 s24, s9\n\tvmov.f32 s25, s9\n\t"
#define BIAS1 "vmov.f32 s24, s9\n\t"
#define FROM2 "ldr r6, [r0, r8]\n\tldr r7, [r0, r9]\n\tvmov s24, s25, r6, r7\n\t"
#define FROM1 "ldr r6, [r0, r8]\n\tvmov s24, r6\n\t"
#define STORE2 "vmov r6, r7, s24, s25\n\tstr r6, [r0, r8]\n\tstr r7, [r0, r9]\n\t"
#define STORE1 "vmov r6, s24\n\tstr r6, [r0, r8]\n\t"

/* A pass: columns 0 and 1 into the sets that make the loop end on its last step (Duff's
 * device: phase 0 enters at step 1, phase 2 at step 2, phase 1 at step 3), with output column
 * 0 without the left taps; the middle columns, one per set in turn (no moves); the last output
 * column, from A and B, without the right taps. */
#define FIRST(K, INIT, STORE, x, y)                                                         \
    K##LOAD(x) "add r0, r2\n\t" K##LOAD(y) INIT K##DOT(NONE, G, x, x, y) STORE "add r0, r2\n\t"
#define STEP(K, INIT, STORE, x, y, z) K##LOAD(z) INIT K##DOT(G, G, x, y, z) STORE "add r0, r2\n\t"
#define PASS(K, SETUP, INIT, STORE, FINISH)                                                 \
    "push {r4-r11, lr}\n\tvpush {s16-s25}\n\tmov ip, r0\n\tldm ip, {r0-r10}\n\t" SETUP         \
    "cmp r10, #1\n\tbeq 4f\n\tbgt 5f\n\t"                                                      \
    FIRST(K, INIT, STORE, A, B) "cmp r1, #0\n\tbeq 3f\n"                                       \
    "1:\n\t" STEP(K, INIT, STORE, A, B, C)                                                     \
    "2:\n\t" STEP(K, INIT, STORE, B, C, A)                                                     \
    "6:\n\t" STEP(K, INIT, STORE, C, A, B) "subs r1, #1\n\tbne 1b\n"                           \
    "3:\n\t" INIT K##DOT(G, NONE, A, B, B) STORE FINISH                                       \
    "vpop {s16-s25}\n\tpop {r4-r11, pc}\n"                                                    \
    "4:\n\t" FIRST(K, INIT, STORE, C, A) "b 6b\n"                                              \
    "5:\n\t" FIRST(K, INIT, STORE, B, C) "b 2b\n\t"

#if defined(__clang__)
#define M4_NAKED __attribute__((naked, noinline))
#else
#define M4_NAKED __attribute__((naked, noinline, noipa)) /* reads and writes through *a */
#endif
#define M4_ARG __attribute__((unused)) const m4_pass *a /* in r0 */

M4_NAKED static void m4_pair_forward(M4_ARG) {
    __asm__ volatile(PASS(P, "vldm r6, {s0-s8}\n\tvldr s9, [r7]\n\t", BIAS2, STORE2, ""));
}
M4_NAKED static void m4_pair_backward(M4_ARG) {
    __asm__ volatile(PASS(P, "vldm r6, {s0-s8}\n\t", FROM2, STORE2, ""));
}
M4_NAKED static void m4_row_forward(M4_ARG) {
    __asm__ volatile(PASS(R, "vldm r6, {s0-s5}\n\tvldr s9, [r7]\n\t", BIAS1, STORE1, ""));
}
M4_NAKED static void m4_row_backward(M4_ARG) {
    __asm__ volatile(PASS(R, "vldm r6, {s0-s5}\n\t", FROM1, STORE1, ""));
}
M4_NAKED static void m4_pair_weight(M4_ARG) {
    __asm__ volatile(PASS(W, "mov r11, r6\n\tvldm r11, {s0-s8}\n\t", FROM2, "",
                          "vstm r11, {s0-s8}\n\t"));
}
M4_NAKED static void m4_row_weight(M4_ARG) {
    __asm__ volatile(PASS(V, "mov r11, r6\n\tvldm r11, {s0-s5}\n\t", FROM1, "",
                          "vstm r11, {s0-s5}\n\t"));
}

/* Padding 1 on every side, output as large as the input, at least 2 x 2. */
static int m4_same(const ftte_layer *l) {
    return l->pad_top == 1 && l->pad_left == 1 && l->out.h == l->in.h &&
           l->out.w == l->in.w && l->in.h >= 2 && l->in.w >= 2;
}

/* The passes of one channel of a sample (x: its input at column 0 of row 0): row 0 from
 * input rows 0-1 and taps 3-8, the pairs from row 1, row h - 1 from rows h - 2, h - 1 and
 * taps 0-5 (with h odd, row h - 2 is left to the C). top: taps 3-8 (or their sums), all:
 * the 9. a: from m4_layer. */
static void m4_passes(m4_pass *a, const float *x, int32_t h, ptrdiff_t row,
                      void (*pair)(const m4_pass *), void (*one)(const m4_pass *),
                      const float *top, const float *all) {
    const int32_t d0 = a->d0;
    a->taps = top, a->p = x, a->d0 = d0 - a->off1; /* from row 0, not row -1 */
    one(a);
    a->taps = all, a->d0 = d0;
    for (int32_t y = 1; y + 2 < h; y += 2) {
        a->p = x + (y - 1) * row;
        pair(a);
    }
    a->p = x + (h - 2) * row;
    one(a);
}

/* What every pass of a "same" layer shares; out (or the gradient) and in have one layout, so
 * their byte offset is the same for every channel, sample and row. */
static m4_pass m4_layer(const ftte_layer *l, const float *in, const float *out) {
    m4_pass a;
    a.rounds = l->in.w / 3, a.phase = (l->in.w - 2) % 3, a.c4 = l->in.c * 4;
    a.off1 = l->in.w * a.c4, a.off2 = 2 * a.off1, a.off3 = 3 * a.off1;
    a.d0 = (int32_t)((uintptr_t)out - (uintptr_t)in) + a.off1 - a.c4;
    a.d1 = a.d0 + a.off1;
    return a;
}

/* One channel of a "same" layer (m4_same), as correlate(); a from m4_layer. */
static void m4_correlate(m4_pass *a, const plane *in, float *out, int32_t n, const job *j,
                         const int accumulate) {
    const int32_t h = in->h;
    const ptrdiff_t row = j->in_row;
    a->bias = &j->bias;
    for (int32_t b = 0; b < n; b++) {
        const float *x = in->data + b * h * row;
        float *o = out + b * h * row;
        if (accumulate)
            m4_passes(a, x, h, row, m4_pair_backward, m4_row_backward, j->t.w + 3, j->t.w);
        else
            m4_passes(a, x, h, row, m4_pair_forward, m4_row_forward, j->t.w + 3, j->t.w);
        if (h % 2) { /* row h - 2, in C */
            const outputs oo = {o + (h - 2) * row, o + (h - 2) * row, j->c};
            const walk k = edge_rows(in, x, h - 3, 1, 3);
            if (accumulate) backward_edge(k, oo, j);
            else forward_edge(k, oo, j);
        }
    }
}
#endif /* FTTE_ARM_VLDM */

void ftte_dw3x3_forward(const ftte_layer *l, int32_t n, ftte_slice slice, const float *input,
                        const float *weights, const float *bias, float *output) {
    const sweep sw = sweep_of(l->in.w, l->out.w, l->pad_left);
#if FTTE_ARM_VLDM
    m4_pass a = m4_layer(l, input, output);
#endif
    for (int32_t i = 0; i < slice.count; i++) {
        const int32_t ch = slice.begin + i;
        const plane in = {input + ch, l->in.h, l->in.w, l->in.c};
        const float *w = weights + i * 9;
        const job j = {{{w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8]}},
                       bias != NULL ? bias[i] : 0.0f,
                       sw,
                       l->in.c,
                       (ptrdiff_t)l->in.w * l->in.c,
                       (ptrdiff_t)l->out.w * l->out.c};
#if FTTE_ARM_VLDM
        if (m4_same(l)) {
            m4_correlate(&a, &in, output + ch, n, &j, 0);
            continue;
        }
#endif
        correlate(&in, output + ch, l->out.h, n, l->pad_top, l->pad_left, &j, 0);
    }
}

void ftte_dw3x3_backward_input(const ftte_layer *l, int32_t n, ftte_slice slice,
                               const float *grad_output, const float *weights,
                               float *grad_input) {
    /* The correlation of grad_output with the weights turned by 180 degrees (tap (ky, kx) is
     * (2 - ky, 2 - kx)), padding 2 - pad. */
    const int32_t top = 2 - l->pad_top, pad = 2 - l->pad_left;
    const sweep sw = sweep_of(l->out.w, l->in.w, pad);
#if FTTE_ARM_VLDM
    m4_pass a = m4_layer(l, grad_output, grad_input);
#endif
    for (int32_t i = 0; i < slice.count; i++) {
        const int32_t ch = slice.begin + i;
        const plane in = {grad_output + ch, l->out.h, l->out.w, l->out.c};
        const float *w = weights + i * 9;
        const job j = {{{w[8], w[7], w[6], w[5], w[4], w[3], w[2], w[1], w[0]}},
                       0.0f,
                       sw,
                       l->out.c,
                       (ptrdiff_t)l->out.w * l->out.c,
                       (ptrdiff_t)l->in.w * l->in.c};
#if FTTE_ARM_VLDM
        if (m4_same(l)) {
            m4_correlate(&a, &in, grad_input + ch, n, &j, 1);
            continue;
        }
#endif
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

#if FTTE_ARM_VLDM
/* One channel's weight gradient of a "same" layer (m4_same), as weight_channel(). */
static void m4_weight_channel(m4_pass *a, const plane *in, const plane *gy, int32_t n,
                              float *gw) {
    const int32_t h = in->h;
    const ptrdiff_t row = (ptrdiff_t)in->w * in->c;
    for (int32_t b = 0; b < n; b++) {
        const float *x = in->data + b * h * row, *g = gy->data + b * h * row;
        m4_passes(a, x, h, row, m4_pair_weight, m4_row_weight, gw + 3, gw);
        if (h % 2) { /* row h - 2, in C */
            const gradients gg = {g + (h - 2) * row, g + (h - 2) * row, in->c};
            sums s = {{gw[0], gw[1], gw[2], gw[3], gw[4], gw[5], gw[6], gw[7], gw[8]}};
            s = weight_single(s, edge_rows(in, x, h - 3, 1, 3), sweep_of(in->w, gy->w, 1), gg);
            for (int32_t t = 0; t < 9; t++) gw[t] = s.v[t];
        }
    }
}
#endif

void ftte_dw3x3_backward_weight(const ftte_layer *l, int32_t n, ftte_slice slice,
                                const float *input, const float *grad_output,
                                float *grad_weights) {
#if FTTE_ARM_VLDM
    m4_pass a = m4_layer(l, input, grad_output);
    a.bias = NULL;
#endif
    for (int32_t j = 0; j < slice.count; j++) {
        const int32_t ch = slice.begin + j;
        const plane in = {input + ch, l->in.h, l->in.w, l->in.c};
        const plane gy = {grad_output + ch, l->out.h, l->out.w, l->out.c};
#if FTTE_ARM_VLDM
        if (m4_same(l)) {
            m4_weight_channel(&a, &in, &gy, n, grad_weights + j * 9);
            continue;
        }
#endif
        weight_channel(&in, &gy, n, l->pad_top, l->pad_left, grad_weights + j * 9);
    }
}
