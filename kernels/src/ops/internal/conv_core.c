/*
 * The convolution behind the conv2d and conv1d kernels.
 *
 * Output positions (flattened over batch, out.h, out.w) go in blocks of FTTE_CONV_POSITIONS.
 * The block's im2col patches [kernel_h][kernel_w][in.c] sit in scratch, zeros where a window
 * hangs over the input, so the inner loops are plain runs over row_length floats with no
 * padding tests. They are blocked 4 positions x 4 output channels: per step 4 patch loads
 * and 4 weight loads feed 16 multiply-accumulates. Positions past the batch in the last
 * block get zero patches and zero gradients, so they add nothing and are never stored.
 */
#include "conv_core.h"

#include "ftte_kernels.h"

/* The blocked loops below are written out for exactly 4 positions. */
typedef char ftte_conv_positions_must_be_4[FTTE_CONV_POSITIONS == 4 ? 1 : -1];

#define BLOCK 4 /* output channels per pass */


ftte_status ftte_conv_check(const ftte_layer *layer, int32_t op, int32_t n, ftte_slice slice) {
    if (layer == NULL || layer->op != op) return FTTE_ERR_ARG;
    ftte_status status = ftte_layer_validate(layer);
    if (status != FTTE_OK) return status;
    /* No board holds a larger kernel; the bound keeps all index arithmetic far from overflow
     * (padding < kernel) and the conv scratch bytes inside an int32. */
    if ((int64_t)layer->kernel_h * layer->kernel_w > FTTE_CONV_MAX_ROW) return FTTE_ERR_SHAPE;
    if (n <= 0 || slice.begin < 0 || slice.count < 1 || slice.count > layer->out.c - slice.begin)
        return FTTE_ERR_ARG;
    /* Offsets into the batch are ptrdiff_t; refuse a batch too large to address. */
    int32_t size = ftte_shape_size(layer->in);
    if (ftte_shape_size(layer->out) > size) size = ftte_shape_size(layer->out);
    if ((int64_t)n * size > (int64_t)(PTRDIFF_MAX / (ptrdiff_t)sizeof(float))) return FTTE_ERR_ARG;
    return FTTE_OK;
}

/* Floats in one weight row (and one patch) of a checked layer; 0 when the scratch bytes
 * would not fit an int32. */
static int32_t row_length(const ftte_layer *l) {
    const int64_t len = (int64_t)l->kernel_h * l->kernel_w * l->in.c;
    return len <= FTTE_CONV_MAX_ROW ? (int32_t)len : 0;
}

static ftte_status check(const ftte_layer *layer, int32_t op, int32_t n, ftte_slice slice) {
    ftte_status status = ftte_conv_check(layer, op, n, slice);
    if (status != FTTE_OK) return status;
    return row_length(layer) > 0 ? FTTE_OK : FTTE_ERR_SHAPE;
}

int32_t ftte_conv_buffer_size(const ftte_layer *layer, int32_t op) {
    const ftte_slice any = {0, 1};
    if (ftte_conv_check(layer, op, 1, any) != FTTE_OK) return 0;
    return row_length(layer) * FTTE_CONV_POSITIONS * (int32_t)sizeof(float);
}

/* ---------------------------------------------------------------------------------------- */
/* Windows: im2col and its transpose                                                         */
/* ---------------------------------------------------------------------------------------- */

static void zero(float *dst, int32_t count) {
    for (int32_t i = 0; i < count; i++) dst[i] = 0.0f;
}

/* Sample b and top-left tap (y, x) of output position q's window; negative inside padding. */
typedef struct {
    int32_t b, y, x;
} window;

static window window_at(const ftte_layer *l, ptrdiff_t q) {
    const ptrdiff_t plane = (ptrdiff_t)l->out.h * l->out.w;
    const int32_t r = (int32_t)(q % plane);
    window w;
    w.b = (int32_t)(q / plane);
    w.y = r / l->out.w * l->stride_h - l->pad_top;
    w.x = r % l->out.w * l->stride_w - l->pad_left;
    return w;
}

/* Offset of input element (b, y, x, 0). */
static ptrdiff_t pixel(const ftte_layer *l, int32_t b, int32_t y, int32_t x) {
    return (((ptrdiff_t)b * l->in.h + y) * l->in.w + x) * l->in.c;
}

/* im2col: patch = the input under position q's window, zeros where it hangs over the input.
 * Within a window row the valid taps are one contiguous run of the NHWC input. */
static void load_patch(const ftte_layer *l, const float *input, ptrdiff_t q, float *patch) {
    const int32_t c = l->in.c, row = l->kernel_w * c;
    const window w = window_at(l, q);
    int32_t y_lo, y_hi, x_lo, x_hi;
    ftte_conv_taps(w.y, l->kernel_h, l->in.h, &y_lo, &y_hi);
    ftte_conv_taps(w.x, l->kernel_w, l->in.w, &x_lo, &x_hi);
    zero(patch, y_lo * row);
    for (int32_t ky = y_lo; ky < y_hi; ky++) {
        float *dst = patch + ky * row;
        const float *src = input + pixel(l, w.b, w.y + ky, w.x + x_lo);
        const int32_t run = (x_hi - x_lo) * c;
        zero(dst, x_lo * c);
        dst += x_lo * c;
        for (int32_t i = 0; i < run; i++) dst[i] = src[i];
        zero(dst + run, (l->kernel_w - x_hi) * c);
    }
    zero(patch + y_hi * row, (l->kernel_h - y_hi) * row);
}

/* col2im: grad_input += the patch gradient of position q; taps over the padding drop out. */
static void add_patch(const ftte_layer *l, float *grad_input, ptrdiff_t q, const float *patch) {
    const int32_t c = l->in.c, row = l->kernel_w * c;
    const window w = window_at(l, q);
    int32_t y_lo, y_hi, x_lo, x_hi;
    ftte_conv_taps(w.y, l->kernel_h, l->in.h, &y_lo, &y_hi);
    ftte_conv_taps(w.x, l->kernel_w, l->in.w, &x_lo, &x_hi);
    for (int32_t ky = y_lo; ky < y_hi; ky++) {
        float *dst = grad_input + pixel(l, w.b, w.y + ky, w.x + x_lo);
        const float *src = patch + ky * row + x_lo * c;
        const int32_t run = (x_hi - x_lo) * c;
        for (int32_t i = 0; i < run; i++) dst[i] += src[i];
    }
}

/* The block's patches at positions q0 .. q0 + 3 into scratch ([4][len]). */
static void load_block(const ftte_layer *l, const float *input, ptrdiff_t q0, ptrdiff_t total,
                       int32_t len, float *scratch) {
    for (int32_t k = 0; k < FTTE_CONV_POSITIONS; k++) {
        if (q0 + k < total)
            load_patch(l, input, q0 + k, scratch + k * len);
        else
            zero(scratch + k * len, len);
    }
}

/* g[k][j] = grad_output[q0 + k][channel + j] for j < width; zero elsewhere. */
static void load_grads(const float *grad_output, int32_t out_c, ptrdiff_t q0, ptrdiff_t total,
                       int32_t channel, int32_t width, float g[4][BLOCK]) {
    for (int32_t k = 0; k < FTTE_CONV_POSITIONS; k++) {
        for (int32_t j = 0; j < BLOCK; j++) g[k][j] = 0.0f;
        if (q0 + k >= total) continue;
        const float *src = grad_output + (q0 + k) * out_c + channel;
        for (int32_t j = 0; j < width; j++) g[k][j] = src[j];
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Forward                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* acc[k][j] = patch k . weight row j for the 4 patches at p and 4 rows at w (len apart). */
static void dot_4x4(const float *restrict p, int32_t len, const float *restrict w,
                    float acc[4][BLOCK]) {
    const float *p0 = p, *p1 = p0 + len, *p2 = p1 + len, *p3 = p2 + len;
    const float *w0 = w, *w1 = w0 + len, *w2 = w1 + len, *w3 = w2 + len;
    float a00 = 0.0f, a01 = 0.0f, a02 = 0.0f, a03 = 0.0f, a10 = 0.0f, a11 = 0.0f, a12 = 0.0f,
          a13 = 0.0f, a20 = 0.0f, a21 = 0.0f, a22 = 0.0f, a23 = 0.0f, a30 = 0.0f, a31 = 0.0f,
          a32 = 0.0f, a33 = 0.0f;
    for (int32_t i = 0; i < len; i++) {
        const float x0 = p0[i], x1 = p1[i], x2 = p2[i], x3 = p3[i];
        float v = w0[i];
        FTTE_MAC(a00, x0, v); FTTE_MAC(a10, x1, v); FTTE_MAC(a20, x2, v); FTTE_MAC(a30, x3, v);
        v = w1[i];
        FTTE_MAC(a01, x0, v); FTTE_MAC(a11, x1, v); FTTE_MAC(a21, x2, v); FTTE_MAC(a31, x3, v);
        v = w2[i];
        FTTE_MAC(a02, x0, v); FTTE_MAC(a12, x1, v); FTTE_MAC(a22, x2, v); FTTE_MAC(a32, x3, v);
        v = w3[i];
        FTTE_MAC(a03, x0, v); FTTE_MAC(a13, x1, v); FTTE_MAC(a23, x2, v); FTTE_MAC(a33, x3, v);
    }
    acc[0][0] = a00; acc[0][1] = a01; acc[0][2] = a02; acc[0][3] = a03;
    acc[1][0] = a10; acc[1][1] = a11; acc[1][2] = a12; acc[1][3] = a13;
    acc[2][0] = a20; acc[2][1] = a21; acc[2][2] = a22; acc[2][3] = a23;
    acc[3][0] = a30; acc[3][1] = a31; acc[3][2] = a32; acc[3][3] = a33;
}

/* acc[k][0] = patch k . the weight row at w: the slice's last count % 4 channels. */
static void dot_4x1(const float *restrict p, int32_t len, const float *restrict w,
                    float acc[4][BLOCK]) {
    const float *p0 = p, *p1 = p0 + len, *p2 = p1 + len, *p3 = p2 + len;
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    for (int32_t i = 0; i < len; i++) {
        const float v = w[i];
        FTTE_MAC(a0, p0[i], v); FTTE_MAC(a1, p1[i], v);
        FTTE_MAC(a2, p2[i], v); FTTE_MAC(a3, p3[i], v);
    }
    acc[0][0] = a0; acc[1][0] = a1; acc[2][0] = a2; acc[3][0] = a3;
}

/* output[q0 + k][channel + j] = bias[j] + acc[k][j] for the block's positions in the batch. */
static void store_block(float *output, int32_t out_c, ptrdiff_t q0, ptrdiff_t total,
                        int32_t channel, int32_t width, const float *bias,
                        float acc[4][BLOCK]) {
    for (int32_t k = 0; k < FTTE_CONV_POSITIONS && q0 + k < total; k++) {
        float *dst = output + (q0 + k) * out_c + channel;
        for (int32_t j = 0; j < width; j++) dst[j] = (bias != NULL ? bias[j] : 0.0f) + acc[k][j];
    }
}

ftte_status ftte_conv_forward(const ftte_layer *layer, int32_t op, int32_t n, ftte_slice slice,
                              const float *input, const float *weights, const float *bias,
                              float *output, float *scratch) {
    ftte_status status = check(layer, op, n, slice);
    if (status != FTTE_OK) return status;
    if (input == NULL || weights == NULL || output == NULL || scratch == NULL) return FTTE_ERR_ARG;
    const int32_t len = row_length(layer), out_c = layer->out.c;
    const ptrdiff_t total = (ptrdiff_t)n * layer->out.h * layer->out.w;
    float acc[4][BLOCK];
    for (ptrdiff_t q0 = 0; q0 < total; q0 += FTTE_CONV_POSITIONS) {
        load_block(layer, input, q0, total, len, scratch);
        int32_t j = 0;
        for (; j + BLOCK <= slice.count; j += BLOCK) {
            dot_4x4(scratch, len, weights + (ptrdiff_t)j * len, acc);
            store_block(output, out_c, q0, total, slice.begin + j, BLOCK,
                        bias != NULL ? bias + j : NULL, acc);
        }
        for (; j < slice.count; j++) {
            dot_4x1(scratch, len, weights + (ptrdiff_t)j * len, acc);
            store_block(output, out_c, q0, total, slice.begin + j, 1,
                        bias != NULL ? bias + j : NULL, acc);
        }
    }
    return FTTE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Backward to the input                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* patch k += sum_j g[k][j] * weight row j, for the 4 patch gradients at p and 4 rows at w. */
static void patch_grad_4x4(float *restrict p, int32_t len, const float *restrict w,
                           float g[4][BLOCK]) {
    float *p0 = p, *p1 = p0 + len, *p2 = p1 + len, *p3 = p2 + len;
    const float *w0 = w, *w1 = w0 + len, *w2 = w1 + len, *w3 = w2 + len;
    const float g00 = g[0][0], g01 = g[0][1], g02 = g[0][2], g03 = g[0][3];
    const float g10 = g[1][0], g11 = g[1][1], g12 = g[1][2], g13 = g[1][3];
    const float g20 = g[2][0], g21 = g[2][1], g22 = g[2][2], g23 = g[2][3];
    const float g30 = g[3][0], g31 = g[3][1], g32 = g[3][2], g33 = g[3][3];
    for (int32_t i = 0; i < len; i++) {
        float s0 = p0[i], s1 = p1[i], s2 = p2[i], s3 = p3[i];
        float v = w0[i];
        FTTE_MAC(s0, g00, v); FTTE_MAC(s1, g10, v); FTTE_MAC(s2, g20, v); FTTE_MAC(s3, g30, v);
        v = w1[i];
        FTTE_MAC(s0, g01, v); FTTE_MAC(s1, g11, v); FTTE_MAC(s2, g21, v); FTTE_MAC(s3, g31, v);
        v = w2[i];
        FTTE_MAC(s0, g02, v); FTTE_MAC(s1, g12, v); FTTE_MAC(s2, g22, v); FTTE_MAC(s3, g32, v);
        v = w3[i];
        FTTE_MAC(s0, g03, v); FTTE_MAC(s1, g13, v); FTTE_MAC(s2, g23, v); FTTE_MAC(s3, g33, v);
        p0[i] = s0; p1[i] = s1; p2[i] = s2; p3[i] = s3;
    }
}

/* patch k += g[k][0] * the weight row at w. */
static void patch_grad_4x1(float *restrict p, int32_t len, const float *restrict w,
                           float g[4][BLOCK]) {
    float *p0 = p, *p1 = p0 + len, *p2 = p1 + len, *p3 = p2 + len;
    const float g0 = g[0][0], g1 = g[1][0], g2 = g[2][0], g3 = g[3][0];
    for (int32_t i = 0; i < len; i++) {
        const float v = w[i];
        FTTE_MAC(p0[i], g0, v); FTTE_MAC(p1[i], g1, v);
        FTTE_MAC(p2[i], g2, v); FTTE_MAC(p3[i], g3, v);
    }
}

ftte_status ftte_conv_backward_input(const ftte_layer *layer, int32_t op, int32_t n,
                                     ftte_slice slice, const float *grad_output,
                                     const float *weights, float *grad_input, float *scratch) {
    ftte_status status = check(layer, op, n, slice);
    if (status != FTTE_OK) return status;
    if (grad_output == NULL || weights == NULL || grad_input == NULL || scratch == NULL)
        return FTTE_ERR_ARG;
    const int32_t len = row_length(layer), out_c = layer->out.c;
    const ptrdiff_t total = (ptrdiff_t)n * layer->out.h * layer->out.w;
    float g[4][BLOCK];
    for (ptrdiff_t q0 = 0; q0 < total; q0 += FTTE_CONV_POSITIONS) {
        zero(scratch, FTTE_CONV_POSITIONS * len);
        int32_t j = 0;
        for (; j + BLOCK <= slice.count; j += BLOCK) {
            load_grads(grad_output, out_c, q0, total, slice.begin + j, BLOCK, g);
            patch_grad_4x4(scratch, len, weights + (ptrdiff_t)j * len, g);
        }
        for (; j < slice.count; j++) {
            load_grads(grad_output, out_c, q0, total, slice.begin + j, 1, g);
            patch_grad_4x1(scratch, len, weights + (ptrdiff_t)j * len, g);
        }
        for (int32_t k = 0; k < FTTE_CONV_POSITIONS && q0 + k < total; k++)
            add_patch(layer, grad_input, q0 + k, scratch + k * len);
    }
    return FTTE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Backward to the weights                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* Weight-gradient row j at d += sum_k g[k][j] * patch k, for 4 rows and the 4 patches at p. */
static void weight_grad_4x4(float *restrict d, int32_t len, const float *restrict p,
                            float g[4][BLOCK]) {
    float *d0 = d, *d1 = d0 + len, *d2 = d1 + len, *d3 = d2 + len;
    const float *p0 = p, *p1 = p0 + len, *p2 = p1 + len, *p3 = p2 + len;
    const float g00 = g[0][0], g01 = g[0][1], g02 = g[0][2], g03 = g[0][3];
    const float g10 = g[1][0], g11 = g[1][1], g12 = g[1][2], g13 = g[1][3];
    const float g20 = g[2][0], g21 = g[2][1], g22 = g[2][2], g23 = g[2][3];
    const float g30 = g[3][0], g31 = g[3][1], g32 = g[3][2], g33 = g[3][3];
    for (int32_t i = 0; i < len; i++) {
        const float x0 = p0[i], x1 = p1[i], x2 = p2[i], x3 = p3[i];
        float s0 = d0[i], s1 = d1[i], s2 = d2[i], s3 = d3[i];
        FTTE_MAC(s0, g00, x0); FTTE_MAC(s1, g01, x0); FTTE_MAC(s2, g02, x0); FTTE_MAC(s3, g03, x0);
        FTTE_MAC(s0, g10, x1); FTTE_MAC(s1, g11, x1); FTTE_MAC(s2, g12, x1); FTTE_MAC(s3, g13, x1);
        FTTE_MAC(s0, g20, x2); FTTE_MAC(s1, g21, x2); FTTE_MAC(s2, g22, x2); FTTE_MAC(s3, g23, x2);
        FTTE_MAC(s0, g30, x3); FTTE_MAC(s1, g31, x3); FTTE_MAC(s2, g32, x3); FTTE_MAC(s3, g33, x3);
        d0[i] = s0; d1[i] = s1; d2[i] = s2; d3[i] = s3;
    }
}

/* The weight-gradient row at d += sum_k g[k][0] * patch k. */
static void weight_grad_4x1(float *restrict d, int32_t len, const float *restrict p,
                            float g[4][BLOCK]) {
    const float *p0 = p, *p1 = p0 + len, *p2 = p1 + len, *p3 = p2 + len;
    const float g0 = g[0][0], g1 = g[1][0], g2 = g[2][0], g3 = g[3][0];
    for (int32_t i = 0; i < len; i++) {
        float s = d[i];
        FTTE_MAC(s, g0, p0[i]); FTTE_MAC(s, g1, p1[i]);
        FTTE_MAC(s, g2, p2[i]); FTTE_MAC(s, g3, p3[i]);
        d[i] = s;
    }
}

ftte_status ftte_conv_backward_weight(const ftte_layer *layer, int32_t op, int32_t n,
                                      ftte_slice slice, const float *input,
                                      const float *grad_output, float *grad_weights,
                                      float *scratch) {
    ftte_status status = check(layer, op, n, slice);
    if (status != FTTE_OK) return status;
    if (input == NULL || grad_output == NULL || grad_weights == NULL || scratch == NULL)
        return FTTE_ERR_ARG;
    const int32_t len = row_length(layer), out_c = layer->out.c;
    const ptrdiff_t total = (ptrdiff_t)n * layer->out.h * layer->out.w;
    float g[4][BLOCK];
    for (ptrdiff_t q0 = 0; q0 < total; q0 += FTTE_CONV_POSITIONS) {
        load_block(layer, input, q0, total, len, scratch);
        int32_t j = 0;
        for (; j + BLOCK <= slice.count; j += BLOCK) {
            load_grads(grad_output, out_c, q0, total, slice.begin + j, BLOCK, g);
            weight_grad_4x4(grad_weights + (ptrdiff_t)j * len, len, scratch, g);
        }
        for (; j < slice.count; j++) {
            load_grads(grad_output, out_c, q0, total, slice.begin + j, 1, g);
            weight_grad_4x1(grad_weights + (ptrdiff_t)j * len, len, scratch, g);
        }
    }
    return FTTE_OK;
}
