/*
 * The convolution behind the conv2d and conv1d kernels.
 *
 * Output positions (flattened over batch, out.h, out.w) go in passes of FTTE_CONV_POSITIONS.
 * A position's window is kernel_h rows of kernel_w * in.c contiguous floats: used in place
 * when the window lies inside the input (most positions), else as a zero-padded copy in its
 * scratch slot (im2col of that position only). The inner loops run along one window row for
 * 4 positions x 4 output channels: per step 4 window loads and 4 weight loads feed 16
 * multiply-accumulates, with no padding test.
 */
#include "conv_core.h"

#include <string.h>

#include "ftte_kernels.h"

/* The blocked loops below are written out for exactly 4 positions. */
typedef char ftte_conv_positions_must_be_4[FTTE_CONV_POSITIONS == 4 ? 1 : -1];

#define BLOCK 4 /* output channels per pass */

ftte_status ftte_conv_check(const ftte_layer *layer, int32_t op, int32_t n, ftte_slice slice) {
    if (layer == NULL) return FTTE_ERR_ARG;
    if (layer->op != op) return FTTE_ERR_UNSUPPORTED;
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
/* Windows                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* memset/memcpy: GCC emits them for such loops anyway, and the C library's are the fastest. */
static void zero(float *dst, int32_t count) {
    if (count > 0) memset(dst, 0, (size_t)count * sizeof(float)); /* all-zero bits are 0.0f */
}

/* An output position (sample b, row oy, column ox), stepped through in batch order. */
typedef struct {
    int32_t b, oy, ox;
} position;

static void next(const ftte_layer *l, position *p) {
    if (++p->ox < l->out.w) return;
    p->ox = 0;
    if (++p->oy < l->out.h) return;
    p->oy = 0;
    p->b++;
}

/* Sample b and top-left tap (y, x) of a position's window; negative inside the padding. */
typedef struct {
    int32_t b, y, x;
} window;

static window window_of(const ftte_layer *l, position p) {
    window w;
    w.b = p.b;
    w.y = p.oy * l->stride_h - l->pad_top;
    w.x = p.ox * l->stride_w - l->pad_left;
    return w;
}

/* Offset of input element (b, y, x, 0). */
static ptrdiff_t pixel(const ftte_layer *l, int32_t b, int32_t y, int32_t x) {
    return (((ptrdiff_t)b * l->in.h + y) * l->in.w + x) * l->in.c;
}

/* Whether the whole window lies inside the input, so that it can be used in place. */
static int inside(const ftte_layer *l, window w) {
    return w.y >= 0 && w.x >= 0 && w.y <= l->in.h - l->kernel_h && w.x <= l->in.w - l->kernel_w;
}

/* im2col: patch [kernel_h][kernel_w][in.c] = the input under window w, zeros where it hangs
 * over the input. Within a window row the valid taps are one contiguous run of the input. */
static void load_patch(const ftte_layer *l, const float *input, window w, float *patch) {
    const int32_t c = l->in.c, row = l->kernel_w * c;
    int32_t y_lo, y_hi, x_lo, x_hi;
    ftte_conv_taps(w.y, l->kernel_h, l->in.h, &y_lo, &y_hi);
    ftte_conv_taps(w.x, l->kernel_w, l->in.w, &x_lo, &x_hi);
    zero(patch, y_lo * row);
    for (int32_t ky = y_lo; ky < y_hi; ky++) {
        float *dst = patch + ky * row;
        const int32_t run = (x_hi - x_lo) * c;
        zero(dst, x_lo * c);
        memcpy(dst + x_lo * c, input + pixel(l, w.b, w.y + ky, w.x + x_lo),
               (size_t)run * sizeof(float));
        zero(dst + x_lo * c + run, (l->kernel_w - x_hi) * c);
    }
    zero(patch + y_hi * row, (l->kernel_h - y_hi) * row);
}

/* col2im: grad_input += the patch gradient of window w; taps over the padding drop out. */
static void add_patch(const ftte_layer *l, float *grad_input, window w, const float *patch) {
    const int32_t c = l->in.c, row = l->kernel_w * c;
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

/* The windows of a pass's 4 positions: row r of window k is at row[k] + r * step[k]. */
typedef struct {
    const float *row[4];
    ptrdiff_t step[4];
} views;

/* The same for windows the kernel adds to (the backward pass to the input); win[k] is where
 * a window summed in scratch goes back to. */
typedef struct {
    float *row[4];
    ptrdiff_t step[4];
    window win[4];
} write_views;

/* Windows of the `count` positions from *p on (advanced past them), read from the input: in
 * place when inside it, else copied into scratch slot k ([4][len]); zeros for k >= count. */
static views read_views(const ftte_layer *l, const float *input, position *p, int32_t count,
                        int32_t len, float *scratch) {
    views v;
    for (int32_t k = 0; k < FTTE_CONV_POSITIONS; k++) {
        float *slot = scratch + k * len;
        v.row[k] = slot;
        v.step[k] = (ptrdiff_t)l->kernel_w * l->in.c;
        if (k >= count) {
            zero(slot, len);
            continue;
        }
        const window w = window_of(l, *p);
        next(l, p);
        if (inside(l, w)) {
            v.row[k] = input + pixel(l, w.b, w.y, w.x);
            v.step[k] = (ptrdiff_t)l->in.w * l->in.c;
        } else {
            load_patch(l, input, w, slot);
        }
    }
    return v;
}

/* Windows of the `count` positions from *p on (advanced past them) to add gradients to:
 * grad_input itself when inside the input, else zeroed scratch slot k, added back by
 * add_patch (zeros for k >= count). */
static write_views grad_views(const ftte_layer *l, float *grad_input, position *p,
                              int32_t count, int32_t len, float *scratch) {
    write_views v;
    for (int32_t k = 0; k < FTTE_CONV_POSITIONS; k++) {
        v.win[k] = window_of(l, *p);
        if (k < count) next(l, p);
        if (k < count && inside(l, v.win[k])) {
            v.row[k] = grad_input + pixel(l, v.win[k].b, v.win[k].y, v.win[k].x);
            v.step[k] = (ptrdiff_t)l->in.w * l->in.c;
        } else {
            v.row[k] = scratch + k * len;
            v.step[k] = (ptrdiff_t)l->kernel_w * l->in.c;
            zero(v.row[k], len);
        }
    }
    return v;
}

/* The gradient of positions past the batch. */
static const float no_grads[BLOCK] = {0.0f, 0.0f, 0.0f, 0.0f};

/* g[k] = the gradient of position q0 + k from `channel` on; no_grads for k >= count. */
static void grad_rows(const float *grad_output, int32_t out_c, ptrdiff_t q0, int32_t count,
                      int32_t channel, const float *g[4]) {
    for (int32_t k = 0; k < FTTE_CONV_POSITIONS; k++)
        g[k] = k < count ? grad_output + (q0 + k) * out_c + channel : no_grads;
}

/* Positions in the pass starting at q0. */
static int32_t pass_count(ptrdiff_t q0, ptrdiff_t total) {
    return total - q0 < FTTE_CONV_POSITIONS ? (int32_t)(total - q0) : FTTE_CONV_POSITIONS;
}

/* ---------------------------------------------------------------------------------------- */
/* Forward                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* out[k][j] = bias[j] + window k . weight row j, for the 4 windows of v and the 4 weight rows
 * at w (row_length apart; window row r meets weights [r * run, (r + 1) * run)). */
static void dot_4x4(const ftte_layer *l, const views *v, const float *w, const float *bias,
                    float *const out[4]) {
    const int32_t run = l->kernel_w * l->in.c, len = l->kernel_h * run;
    const float b0 = bias ? bias[0] : 0.0f, b1 = bias ? bias[1] : 0.0f,
                b2 = bias ? bias[2] : 0.0f, b3 = bias ? bias[3] : 0.0f;
    float a00 = b0, a01 = b1, a02 = b2, a03 = b3, a10 = b0, a11 = b1, a12 = b2, a13 = b3;
    float a20 = b0, a21 = b1, a22 = b2, a23 = b3, a30 = b0, a31 = b1, a32 = b2, a33 = b3;
    for (int32_t r = 0; r < l->kernel_h; r++) {
        const float *p0 = v->row[0] + r * v->step[0], *p1 = v->row[1] + r * v->step[1];
        const float *p2 = v->row[2] + r * v->step[2], *p3 = v->row[3] + r * v->step[3];
        const float *w0 = w + r * run, *w1 = w0 + len, *w2 = w1 + len, *w3 = w2 + len;
        for (int32_t i = 0; i < run; i++) {
            const float x0 = p0[i], x1 = p1[i], x2 = p2[i], x3 = p3[i];
            float c = w0[i];
            FTTE_MAC(a00, x0, c); FTTE_MAC(a10, x1, c); FTTE_MAC(a20, x2, c); FTTE_MAC(a30, x3, c);
            c = w1[i];
            FTTE_MAC(a01, x0, c); FTTE_MAC(a11, x1, c); FTTE_MAC(a21, x2, c); FTTE_MAC(a31, x3, c);
            c = w2[i];
            FTTE_MAC(a02, x0, c); FTTE_MAC(a12, x1, c); FTTE_MAC(a22, x2, c); FTTE_MAC(a32, x3, c);
            c = w3[i];
            FTTE_MAC(a03, x0, c); FTTE_MAC(a13, x1, c); FTTE_MAC(a23, x2, c); FTTE_MAC(a33, x3, c);
        }
    }
    out[0][0] = a00; out[0][1] = a01; out[0][2] = a02; out[0][3] = a03;
    out[1][0] = a10; out[1][1] = a11; out[1][2] = a12; out[1][3] = a13;
    out[2][0] = a20; out[2][1] = a21; out[2][2] = a22; out[2][3] = a23;
    out[3][0] = a30; out[3][1] = a31; out[3][2] = a32; out[3][3] = a33;
}

/* out[k][0] = bias + window k . the weight row at w: the slice's last count % 4 channels. */
static void dot_4x1(const ftte_layer *l, const views *v, const float *w, const float *bias,
                    float *const out[4]) {
    const int32_t run = l->kernel_w * l->in.c;
    float a0 = bias ? bias[0] : 0.0f, a1 = a0, a2 = a0, a3 = a0;
    for (int32_t r = 0; r < l->kernel_h; r++) {
        const float *p0 = v->row[0] + r * v->step[0], *p1 = v->row[1] + r * v->step[1];
        const float *p2 = v->row[2] + r * v->step[2], *p3 = v->row[3] + r * v->step[3];
        const float *wr = w + r * run;
        for (int32_t i = 0; i < run; i++) {
            const float c = wr[i];
            FTTE_MAC(a0, p0[i], c); FTTE_MAC(a1, p1[i], c);
            FTTE_MAC(a2, p2[i], c); FTTE_MAC(a3, p3[i], c);
        }
    }
    out[0][0] = a0; out[1][0] = a1; out[2][0] = a2; out[3][0] = a3;
}

ftte_status ftte_conv_forward(const ftte_layer *layer, int32_t op, int32_t n, ftte_slice slice,
                              const float *input, const float *weights, const float *bias,
                              float *output, float *scratch) {
    ftte_status status = check(layer, op, n, slice);
    if (status != FTTE_OK) return status;
    if (input == NULL || weights == NULL || output == NULL || scratch == NULL) return FTTE_ERR_ARG;
    const int32_t len = row_length(layer), out_c = layer->out.c;
    const ptrdiff_t total = (ptrdiff_t)n * layer->out.h * layer->out.w;
    position p = {0, 0, 0};
    for (ptrdiff_t q0 = 0; q0 < total; q0 += FTTE_CONV_POSITIONS) {
        const int32_t count = pass_count(q0, total);
        views v = read_views(layer, input, &p, count, len, scratch);
        float *row[4], *out[4];
        for (int32_t k = 0; k < FTTE_CONV_POSITIONS; k++) {
            /* A position past the batch repeats the last one: same result, same place. */
            const int32_t q = k < count ? k : count - 1;
            v.row[k] = v.row[q];
            v.step[k] = v.step[q];
            row[k] = output + (q0 + q) * out_c + slice.begin;
        }
        int32_t j = 0;
        for (; j + BLOCK <= slice.count; j += BLOCK) {
            for (int32_t k = 0; k < FTTE_CONV_POSITIONS; k++) out[k] = row[k] + j;
            dot_4x4(layer, &v, weights + (ptrdiff_t)j * len, bias != NULL ? bias + j : NULL, out);
        }
        for (; j < slice.count; j++) {
            for (int32_t k = 0; k < FTTE_CONV_POSITIONS; k++) out[k] = row[k] + j;
            dot_4x1(layer, &v, weights + (ptrdiff_t)j * len, bias != NULL ? bias + j : NULL, out);
        }
    }
    return FTTE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Backward to the input                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* window k += sum_j g[k][j] * weight row j, for the 4 windows of v and 4 weight rows at w.
 * No restrict: neighbouring windows overlap in grad_input, and each step's loads come before
 * its stores. */
static void patch_grad_4x4(const ftte_layer *l, const write_views *v, const float *w,
                           const float *const g[4]) {
    const int32_t run = l->kernel_w * l->in.c, len = l->kernel_h * run;
    const float g00 = g[0][0], g01 = g[0][1], g02 = g[0][2], g03 = g[0][3];
    const float g10 = g[1][0], g11 = g[1][1], g12 = g[1][2], g13 = g[1][3];
    const float g20 = g[2][0], g21 = g[2][1], g22 = g[2][2], g23 = g[2][3];
    const float g30 = g[3][0], g31 = g[3][1], g32 = g[3][2], g33 = g[3][3];
    for (int32_t r = 0; r < l->kernel_h; r++) {
        float *p0 = v->row[0] + r * v->step[0], *p1 = v->row[1] + r * v->step[1];
        float *p2 = v->row[2] + r * v->step[2], *p3 = v->row[3] + r * v->step[3];
        const float *w0 = w + r * run, *w1 = w0 + len, *w2 = w1 + len, *w3 = w2 + len;
        for (int32_t i = 0; i < run; i++) {
            float s0 = p0[i], s1 = p1[i], s2 = p2[i], s3 = p3[i];
            float c = w0[i];
            FTTE_MAC(s0, g00, c); FTTE_MAC(s1, g10, c); FTTE_MAC(s2, g20, c); FTTE_MAC(s3, g30, c);
            c = w1[i];
            FTTE_MAC(s0, g01, c); FTTE_MAC(s1, g11, c); FTTE_MAC(s2, g21, c); FTTE_MAC(s3, g31, c);
            c = w2[i];
            FTTE_MAC(s0, g02, c); FTTE_MAC(s1, g12, c); FTTE_MAC(s2, g22, c); FTTE_MAC(s3, g32, c);
            c = w3[i];
            FTTE_MAC(s0, g03, c); FTTE_MAC(s1, g13, c); FTTE_MAC(s2, g23, c); FTTE_MAC(s3, g33, c);
            p0[i] = s0; p1[i] = s1; p2[i] = s2; p3[i] = s3;
        }
    }
}

/* window k += g[k][0] * the weight row at w. */
static void patch_grad_4x1(const ftte_layer *l, const write_views *v, const float *w,
                           const float *const g[4]) {
    const int32_t run = l->kernel_w * l->in.c;
    const float g0 = g[0][0], g1 = g[1][0], g2 = g[2][0], g3 = g[3][0];
    for (int32_t r = 0; r < l->kernel_h; r++) {
        float *p0 = v->row[0] + r * v->step[0], *p1 = v->row[1] + r * v->step[1];
        float *p2 = v->row[2] + r * v->step[2], *p3 = v->row[3] + r * v->step[3];
        const float *wr = w + r * run;
        for (int32_t i = 0; i < run; i++) {
            const float c = wr[i];
            float s0 = p0[i], s1 = p1[i], s2 = p2[i], s3 = p3[i];
            FTTE_MAC(s0, g0, c); FTTE_MAC(s1, g1, c); FTTE_MAC(s2, g2, c); FTTE_MAC(s3, g3, c);
            p0[i] = s0; p1[i] = s1; p2[i] = s2; p3[i] = s3;
        }
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
    position p = {0, 0, 0};
    for (ptrdiff_t q0 = 0; q0 < total; q0 += FTTE_CONV_POSITIONS) {
        const int32_t count = pass_count(q0, total);
        const write_views v = grad_views(layer, grad_input, &p, count, len, scratch);
        const float *g[4];
        int32_t j = 0;
        for (; j + BLOCK <= slice.count; j += BLOCK) {
            grad_rows(grad_output, out_c, q0, count, slice.begin + j, g);
            patch_grad_4x4(layer, &v, weights + (ptrdiff_t)j * len, g);
        }
        for (; j < slice.count; j++) {
            grad_rows(grad_output, out_c, q0, count, slice.begin + j, g);
            patch_grad_4x1(layer, &v, weights + (ptrdiff_t)j * len, g);
        }
        /* Windows that hang over the input were summed in scratch: add their inside taps. */
        for (int32_t k = 0; k < count; k++)
            if (v.row[k] == scratch + k * len) add_patch(layer, grad_input, v.win[k], v.row[k]);
    }
    return FTTE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Backward to the weights                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* Weight-gradient row j at d += sum_k g[k][j] * window k, for 4 rows and the 4 windows of v. */
static void weight_grad_4x4(const ftte_layer *l, const views *v, const float *const g[4],
                            float *restrict d) {
    const int32_t run = l->kernel_w * l->in.c, len = l->kernel_h * run;
    const float g00 = g[0][0], g01 = g[0][1], g02 = g[0][2], g03 = g[0][3];
    const float g10 = g[1][0], g11 = g[1][1], g12 = g[1][2], g13 = g[1][3];
    const float g20 = g[2][0], g21 = g[2][1], g22 = g[2][2], g23 = g[2][3];
    const float g30 = g[3][0], g31 = g[3][1], g32 = g[3][2], g33 = g[3][3];
    for (int32_t r = 0; r < l->kernel_h; r++) {
        const float *p0 = v->row[0] + r * v->step[0], *p1 = v->row[1] + r * v->step[1];
        const float *p2 = v->row[2] + r * v->step[2], *p3 = v->row[3] + r * v->step[3];
        float *d0 = d + r * run, *d1 = d0 + len, *d2 = d1 + len, *d3 = d2 + len;
        for (int32_t i = 0; i < run; i++) {
            const float x0 = p0[i], x1 = p1[i], x2 = p2[i], x3 = p3[i];
            float s0 = d0[i], s1 = d1[i], s2 = d2[i], s3 = d3[i];
            FTTE_MAC(s0, g00, x0); FTTE_MAC(s1, g01, x0);
            FTTE_MAC(s2, g02, x0); FTTE_MAC(s3, g03, x0);
            FTTE_MAC(s0, g10, x1); FTTE_MAC(s1, g11, x1);
            FTTE_MAC(s2, g12, x1); FTTE_MAC(s3, g13, x1);
            FTTE_MAC(s0, g20, x2); FTTE_MAC(s1, g21, x2);
            FTTE_MAC(s2, g22, x2); FTTE_MAC(s3, g23, x2);
            FTTE_MAC(s0, g30, x3); FTTE_MAC(s1, g31, x3);
            FTTE_MAC(s2, g32, x3); FTTE_MAC(s3, g33, x3);
            d0[i] = s0; d1[i] = s1; d2[i] = s2; d3[i] = s3;
        }
    }
}

/* The weight-gradient row at d += sum_k g[k][0] * window k. */
static void weight_grad_4x1(const ftte_layer *l, const views *v, const float *const g[4],
                            float *restrict d) {
    const int32_t run = l->kernel_w * l->in.c;
    const float g0 = g[0][0], g1 = g[1][0], g2 = g[2][0], g3 = g[3][0];
    for (int32_t r = 0; r < l->kernel_h; r++) {
        const float *p0 = v->row[0] + r * v->step[0], *p1 = v->row[1] + r * v->step[1];
        const float *p2 = v->row[2] + r * v->step[2], *p3 = v->row[3] + r * v->step[3];
        float *dr = d + r * run;
        for (int32_t i = 0; i < run; i++) {
            float s = dr[i];
            FTTE_MAC(s, g0, p0[i]); FTTE_MAC(s, g1, p1[i]);
            FTTE_MAC(s, g2, p2[i]); FTTE_MAC(s, g3, p3[i]);
            dr[i] = s;
        }
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
    position p = {0, 0, 0};
    for (ptrdiff_t q0 = 0; q0 < total; q0 += FTTE_CONV_POSITIONS) {
        /* Positions past the batch have zero windows and zero gradients: they add nothing. */
        const int32_t count = pass_count(q0, total);
        const views v = read_views(layer, input, &p, count, len, scratch);
        const float *g[4];
        int32_t j = 0;
        for (; j + BLOCK <= slice.count; j += BLOCK) {
            grad_rows(grad_output, out_c, q0, count, slice.begin + j, g);
            weight_grad_4x4(layer, &v, g, grad_weights + (ptrdiff_t)j * len);
        }
        for (; j < slice.count; j++) {
            grad_rows(grad_output, out_c, q0, count, slice.begin + j, g);
            weight_grad_4x1(layer, &v, g, grad_weights + (ptrdiff_t)j * len);
        }
    }
    return FTTE_OK;
}
