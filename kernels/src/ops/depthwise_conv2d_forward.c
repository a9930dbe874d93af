/*
 * Depthwise conv2d forward (ftte_kernels.h). The output's slice channels start at the bias and
 * then take one kernel tap at a time: the output positions whose window puts tap (ky, kx)
 * inside the input form a rectangle, found once per tap, so each output row is one long loop
 * with the tap's weights for four channels in registers and no padding test.
 */
#include "ftte_kernels.h"
#include "internal/conv_core.h"
#include "internal/depthwise3x3.h"
#include "internal/depthwise_host.h"

/* out[i][m] += x[i][m] * w[m] for the cols pixels of a row, 4 channels (m) at a time. */
static void row_4(float *out, const float *x, int32_t cols, int32_t out_step, ptrdiff_t x_step,
                  const float w[4]) {
    const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];
    for (int32_t i = 0; i < cols; i++) {
        float *o = out + (ptrdiff_t)i * out_step;
        const float *xi = x + i * x_step;
        FTTE_MAC(o[0], xi[0], w0); FTTE_MAC(o[1], xi[1], w1);
        FTTE_MAC(o[2], xi[2], w2); FTTE_MAC(o[3], xi[3], w3);
    }
}

/* out[i] += x[i] * w for the cols pixels of a row, one channel. */
static void row_1(float *out, const float *x, int32_t cols, int32_t out_step, ptrdiff_t x_step,
                  float w) {
    for (int32_t i = 0; i < cols; i++) FTTE_MAC(out[(ptrdiff_t)i * out_step], x[i * x_step], w);
}

/* Adds tap t's term for `width` (4 or 1) channels from `channel` on, whose weights are w. */
static void tap(const ftte_layer *l, int32_t n, ftte_conv_rect t, int32_t channel,
                int32_t width, const float w[4], const float *input, float *output) {
    const ftte_shape in = l->in, out = l->out;
    const int32_t cols = t.x_hi - t.x_lo, x = t.x_lo * l->stride_w - l->pad_left + t.kx;
    /* Columns are stride_w pixels apart; the product only fits when there are two. */
    const ptrdiff_t x_step = cols > 1 ? (ptrdiff_t)l->stride_w * in.c : 0;
    for (int32_t b = 0; b < n; b++) {
        for (int32_t oy = t.y_lo; oy < t.y_hi; oy++) {
            const int32_t y = oy * l->stride_h - l->pad_top + t.ky;
            float *o = output + (((ptrdiff_t)b * out.h + oy) * out.w + t.x_lo) * out.c + channel;
            const float *xr = input + (((ptrdiff_t)b * in.h + y) * in.w + x) * in.c + channel;
            if (width == 4)
                row_4(o, xr, cols, out.c, x_step, w);
            else
                row_1(o, xr, cols, out.c, x_step, w[0]);
        }
    }
}

/* output[..][begin + j] = bias[j] (0 without bias) for the slice's channels j. */
static void init(const ftte_layer *l, int32_t n, ftte_slice slice, const float *bias,
                 float *output) {
    const ptrdiff_t pixels = (ptrdiff_t)n * l->out.h * l->out.w;
    float *o = output + slice.begin;
    for (ptrdiff_t p = 0; p < pixels; p++, o += l->out.c) {
        if (bias != NULL)
            for (int32_t j = 0; j < slice.count; j++) o[j] = bias[j];
        else
            for (int32_t j = 0; j < slice.count; j++) o[j] = 0.0f;
    }
}

ftte_status ftte_depthwise_conv2d_forward(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                          const float *input, const float *weights,
                                          const float *bias, float *output) {
    ftte_status status = ftte_conv_check(layer, FTTE_OP_DEPTHWISE_CONV2D, n, slice);
    if (status != FTTE_OK) return status;
    if (input == NULL || weights == NULL || output == NULL) return FTTE_ERR_ARG;
#if FTTE_HOST_TILES
    if (ftte_dw_host_forward(layer, n, slice, input, weights, bias, output))
        return FTTE_OK;
#endif
    if (ftte_dw3x3_applies(layer)) { /* the common shape: its own register-blocked path */
        ftte_dw3x3_forward(layer, n, slice, input, weights, bias, output);
        return FTTE_OK;
    }
    const int32_t kw = layer->kernel_w, k = layer->kernel_h * kw;
    init(layer, n, slice, bias, output);
    for (int32_t ky = 0; ky < layer->kernel_h; ky++) {
        for (int32_t kx = 0; kx < kw; kx++) {
            ftte_conv_rect t;
            if (!ftte_conv_tap_rect(layer, ky, kx, &t)) continue; /* only ever in the padding */
            const float *w = weights + ky * kw + kx; /* channel j's at w[j * k] */
            float wj[4];
            int32_t j = 0;
            for (; j + 4 <= slice.count; j += 4) {
                for (int32_t m = 0; m < 4; m++) wj[m] = w[(ptrdiff_t)(j + m) * k];
                tap(layer, n, t, slice.begin + j, 4, wj, input, output);
            }
            for (; j < slice.count; j++) {
                wj[0] = w[(ptrdiff_t)j * k];
                tap(layer, n, t, slice.begin + j, 1, wj, input, output);
            }
        }
    }
    return FTTE_OK;
}

/* No scratch: the output itself accumulates. */
int32_t ftte_depthwise_conv2d_forward_get_buffer_size(const ftte_layer *layer, int32_t n) {
    (void)layer;
    (void)n;
    return 0;
}
