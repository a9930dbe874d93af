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
} product_args;

/* rows and vecs are constants at every call: rows * vecs vector accumulators. */
FTTE_INLINE void tile(const int32_t rows, const int32_t vecs, int32_t last, product_args p) {
    vec8 acc[4][2];
    for (int32_t q = 0; q < rows; q++)
        for (int32_t v = 0; v < vecs; v++)
            load_lanes(&acc[q][v], p.init + q * p.is + 8 * v, v == vecs - 1 ? last : 8);
    const float *a = p.a, *b = p.b;
    for (int32_t s = 0; s < p.steps; s++, a += p.as, b += p.bs) {
        vec8 bv[2];
        for (int32_t v = 0; v < vecs; v++) load8(&bv[v], b + 8 * v);
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
                FTTE_MAC(acc, p.a[q * p.aq + s * p.as], p.b[s * p.bs + j]);
            p.c[q * p.cs + j] = acc;
        }
}

#define TILE(rows, vecs)                                                                       \
    FTTE_NOINLINE static void tile_##rows##x##vecs(int32_t last, product_args p) {             \
        tile(rows, vecs, last, p);                                                             \
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
            t.b += j, t.init += j, t.c += j;
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

void ftte_rows_forward(int32_t rows, int32_t in_c, int32_t out_c, ftte_slice slice,
                       const float *input, const float *weights, const float *bias,
                       float *output) {
    const int32_t k = in_c;
    if (rows < 4) { /* a panel would cost as much as the product: the board's dots */
        for (int32_t r = 0; r < rows; r++)
            ftte_rows_forward_row(k, slice.count, input + (ptrdiff_t)r * k, weights, bias,
                                  output + (ptrdiff_t)r * out_c + slice.begin);
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
                const float *w = j < width ? weights + (ptrdiff_t)(o + j) * k + i : NULL;
                for (int32_t s = 0; s < steps; s++) panel[s * TILE_COLUMNS + j] = w ? w[s] : 0.0f;
            }
            /* The first block starts from the bias, the next ones from y. */
            const product_args p = {steps, input + i, k, 1, panel, TILE_COLUMNS,
                                    i == 0 ? start : y, i == 0 ? 0 : out_c, y, out_c};
            product(rows, width, 1, p);
        }
    }
}

void ftte_rows_backward_input(int32_t rows, int32_t in_c, int32_t out_c, ftte_slice slice,
                              const float *grad_output, const float *weights,
                              float *grad_input) {
    const product_args p = {slice.count, grad_output + slice.begin, out_c, 1, weights, in_c,
                            grad_input, in_c, grad_input, in_c};
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
                            grad_weights, in_c, grad_weights, in_c};
    product(slice.count, in_c, 0, p);
}

#endif /* FTTE_HOST_TILES */
