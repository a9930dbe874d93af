/* Average pool 2-D backward: spreads each window's gradient evenly over the window. */
#include "ftte_kernels.h"

/* Geometry first, then the operator, batch and pointers, so that a bad call never writes. */
static ftte_status check(const ftte_layer *layer, int32_t n, const float *grad_output,
                         const float *grad_input) {
    ftte_status status = ftte_layer_validate(layer);
    if (status != FTTE_OK) return status;
    if (layer->op != FTTE_OP_AVG_POOL2D) return FTTE_ERR_UNSUPPORTED;
    if (n <= 0 || grad_output == 0 || grad_input == 0) return FTTE_ERR_ARG;
    return FTTE_OK;
}

/* One output pixel: divide once per channel, not once per window element, since a float
 * division costs an order of magnitude more than an add on a Cortex-M4. */
static void spread_pixel(const ftte_layer *l, const float *grad, float *corner) {
    const int32_t channels = l->in.c;
    const float area = (float)(l->kernel_h * l->kernel_w);
    for (int32_t c = 0; c < channels; c++) {
        const float share = grad[c] / area;
        for (int32_t ky = 0; ky < l->kernel_h; ky++) {
            float *row = corner + ky * l->in.w * channels + c;
            for (int32_t kx = 0; kx < l->kernel_w; kx++) row[kx * channels] += share;
        }
    }
}

static void backward_sample(const ftte_layer *l, const float *grad_output, float *grad_input) {
    const int32_t channels = l->in.c;
    for (int32_t oy = 0; oy < l->out.h; oy++) {
        for (int32_t ox = 0; ox < l->out.w; ox++) {
            float *corner =
                grad_input + ((oy * l->stride_h) * l->in.w + ox * l->stride_w) * channels;
            spread_pixel(l, grad_output + (oy * l->out.w + ox) * channels, corner);
        }
    }
}

ftte_status ftte_avg_pool2d_backward(const ftte_layer *layer, int32_t n,
                                     const float *grad_output, float *grad_input) {
    ftte_status status = check(layer, n, grad_output, grad_input);
    if (status != FTTE_OK) return status;
    const int32_t in_size = ftte_shape_size(layer->in);
    const int32_t out_size = ftte_shape_size(layer->out);
    /* Advance the pointers per sample: n * size may not fit an int32. */
    for (int32_t b = 0; b < n; b++) {
        backward_sample(layer, grad_output, grad_input);
        grad_input += in_size;
        grad_output += out_size;
    }
    return FTTE_OK;
}

int32_t ftte_avg_pool2d_backward_get_buffer_size(const ftte_layer *layer, int32_t n) {
    (void)layer;
    (void)n;
    return 0;
}
