/*
 * Depthwise conv2d backward to the input (ftte_kernels.h): each output pixel scatters its
 * gradient, four channels at a time, over its window's taps, the tap ranges clamped to the
 * input beforehand (no padding test in the inner loop). Only the slice's channels of
 * grad_input change.
 */
#include "ftte_kernels.h"
#include "internal/conv_core.h"

/* A pixel's valid taps: gi is grad_input at the first one (channel 0), w the slice's weights
 * at the first one; rows x cols taps. */
typedef struct {
    float *gi;
    const float *w;
    int32_t rows, cols;
} taps;

/* grad_input of the 4 channels at t.gi + j += g[j] * their weights (rows at t.w + j*K). */
static void scatter_4(const ftte_layer *l, taps t, const float *g) {
    const int32_t c = l->in.c, kw = l->kernel_w, k = l->kernel_h * kw;
    const float g0 = g[0], g1 = g[1], g2 = g[2], g3 = g[3];
    for (int32_t r = 0; r < t.rows; r++) {
        float *x = t.gi + (ptrdiff_t)r * l->in.w * c;
        const float *w0 = t.w + r * kw, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
        for (int32_t i = 0; i < t.cols; i++) {
            float *xi = x + (ptrdiff_t)i * c;
            FTTE_MAC(xi[0], g0, w0[i]); FTTE_MAC(xi[1], g1, w1[i]);
            FTTE_MAC(xi[2], g2, w2[i]); FTTE_MAC(xi[3], g3, w3[i]);
        }
    }
}

/* grad_input of the single channel at t.gi += g * its weights (row at t.w). */
static void scatter_1(const ftte_layer *l, taps t, float g) {
    const int32_t c = l->in.c, kw = l->kernel_w;
    for (int32_t r = 0; r < t.rows; r++) {
        float *x = t.gi + (ptrdiff_t)r * l->in.w * c;
        const float *w = t.w + r * kw;
        for (int32_t i = 0; i < t.cols; i++) FTTE_MAC(x[(ptrdiff_t)i * c], g, w[i]);
    }
}

/* Scatters the slice's channels of one output pixel's gradient g (full channel row). */
static void pixel(const ftte_layer *l, ftte_slice slice, taps t, const float *g) {
    const int32_t k = l->kernel_h * l->kernel_w;
    const taps t0 = t;
    int32_t j = 0;
    for (; j + 4 <= slice.count; j += 4) {
        t.gi = t0.gi + slice.begin + j;
        t.w = t0.w + (ptrdiff_t)j * k;
        scatter_4(l, t, g + slice.begin + j);
    }
    for (; j < slice.count; j++) {
        t.gi = t0.gi + slice.begin + j;
        t.w = t0.w + (ptrdiff_t)j * k;
        scatter_1(l, t, g[slice.begin + j]);
    }
}

ftte_status ftte_depthwise_conv2d_backward_input(const ftte_layer *layer, int32_t n,
                                                 ftte_slice slice, const float *grad_output,
                                                 const float *weights, float *grad_input) {
    ftte_status status = ftte_conv_check(layer, FTTE_OP_DEPTHWISE_CONV2D, n, slice);
    if (status != FTTE_OK) return status;
    if (grad_output == NULL || weights == NULL || grad_input == NULL) return FTTE_ERR_ARG;
    const ftte_shape in = layer->in, out = layer->out;
    for (int32_t b = 0; b < n; b++) {
        for (int32_t oy = 0; oy < out.h; oy++) {
            const int32_t y = oy * layer->stride_h - layer->pad_top;
            int32_t y_lo, y_hi;
            ftte_conv_taps(y, layer->kernel_h, in.h, &y_lo, &y_hi);
            for (int32_t ox = 0; ox < out.w; ox++) {
                const int32_t x = ox * layer->stride_w - layer->pad_left;
                int32_t x_lo, x_hi;
                ftte_conv_taps(x, layer->kernel_w, in.w, &x_lo, &x_hi);
                taps t;
                t.gi = grad_input + (((ptrdiff_t)b * in.h + y + y_lo) * in.w + x + x_lo) * in.c;
                t.w = weights + y_lo * layer->kernel_w + x_lo;
                t.rows = y_hi - y_lo;
                t.cols = x_hi - x_lo;
                pixel(layer, slice, t,
                      grad_output + (((ptrdiff_t)b * out.h + oy) * out.w + ox) * out.c);
            }
        }
    }
    return FTTE_OK;
}

/* No scratch: the gradient goes straight into grad_input. */
int32_t ftte_depthwise_conv2d_backward_input_get_buffer_size(const ftte_layer *layer,
                                                             int32_t n) {
    (void)layer;
    (void)n;
    return 0;
}
