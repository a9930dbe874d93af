/*
 * Row matmul of dense and pointwise conv2d on a vector host (FTTE_HOST_TILES, ftte_mac.h).
 *
 * All three products are one tile, c[q][j] += sum_s a[q][s] * b[s][j], over 4 (or 1) rows q
 * and 16 (or 8) columns j contiguous in b and c, in vectors of 8 floats: per step, 1 or 2
 * vector loads and 4 broadcasts feed 4 x 16 multiply-adds into 8 vector accumulators.
 *
 *  forward          c = y[r][o], a = x[r][i], b[i][o] = the weights transposed: 16 weight rows
 *                   at a time, 128 inputs at a time, into an 8 KB panel on the stack (a tile
 *                   of the board's register file, not scratch: the plan does not count it).
 *  backward_input   c = gx[r][i], a = gy[r][o], b = w[o][i] in place.
 *  backward_weight  c = gw[o][i], a = gy[r][o] (turned), b = x[r][i] in place.
 *
 * Each element is summed in the order of a plain loop (the forward from the bias, by
 * ascending input; the backward ones from the value in memory, by ascending output or row).
 */
#include "rows_matmul.h"

#include <stddef.h>

#include "ftte_mac.h"

#if FTTE_HOST_TILES

#define TILE_COLUMNS 16
#define PANEL_ROWS 128

/* What a tile computes: c[q * cs + j] = init[q * is + j] + sum_s a[q * aq + s * as] *
 * b[s * bs + j], summed in that order, for q < rows and j < 8 * (vecs - 1) + last. b rows
 * hold whole vectors (zeros past the last lane, if partial); init may be c itself. */
typedef struct {
    int32_t steps;
    const float *a;
    ptrdiff_t aq, as;
    const float *b;
    ptrdiff_t bs;
    const float *init;
    ptrdiff_t is;
    float *c;
    ptrdiff_t cs;
    /* Rows of b from a table (the split layers' weight rows): b row s at brows[s] + bj. */
    const float *const *brows;
    ptrdiff_t bj;
} product_args;

/* rows and vecs are constants at every call: rows * vecs vector accumulators. */
FTTE_INLINE void tile(const int32_t rows, const int32_t vecs, const int table, int32_t last,
                      product_args p) {
    vec8 acc[4][2];
    for (int32_t q = 0; q < rows; q++)
        for (int32_t v = 0; v < vecs; v++)
            load_lanes(&acc[q][v], p.init + q * p.is + 8 * v, v == vecs - 1 ? last : 8);
    const float *a = p.a, *b = p.b;
    for (int32_t s = 0; s < p.steps; s++, a += p.as, b += p.bs) {
        vec8 bv[2];
        const float *bs = table ? p.brows[s] + p.bj : b;
        for (int32_t v = 0; v < vecs; v++) load8(&bv[v], bs + 8 * v);
        for (int32_t q = 0; q < rows; q++) {
            const float u = a[q * p.aq];
            const vec8 uv = {u, u, u, u, u, u, u, u};
            for (int32_t v = 0; v < vecs; v++) FTTE_MAC(acc[q][v], uv, bv[v]);
        }
    }
    for (int32_t q = 0; q < rows; q++)
        for (int32_t v = 0; v < vecs; v++)
            store_lanes(p.c + q * p.cs + 8 * v, &acc[q][v], v == vecs - 1 ? last : 8);
}

/* Columns that are not whole vectors of b, one at a time. */
static void tile_scalar(int32_t rows, int32_t width, product_args p) {
    for (int32_t q = 0; q < rows; q++)
        for (int32_t j = 0; j < width; j++) {
            float acc = p.init[q * p.is + j];
            for (int32_t s = 0; s < p.steps; s++)
                FTTE_MAC(acc, p.a[q * p.aq + s * p.as],
                         p.brows ? p.brows[s][p.bj + j] : p.b[s * p.bs + j]);
            p.c[q * p.cs + j] = acc;
        }
}

#define TILE(rows, vecs)                                                                       \
    FTTE_NOINLINE static void tile_##rows##x##vecs(int32_t last, product_args p) {             \
        if (p.brows) tile(rows, vecs, 1, last, p);                                             \
        else tile(rows, vecs, 0, last, p);                                                     \
    }
TILE(4, 2) TILE(4, 1) TILE(1, 2) TILE(1, 1)
#undef TILE

/* The product over p's m rows and n columns; `padded`: b's rows hold whole vectors past n. */
static void product(int32_t m, int32_t n, int padded, product_args p) {
    for (int32_t q = 0; q < m;) {
        const int four = m - q >= 4;
        for (int32_t j = 0; j < n;) {
            const int32_t left = n - j;
            product_args t = p;
            t.b += j, t.bj += j, t.init += j, t.c += j;
            if (left >= 16 || (padded && left > 8)) {
                if (four) tile_4x2(left >= 16 ? 8 : left - 8, t);
                else tile_1x2(left >= 16 ? 8 : left - 8, t);
                j += left >= 16 ? 16 : left;
            } else if (left >= 8 || padded) {
                if (four) tile_4x1(left >= 8 ? 8 : left, t);
                else tile_1x1(left >= 8 ? 8 : left, t);
                j += left >= 8 ? 8 : left;
            } else {
                tile_scalar(four ? 4 : 1, left, t);
                j = n;
            }
        }
        const int32_t rows = four ? 4 : 1;
        q += rows, p.a += rows * p.aq, p.init += rows * p.is, p.c += rows * p.cs;
    }
}

/* Lanes of two vectors picked by constant indices (0-7: a's, 8-15: b's). */
#if defined(__clang__)
#define SHUFFLE(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define SHUFFLE(a, b, ...) __builtin_shuffle(a, b, (vec8i){__VA_ARGS__})
#endif

/* c[s][m] = r[m][s]: 8 rows of 8 floats turned in registers (24 two-vector shuffles). */
FTTE_INLINE void transpose8(const vec8 r[8], vec8 c[8]) {
    vec8 t[8], u[8];
    for (int32_t p = 0; p < 4; p++) {
        t[2 * p] = SHUFFLE(r[2 * p], r[2 * p + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[2 * p + 1] = SHUFFLE(r[2 * p], r[2 * p + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int32_t h = 0; h < 2; h++) {
        const vec8 *q = t + 4 * h;
        u[4 * h] = SHUFFLE(q[0], q[2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[4 * h + 1] = SHUFFLE(q[0], q[2], 2, 3, 10, 11, 6, 7, 14, 15);
        u[4 * h + 2] = SHUFFLE(q[1], q[3], 0, 1, 8, 9, 4, 5, 12, 13);
        u[4 * h + 3] = SHUFFLE(q[1], q[3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int32_t s = 0; s < 4; s++) {
        c[s] = SHUFFLE(u[s], u[s + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        c[s + 4] = SHUFFLE(u[s], u[s + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
}

/* y[o] = bias[o] (0 if NULL) + x . w[o] for 8 * B outputs, summed from the bias by ascending
 * input as the board's dots: 8 weight rows at a time turned in registers, so that each input
 * is one vector multiply-add into 8 sums; B blocks side by side hide the adds' latency. */
FTTE_INLINE void forward_row_blocks(int32_t k, const float *x, const float *w,
                                    const float *const *wp, const float *bias, float *y,
                                    const int32_t B) {
#define ROW(m) (wp ? wp[m] : w + (ptrdiff_t)(m) * k) /* weight row m of the 8 * B */
    vec8 acc[4];
    for (int32_t b = 0; b < B; b++) {
        const vec8 zero = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        acc[b] = zero;
        if (bias) load8(&acc[b], bias + 8 * b);
    }
    int32_t i = 0;
    for (; i + 8 <= k; i += 8)
        for (int32_t b = 0; b < B; b++) {
            vec8 r[8], c[8];
            for (int32_t m = 0; m < 8; m++) load8(&r[m], ROW(8 * b + m) + i);
            transpose8(r, c);
            for (int32_t s = 0; s < 8; s++) {
                const float u = x[i + s];
                const vec8 uv = {u, u, u, u, u, u, u, u};
                FTTE_MAC(acc[b], uv, c[s]);
            }
        }
    for (; i < k; i++) {
        const float u = x[i];
        const vec8 uv = {u, u, u, u, u, u, u, u};
        for (int32_t b = 0; b < B; b++) {
            const int32_t m = 8 * b;
            const vec8 c = {ROW(m)[i],     ROW(m + 1)[i], ROW(m + 2)[i], ROW(m + 3)[i],
                            ROW(m + 4)[i], ROW(m + 5)[i], ROW(m + 6)[i], ROW(m + 7)[i]};
            FTTE_MAC(acc[b], uv, c);
        }
    }
    for (int32_t b = 0; b < B; b++) store8(y + 8 * b, &acc[b]);
#undef ROW
}

FTTE_NOINLINE static void forward_row_32(int32_t k, const float *x, const float *w,
                                         const float *bias, float *y) {
    forward_row_blocks(k, x, w, NULL, bias, y, 4);
}
FTTE_NOINLINE static void forward_row_8(int32_t k, const float *x, const float *w,
                                        const float *bias, float *y) {
    forward_row_blocks(k, x, w, NULL, bias, y, 1);
}
FTTE_NOINLINE static void forward_row_32_ptrs(int32_t k, const float *x, const float *const *wp,
                                              const float *bias, float *y) {
    forward_row_blocks(k, x, NULL, wp, bias, y, 4);
}
FTTE_NOINLINE static void forward_row_8_ptrs(int32_t k, const float *x, const float *const *wp,
                                             const float *bias, float *y) {
    forward_row_blocks(k, x, NULL, wp, bias, y, 1);
}

/* One row (a matrix-vector product): 32 outputs at a time, then 8, then the board's dots. */
static void forward_row(int32_t k, int32_t count, const float *x, const float *w,
                        const float *bias, float *y) {
    int32_t o = 0;
    for (; o + 32 <= count; o += 32)
        forward_row_32(k, x, w + (ptrdiff_t)o * k, bias ? bias + o : NULL, y + o);
    for (; o + 8 <= count; o += 8)
        forward_row_8(k, x, w + (ptrdiff_t)o * k, bias ? bias + o : NULL, y + o);
    if (o < count)
        ftte_rows_forward_row(k, count - o, x, w + (ptrdiff_t)o * k, bias ? bias + o : NULL,
                              y + o);
}

/* forward_row with row o at wp[o]. */
static void forward_row_ptrs(int32_t k, int32_t count, const float *x, const float *const *wp,
                             const float *bias, float *y) {
    int32_t o = 0;
    for (; o + 32 <= count; o += 32) forward_row_32_ptrs(k, x, wp + o, bias ? bias + o : NULL, y + o);
    for (; o + 8 <= count; o += 8) forward_row_8_ptrs(k, x, wp + o, bias ? bias + o : NULL, y + o);
    if (o < count) ftte_rows_forward_row_ptrs(k, count - o, x, wp + o, bias ? bias + o : NULL, y + o);
}

/* The forward of the slice's outputs, or with wp of count <= FTTE_ROWS_CHUNK outputs whose
 * row o is at wp[o] (weights unused). */
static void forward(int32_t rows, int32_t in_c, int32_t out_c, ftte_slice slice,
                    const float *input, const float *weights, const float *const *wp,
                    const float *bias, float *output);

void ftte_rows_forward(int32_t rows, int32_t in_c, int32_t out_c, ftte_slice slice,
                       const float *input, const float *weights, const float *bias,
                       float *output) {
    forward(rows, in_c, out_c, slice, input, weights, NULL, bias, output);
}

void ftte_rows_forward_rows(int32_t rows, int32_t in_c, int32_t out_c, ftte_weight_rows w,
                            const float *input, const float *bias, float *output) {
    const float *wp[FTTE_ROWS_CHUNK];
    w.len = in_c;
    ftte_row_cursor cursor = {&w, 0, 0};
    for (int32_t o = 0; o < out_c; o += FTTE_ROWS_CHUNK) {
        const int32_t count = ftte_rows_take(&cursor, out_c - o, wp);
        const ftte_slice slice = {o, count};
        forward(rows, in_c, out_c, slice, input, NULL, wp, bias ? bias + o : NULL, output);
    }
}

void ftte_rows_backward_input_rows(int32_t rows, int32_t in_c, int32_t out_c,
                                   ftte_weight_rows w, const float *grad_output,
                                   float *grad_input) {
    const float *wp[FTTE_ROWS_CHUNK];
    w.len = in_c;
    ftte_row_cursor cursor = {&w, 0, 0};
    for (int32_t o = 0; o < out_c; o += FTTE_ROWS_CHUNK) {
        const int32_t count = ftte_rows_take(&cursor, out_c - o, wp);
        /* b: any valid pointer that product() may step (the rows come from wp). */
        const product_args p = {count, grad_output + o, out_c, 1, grad_input, 0, grad_input,
                                in_c, grad_input, in_c, wp, 0};
        product(rows, in_c, 0, p);
    }
}

static void forward(int32_t rows, int32_t in_c, int32_t out_c, ftte_slice slice,
                    const float *input, const float *weights, const float *const *wp,
                    const float *bias, float *output) {
    const int32_t k = in_c;
    if (rows < 4) { /* a panel would cost as much as the product: weights turned in registers */
        for (int32_t r = 0; r < rows; r++) {
            const float *x = input + (ptrdiff_t)r * k;
            float *y = output + (ptrdiff_t)r * out_c + slice.begin;
            if (wp) forward_row_ptrs(k, slice.count, x, wp, bias, y);
            else forward_row(k, slice.count, x, weights, bias, y);
        }
        return;
    }
    float panel[PANEL_ROWS * TILE_COLUMNS], start[TILE_COLUMNS];
    for (int32_t o = 0; o < slice.count; o += TILE_COLUMNS) {
        const int32_t width = slice.count - o < TILE_COLUMNS ? slice.count - o : TILE_COLUMNS;
        for (int32_t j = 0; j < TILE_COLUMNS; j++)
            start[j] = bias && j < width ? bias[o + j] : 0.0f;
        float *y = output + slice.begin + o;
        for (int32_t i = 0; i < k; i += PANEL_ROWS) {
            const int32_t steps = k - i < PANEL_ROWS ? k - i : PANEL_ROWS;
            for (int32_t j = 0; j < TILE_COLUMNS; j++) {
                const float *w = j >= width ? NULL
                                 : wp       ? wp[o + j] + i
                                            : weights + (ptrdiff_t)(o + j) * k + i;
                for (int32_t s = 0; s < steps; s++) panel[s * TILE_COLUMNS + j] = w ? w[s] : 0.0f;
            }
            /* The first block starts from the bias, the next ones from y. */
            const product_args p = {steps, input + i, k, 1, panel, TILE_COLUMNS,
                                    i == 0 ? start : y, i == 0 ? 0 : out_c, y, out_c, NULL, 0};
            product(rows, width, 1, p);
        }
    }
}

void ftte_rows_backward_input(int32_t rows, int32_t in_c, int32_t out_c, ftte_slice slice,
                              const float *grad_output, const float *weights,
                              float *grad_input) {
    const product_args p = {slice.count, grad_output + slice.begin, out_c, 1, weights, in_c,
                            grad_input, in_c, grad_input, in_c, NULL, 0};
    product(rows, in_c, 0, p);
}

void ftte_rows_backward_weight(int32_t rows, int32_t in_c, int32_t out_c, ftte_slice slice,
                               const float *input, const float *grad_output,
                               float *grad_weights) {
    if (rows < 4) { /* outer products, row by row: a tile per 16 gradients is all overhead */
        for (int32_t r = 0; r < rows; r++) {
            const float *x = input + (ptrdiff_t)r * in_c, *g = grad_output + (ptrdiff_t)r * out_c;
            for (int32_t o = 0; o < slice.count; o++) {
                float *gw = grad_weights + (ptrdiff_t)o * in_c;
                const float go = g[slice.begin + o];
                const vec8 gv = {go, go, go, go, go, go, go, go};
                int32_t i = 0;
                for (; i + 8 <= in_c; i += 8) {
                    vec8 acc, xv;
                    load8(&acc, gw + i), load8(&xv, x + i);
                    FTTE_MAC(acc, gv, xv);
                    store8(gw + i, &acc);
                }
                for (; i < in_c; i++) FTTE_MAC(gw[i], go, x[i]);
            }
        }
        return;
    }
    const product_args p = {rows, grad_output + slice.begin, 1, out_c, input, in_c,
                            grad_weights, in_c, grad_weights, in_c, NULL, 0};
    product(slice.count, in_c, 0, p);
}

#endif /* FTTE_HOST_TILES */
