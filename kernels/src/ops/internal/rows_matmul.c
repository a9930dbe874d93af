/*
 * Row matmul of dense and pointwise conv2d, register-tiled for a Cortex-M4F.
 *
 * Each product is computed in 4x4 tiles of its result, held in 16 accumulators: every step of
 * the reduction loads 4 + 4 floats for 16 multiply-accumulates, about 1.7 instructions per MAC
 * (loads, VFMA, loop) against 3 or more for a dot product, which needs 2 loads per MAC.
 * Edges of fewer than 4 rows or columns use a 1x4 strip, then a plain strided dot.
 *
 * ftte_rows_check() bounds every tensor (weights included) by INT32_MAX elements, so the
 * int32 offsets below (row * stride) cannot overflow.
 */
#include "rows_matmul.h"

/* In ISO C mode (-std=c99) GCC does not contract a * b + c into one instruction
 * (-ffp-contract=off), so ask for the fused multiply-add where the FPU has one (Cortex-M4F
 * VFMA). Elsewhere (soft float, x86 without FMA) fmaf is a slow library call: multiply, add. */
#if defined(__GNUC__) && defined(__FP_FAST_FMAF)
#define MAC(acc, a, b) ((acc) = __builtin_fmaf((a), (b), (acc)))
#else
#define MAC(acc, a, b) ((acc) += (a) * (b))
#endif

ftte_status ftte_rows_check(const ftte_layer *layer, int32_t op, int32_t n, ftte_slice slice,
                            int32_t *rows) {
    ftte_status status = ftte_layer_validate(layer);
    if (status != FTTE_OK) return status;
    if (layer->op != op) return FTTE_ERR_UNSUPPORTED;
    const int32_t in_c = layer->in.c, out_c = layer->out.c;
    if ((int64_t)in_c * out_c > INT32_MAX) return FTTE_ERR_SHAPE; /* weights */
    if (n <= 0 || slice.begin < 0 || slice.count < 1 || slice.begin > out_c - slice.count)
        return FTTE_ERR_ARG;
    const int64_t pixels = (int64_t)n * layer->in.h * layer->in.w;
    if (pixels > INT32_MAX / (in_c > out_c ? in_c : out_c)) return FTTE_ERR_ARG; /* batch */
    *rows = (int32_t)pixels;
    return FTTE_OK;
}

static void store4(float *p, float a, float b, float c, float d) {
    p[0] = a;
    p[1] = b;
    p[2] = c;
    p[3] = d;
}

/* acc + sum_t a[t * as] * b[t * bs]: the edge case of all three products. */
static float dot(int32_t k, const float *a, int32_t as, const float *b, int32_t bs, float acc) {
    for (int32_t t = 0; t < k; t++) MAC(acc, a[t * as], b[t * bs]);
    return acc;
}

/* out[0..3] += sum_t a[t * as] * b[t * bs + 0..3]: one result row of 4 columns. */
static void strip_1x4(int32_t k, const float *a, int32_t as, const float *b, int32_t bs,
                      float *out) {
    float a0 = out[0], a1 = out[1], a2 = out[2], a3 = out[3];
    for (int32_t t = 0; t < k; t++) {
        const float u = a[t * as], *v = b + t * bs;
        MAC(a0, u, v[0]); MAC(a1, u, v[1]); MAC(a2, u, v[2]); MAC(a3, u, v[3]);
    }
    store4(out, a0, a1, a2, a3);
}

/* ---------------------------------------------------------------------------------------- */
/* Forward: y[r][o] = b[o] + x[r] . w[o], tiles of 4 rows x 4 outputs, reduced over in_c.     */
/* ---------------------------------------------------------------------------------------- */

/* Rows x0..x3 against weight rows w0..w3 (both of k floats): each loaded input feeds 4 MACs,
 * and so does each loaded weight. */
static void forward_4x4(int32_t k, const float *x, const float *w, const float *bias, float *y,
                        int32_t ys) {
    const float *x0 = x, *x1 = x0 + k, *x2 = x1 + k, *x3 = x2 + k;
    const float *w0 = w, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
    float b0 = 0.0f, b1 = 0.0f, b2 = 0.0f, b3 = 0.0f;
    if (bias) {
        b0 = bias[0], b1 = bias[1], b2 = bias[2], b3 = bias[3];
    }
    float a00 = b0, a01 = b1, a02 = b2, a03 = b3, a10 = b0, a11 = b1, a12 = b2, a13 = b3;
    float a20 = b0, a21 = b1, a22 = b2, a23 = b3, a30 = b0, a31 = b1, a32 = b2, a33 = b3;
    for (int32_t i = 0; i < k; i++) {
        const float v0 = w0[i], v1 = w1[i], v2 = w2[i], v3 = w3[i];
        float u = x0[i];
        MAC(a00, u, v0); MAC(a01, u, v1); MAC(a02, u, v2); MAC(a03, u, v3);
        u = x1[i];
        MAC(a10, u, v0); MAC(a11, u, v1); MAC(a12, u, v2); MAC(a13, u, v3);
        u = x2[i];
        MAC(a20, u, v0); MAC(a21, u, v1); MAC(a22, u, v2); MAC(a23, u, v3);
        u = x3[i];
        MAC(a30, u, v0); MAC(a31, u, v1); MAC(a32, u, v2); MAC(a33, u, v3);
    }
    store4(y, a00, a01, a02, a03);
    store4(y + ys, a10, a11, a12, a13);
    store4(y + 2 * ys, a20, a21, a22, a23);
    store4(y + 3 * ys, a30, a31, a32, a33);
}

/* One input row against weight rows w0..w3: each loaded input feeds 4 MACs. */
static void forward_1x4(int32_t k, const float *x, const float *w, const float *bias, float *y) {
    const float *w0 = w, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    if (bias) {
        a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
    }
    for (int32_t i = 0; i < k; i++) {
        const float u = x[i];
        MAC(a0, u, w0[i]); MAC(a1, u, w1[i]); MAC(a2, u, w2[i]); MAC(a3, u, w3[i]);
    }
    store4(y, a0, a1, a2, a3);
}

void ftte_rows_forward(int32_t rows, int32_t in_c, int32_t out_c, ftte_slice slice,
                       const float *input, const float *weights, const float *bias,
                       float *output) {
    const int32_t k = in_c, count = slice.count;
    for (int32_t r = 0; r < rows;) {
        const int32_t block = rows - r >= 4 ? 4 : 1;
        const float *x = input + r * k;
        float *y = output + r * out_c + slice.begin;
        int32_t o = 0;
        for (; o + 4 <= count; o += 4) {
            const float *w = weights + o * k, *b = bias ? bias + o : 0;
            if (block == 4) forward_4x4(k, x, w, b, y + o, out_c);
            else forward_1x4(k, x, w, b, y + o);
        }
        for (; o < count; o++)
            for (int32_t j = 0; j < block; j++)
                y[j * out_c + o] = dot(k, x + j * k, 1, weights + o * k, 1, bias ? bias[o] : 0.0f);
        r += block;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Backward input: gx[r][i] += sum_o gy[r][o] * w[o][i], tiles of 4 rows x 4 inputs.          */
/* ---------------------------------------------------------------------------------------- */

/* Rows j < 4 of gy (stride gys, count floats) against w (count rows of stride k) into 4
 * columns of gx (stride k): per o, 4 gradient and 4 weight loads feed 16 MACs. */
static void backward_input_4x4(int32_t count, const float *gy, int32_t gys, const float *w,
                               int32_t k, float *gx) {
    const float *g0 = gy, *g1 = g0 + gys, *g2 = g1 + gys, *g3 = g2 + gys;
    float *x0 = gx, *x1 = x0 + k, *x2 = x1 + k, *x3 = x2 + k;
    float a00 = x0[0], a01 = x0[1], a02 = x0[2], a03 = x0[3];
    float a10 = x1[0], a11 = x1[1], a12 = x1[2], a13 = x1[3];
    float a20 = x2[0], a21 = x2[1], a22 = x2[2], a23 = x2[3];
    float a30 = x3[0], a31 = x3[1], a32 = x3[2], a33 = x3[3];
    for (int32_t o = 0; o < count; o++) {
        const float *wo = w + o * k;
        const float v0 = wo[0], v1 = wo[1], v2 = wo[2], v3 = wo[3];
        float u = g0[o];
        MAC(a00, u, v0); MAC(a01, u, v1); MAC(a02, u, v2); MAC(a03, u, v3);
        u = g1[o];
        MAC(a10, u, v0); MAC(a11, u, v1); MAC(a12, u, v2); MAC(a13, u, v3);
        u = g2[o];
        MAC(a20, u, v0); MAC(a21, u, v1); MAC(a22, u, v2); MAC(a23, u, v3);
        u = g3[o];
        MAC(a30, u, v0); MAC(a31, u, v1); MAC(a32, u, v2); MAC(a33, u, v3);
    }
    store4(x0, a00, a01, a02, a03);
    store4(x1, a10, a11, a12, a13);
    store4(x2, a20, a21, a22, a23);
    store4(x3, a30, a31, a32, a33);
}

void ftte_rows_backward_input(int32_t rows, int32_t in_c, int32_t out_c, ftte_slice slice,
                              const float *grad_output, const float *weights,
                              float *grad_input) {
    const int32_t k = in_c, count = slice.count;
    for (int32_t r = 0; r < rows;) {
        const int32_t block = rows - r >= 4 ? 4 : 1;
        const float *gy = grad_output + r * out_c + slice.begin;
        float *gx = grad_input + r * k;
        int32_t i = 0;
        for (; i + 4 <= k; i += 4) {
            if (block == 4) backward_input_4x4(count, gy, out_c, weights + i, k, gx + i);
            else strip_1x4(count, gy, 1, weights + i, k, gx + i);
        }
        for (; i < k; i++)
            for (int32_t j = 0; j < block; j++)
                gx[j * k + i] = dot(count, gy + j * out_c, 1, weights + i, k, gx[j * k + i]);
        r += block;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Backward weight: gw[o][i] += sum_r gy[r][o] * x[r][i], tiles of 4 outputs x 4 inputs.      */
/* ---------------------------------------------------------------------------------------- */

/* Columns o < 4 of gy (row stride gys) against 4 columns of x (row stride k) over all rows,
 * into 4 rows of gw (stride k): per row, 4 gradient and 4 input loads feed 16 MACs. */
static void backward_weight_4x4(int32_t rows, const float *gy, int32_t gys, const float *x,
                                int32_t k, float *gw) {
    float *w0 = gw, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
    float a00 = w0[0], a01 = w0[1], a02 = w0[2], a03 = w0[3];
    float a10 = w1[0], a11 = w1[1], a12 = w1[2], a13 = w1[3];
    float a20 = w2[0], a21 = w2[1], a22 = w2[2], a23 = w2[3];
    float a30 = w3[0], a31 = w3[1], a32 = w3[2], a33 = w3[3];
    for (int32_t r = 0; r < rows; r++) {
        const float *g = gy + r * gys, *xr = x + r * k;
        const float v0 = xr[0], v1 = xr[1], v2 = xr[2], v3 = xr[3];
        float u = g[0];
        MAC(a00, u, v0); MAC(a01, u, v1); MAC(a02, u, v2); MAC(a03, u, v3);
        u = g[1];
        MAC(a10, u, v0); MAC(a11, u, v1); MAC(a12, u, v2); MAC(a13, u, v3);
        u = g[2];
        MAC(a20, u, v0); MAC(a21, u, v1); MAC(a22, u, v2); MAC(a23, u, v3);
        u = g[3];
        MAC(a30, u, v0); MAC(a31, u, v1); MAC(a32, u, v2); MAC(a33, u, v3);
    }
    store4(w0, a00, a01, a02, a03);
    store4(w1, a10, a11, a12, a13);
    store4(w2, a20, a21, a22, a23);
    store4(w3, a30, a31, a32, a33);
}

void ftte_rows_backward_weight(int32_t rows, int32_t in_c, int32_t out_c, ftte_slice slice,
                               const float *input, const float *grad_output,
                               float *grad_weights) {
    const int32_t k = in_c, count = slice.count;
    for (int32_t o = 0; o < count;) {
        const int32_t block = count - o >= 4 ? 4 : 1;
        const float *gy = grad_output + slice.begin + o;
        float *gw = grad_weights + o * k;
        int32_t i = 0;
        for (; i + 4 <= k; i += 4) {
            if (block == 4) backward_weight_4x4(rows, gy, out_c, input + i, k, gw + i);
            else strip_1x4(rows, gy, out_c, input + i, k, gw + i);
        }
        for (; i < k; i++)
            for (int32_t j = 0; j < block; j++)
                gw[j * k + i] = dot(rows, gy + j, out_c, input + i, k, gw[j * k + i]);
        o += block;
    }
}
