/*
 * Depthwise conv2d backward to the input (ftte_kernels.h), one kernel tap at a time: the
 * output positions whose window puts tap (ky, kx) inside the input form a rectangle, found
 * once per tap, so each output row scatters in one long loop with the tap's weights for four
 * channels in registers and no padding test. Only the slice's channels of grad_input change.
 */
#include "ftte_kernels.h"
#include "internal/conv_core.h"
#include "internal/depthwise3x3.h"
#include "internal/depthwise_host.h"

/* gi[i][m] += g[i][m] * w[m] for the cols pixels of a row, 4 channels (m) at a time. */
static void row_4(float *gi, const float *g, int32_t cols, ptrdiff_t gi_step, int32_t g_step,
                  const float w[4]) {
    const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];
    for (int32_t i = 0; i < cols; i++) {
        float *d = gi + i * gi_step;
        const float *s = g + (ptrdiff_t)i * g_step;
        FTTE_MAC(d[0], s[0], w0); FTTE_MAC(d[1], s[1], w1);
        FTTE_MAC(d[2], s[2], w2); FTTE_MAC(d[3], s[3], w3);
    }
}

/* gi[i] += g[i] * w for the cols pixels of a row, one channel. */
static void row_1(float *gi, const float *g, int32_t cols, ptrdiff_t gi_step, int32_t g_step,
                  float w) {
    for (int32_t i = 0; i < cols; i++) FTTE_MAC(gi[i * gi_step], g[(ptrdiff_t)i * g_step], w);
}

/* Scatters tap t for `width` (4 or 1) channels from `channel` on, whose weights are w. */
static void tap(const ftte_layer *l, int32_t n, ftte_conv_rect t, int32_t channel,
                int32_t width, const float w[4], const float *grad_output,
                float *grad_input) {
    const ftte_shape in = l->in, out = l->out;
    const int32_t cols = t.x_hi - t.x_lo, x = t.x_lo * l->stride_w - l->pad_left + t.kx;
    /* Columns are stride_w pixels apart; the product only fits when there are two. */
    const ptrdiff_t gi_step = cols > 1 ? (ptrdiff_t)l->stride_w * in.c : 0;
    for (int32_t b = 0; b < n; b++) {
        for (int32_t oy = t.y_lo; oy < t.y_hi; oy++) {
            const int32_t y = oy * l->stride_h - l->pad_top + t.ky;
            float *gi = grad_input + (((ptrdiff_t)b * in.h + y) * in.w + x) * in.c + channel;
            const float *g =
                grad_output + (((ptrdiff_t)b * out.h + oy) * out.w + t.x_lo) * out.c + channel;
            if (width == 4)
                row_4(gi, g, cols, gi_step, out.c, w);
            else
                row_1(gi, g, cols, gi_step, out.c, w[0]);
        }
    }
}

ftte_status ftte_depthwise_conv2d_backward_input(const ftte_layer *layer, int32_t n,
                                                 ftte_slice slice, const float *grad_output,
                                                 const float *weights, float *grad_input) {
    ftte_status status = ftte_conv_check(layer, FTTE_OP_DEPTHWISE_CONV2D, n, slice);
    if (status != FTTE_OK) return status;
    if (grad_output == NULL || weights == NULL || grad_input == NULL) return FTTE_ERR_ARG;
#if FTTE_HOST_TILES
    if (ftte_dw_host_backward_input(layer, n, slice, grad_output, weights, grad_input))
        return FTTE_OK;
#endif
    if (ftte_dw3x3_applies(layer)) { /* the common shape: its own register-blocked path */
        ftte_dw3x3_backward_input(layer, n, slice, grad_output, weights, grad_input);
        return FTTE_OK;
    }
    const int32_t kw = layer->kernel_w, k = layer->kernel_h * kw;
    for (int32_t ky = 0; ky < layer->kernel_h; ky++) {
        for (int32_t kx = 0; kx < kw; kx++) {
            ftte_conv_rect t;
            if (!ftte_conv_tap_rect(layer, ky, kx, &t)) continue; /* only ever in the padding */
            const float *w = weights + ky * kw + kx; /* channel j's at w[j * k] */
            float wj[4];
            int32_t j = 0;
            for (; j + 4 <= slice.count; j += 4) {
                for (int32_t m = 0; m < 4; m++) wj[m] = w[(ptrdiff_t)(j + m) * k];
                tap(layer, n, t, slice.begin + j, 4, wj, grad_output, grad_input);
            }
            for (; j < slice.count; j++) {
                wj[0] = w[(ptrdiff_t)j * k];
                tap(layer, n, t, slice.begin + j, 1, wj, grad_output, grad_input);
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
