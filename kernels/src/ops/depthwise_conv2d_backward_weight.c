/*
 * Depthwise conv2d backward to the weights (ftte_kernels.h). Goes tap by tap: the output
 * positions whose window puts tap (ky, kx) inside the input form a rectangle, found once per
 * tap, so four channels' sums over it and the batch stay in registers with no padding test,
 * and each weight gradient is read and written once per call.
 */
#include "ftte_kernels.h"
#include "internal/conv_core.h"
#include "internal/depthwise3x3.h"
#include "internal/depthwise_host.h"

/* acc[m] += sum over the batch and the rectangle of grad_output * input of channel
 * channel + m, for m < width (4, or 1 for the slice's last count % 4 channels). */
static void sum_taps(const ftte_layer *l, int32_t n, ftte_conv_rect t, int32_t channel,
                     int32_t width, const float *input, const float *grad_output,
                     float acc[4]) {
    const ftte_shape in = l->in, out = l->out;
    const int32_t cols = t.x_hi - t.x_lo, x0 = t.x_lo * l->stride_w - l->pad_left + t.kx;
    /* Columns are stride_w pixels apart; the product only fits when there are two. */
    const ptrdiff_t x_col = cols > 1 ? (ptrdiff_t)l->stride_w * in.c : 0;
    float a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (int32_t b = 0; b < n; b++) {
        for (int32_t oy = t.y_lo; oy < t.y_hi; oy++) {
            const int32_t y = oy * l->stride_h - l->pad_top + t.ky;
            const float *g =
                grad_output + (((ptrdiff_t)b * out.h + oy) * out.w + t.x_lo) * out.c + channel;
            const float *x = input + (((ptrdiff_t)b * in.h + y) * in.w + x0) * in.c + channel;
            if (width == 4) {
                for (int32_t i = 0; i < cols; i++) {
                    const float *gi = g + (ptrdiff_t)i * out.c, *xi = x + i * x_col;
                    FTTE_MAC(a0, gi[0], xi[0]); FTTE_MAC(a1, gi[1], xi[1]);
                    FTTE_MAC(a2, gi[2], xi[2]); FTTE_MAC(a3, gi[3], xi[3]);
                }
            } else {
                for (int32_t i = 0; i < cols; i++)
                    FTTE_MAC(a0, g[(ptrdiff_t)i * out.c], x[i * x_col]);
            }
        }
    }
    acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
}

/* grad_weights[j][tap] += the tap's sums for the slice's channels j. */
static void tap(const ftte_layer *l, int32_t n, ftte_slice slice, ftte_conv_rect t,
                const float *input, const float *grad_output, float *grad_weights) {
    const int32_t k = l->kernel_h * l->kernel_w;
    float *dw = grad_weights + t.ky * l->kernel_w + t.kx; /* channel j's at dw[j * k] */
    float acc[4];
    int32_t j = 0;
    for (; j + 4 <= slice.count; j += 4) {
        acc[0] = acc[1] = acc[2] = acc[3] = 0.0f;
        sum_taps(l, n, t, slice.begin + j, 4, input, grad_output, acc);
        for (int32_t m = 0; m < 4; m++) dw[(ptrdiff_t)(j + m) * k] += acc[m];
    }
    for (; j < slice.count; j++) {
        acc[0] = 0.0f;
        sum_taps(l, n, t, slice.begin + j, 1, input, grad_output, acc);
        dw[(ptrdiff_t)j * k] += acc[0];
    }
}

ftte_status ftte_depthwise_conv2d_backward_weight(const ftte_layer *layer, int32_t n,
                                                  ftte_slice slice, const float *input,
                                                  const float *grad_output,
                                                  float *grad_weights) {
    ftte_status status = ftte_conv_check(layer, FTTE_OP_DEPTHWISE_CONV2D, n, slice);
    if (status != FTTE_OK) return status;
    if (input == NULL || grad_output == NULL || grad_weights == NULL) return FTTE_ERR_ARG;
#if FTTE_HOST_TILES
    if (ftte_dw_host_backward_weight(layer, n, slice, input, grad_output, grad_weights))
        return FTTE_OK;
#endif
    if (ftte_dw3x3_applies(layer)) { /* the common shape: its own register-blocked path */
        ftte_dw3x3_backward_weight(layer, n, slice, input, grad_output, grad_weights);
        return FTTE_OK;
    }
    for (int32_t ky = 0; ky < layer->kernel_h; ky++) {
        for (int32_t kx = 0; kx < layer->kernel_w; kx++) {
            ftte_conv_rect t;
            if (!ftte_conv_tap_rect(layer, ky, kx, &t)) continue; /* only ever in the padding */
            tap(layer, n, slice, t, input, grad_output, grad_weights);
        }
    }
    return FTTE_OK;
}

/* No scratch: the sums live in registers. */
int32_t ftte_depthwise_conv2d_backward_weight_get_buffer_size(const ftte_layer *layer,
                                                              int32_t n) {
    (void)layer;
    (void)n;
    return 0;
}
