/*
 * Depthwise conv2d forward (ftte_kernels.h). Each output pixel accumulates four channels at a
 * time in registers over its window's taps, the tap ranges clamped to the input beforehand so
 * that the inner loop has no padding test.
 */
#include "ftte_kernels.h"
#include "internal/conv_core.h"

/* A pixel's valid taps: x is the input at the first one (channel 0), w the slice's weights
 * at the first one; rows x cols taps. */
typedef struct {
    const float *x;
    const float *w;
    int32_t rows, cols;
} taps;

/* acc[j] += the window of channel j for the 4 channels at t.x + j (weight rows at t.w + j*K). */
static void window_4(const ftte_layer *l, taps t, float acc[4]) {
    const int32_t c = l->in.c, kw = l->kernel_w, k = l->kernel_h * kw;
    float a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (int32_t r = 0; r < t.rows; r++) {
        const float *x = t.x + (ptrdiff_t)r * l->in.w * c;
        const float *w0 = t.w + r * kw, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
        for (int32_t i = 0; i < t.cols; i++) {
            const float *xi = x + (ptrdiff_t)i * c;
            FTTE_MAC(a0, xi[0], w0[i]); FTTE_MAC(a1, xi[1], w1[i]);
            FTTE_MAC(a2, xi[2], w2[i]); FTTE_MAC(a3, xi[3], w3[i]);
        }
    }
    acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
}

/* The window of the single channel at t.x (weight row at t.w). */
static float window_1(const ftte_layer *l, taps t, float acc) {
    const int32_t c = l->in.c, kw = l->kernel_w;
    for (int32_t r = 0; r < t.rows; r++) {
        const float *x = t.x + (ptrdiff_t)r * l->in.w * c;
        const float *w = t.w + r * kw;
        for (int32_t i = 0; i < t.cols; i++) FTTE_MAC(acc, x[(ptrdiff_t)i * c], w[i]);
    }
    return acc;
}

/* out[begin + j] = bias[j] + window of channel begin + j, for the slice's channels. */
static void pixel(const ftte_layer *l, ftte_slice slice, taps t, const float *bias, float *out) {
    const int32_t k = l->kernel_h * l->kernel_w;
    const taps t0 = t;
    int32_t j = 0;
    for (; j + 4 <= slice.count; j += 4) {
        float acc[4];
        for (int32_t m = 0; m < 4; m++) acc[m] = bias != NULL ? bias[j + m] : 0.0f;
        t.x = t0.x + slice.begin + j;
        t.w = t0.w + (ptrdiff_t)j * k;
        window_4(l, t, acc);
        for (int32_t m = 0; m < 4; m++) out[slice.begin + j + m] = acc[m];
    }
    for (; j < slice.count; j++) {
        t.x = t0.x + slice.begin + j;
        t.w = t0.w + (ptrdiff_t)j * k;
        out[slice.begin + j] = window_1(l, t, bias != NULL ? bias[j] : 0.0f);
    }
}

ftte_status ftte_depthwise_conv2d_forward(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                          const float *input, const float *weights,
                                          const float *bias, float *output) {
    ftte_status status = ftte_conv_check(layer, FTTE_OP_DEPTHWISE_CONV2D, n, slice);
    if (status != FTTE_OK) return status;
    if (input == NULL || weights == NULL || output == NULL) return FTTE_ERR_ARG;
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
                t.x = input + (((ptrdiff_t)b * in.h + y + y_lo) * in.w + x + x_lo) * in.c;
                t.w = weights + y_lo * layer->kernel_w + x_lo;
                t.rows = y_hi - y_lo;
                t.cols = x_hi - x_lo;
                pixel(layer, slice, t, bias,
                      output + (((ptrdiff_t)b * out.h + oy) * out.w + ox) * out.c);
            }
        }
    }
    return FTTE_OK;
}

/* No scratch: the accumulators live in registers. */
int32_t ftte_depthwise_conv2d_forward_get_buffer_size(const ftte_layer *layer, int32_t n) {
    (void)layer;
    (void)n;
    return 0;
}
