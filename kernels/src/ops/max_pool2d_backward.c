/* Max pool 2-D backward: routes each window's gradient to the window's first maximum. */
#include "ftte_kernels.h"

/* Geometry first, then the operator, batch and pointers, so that a bad call never writes. */
static ftte_status check(const ftte_layer *layer, int32_t n, const float *input,
                         const float *grad_output, const float *grad_input) {
    ftte_status status = ftte_layer_validate(layer);
    if (status != FTTE_OK) return status;
    if (layer->op != FTTE_OP_MAX_POOL2D) return FTTE_ERR_UNSUPPORTED;
    if (n <= 0 || input == 0 || grad_output == 0 || grad_input == 0) return FTTE_ERR_ARG;
    return FTTE_OK;
}

/* Offset from the window's corner of channel c's first maximum in row-major (ky, kx) order.
 * The same strict '>' scan as the forward pass, so ties and NaNs pick the same element, and
 * no argmax has to be stored between the passes. */
static int32_t first_max(const ftte_layer *l, const float *corner, int32_t c) {
    const int32_t channels = l->in.c;
    int32_t best = c;
    for (int32_t ky = 0; ky < l->kernel_h; ky++) {
        for (int32_t kx = 0; kx < l->kernel_w; kx++) {
            const int32_t at = (ky * l->in.w + kx) * channels + c;
            if (corner[at] > corner[best]) best = at;
        }
    }
    return best;
}

static void backward_sample(const ftte_layer *l, const float *input, const float *grad_output,
                            float *grad_input) {
    const int32_t channels = l->in.c;
    for (int32_t oy = 0; oy < l->out.h; oy++) {
        for (int32_t ox = 0; ox < l->out.w; ox++) {
            const int32_t corner = ((oy * l->stride_h) * l->in.w + ox * l->stride_w) * channels;
            const float *grad = grad_output + (oy * l->out.w + ox) * channels;
            for (int32_t c = 0; c < channels; c++) {
                grad_input[corner + first_max(l, input + corner, c)] += grad[c];
            }
        }
    }
}

ftte_status ftte_max_pool2d_backward(const ftte_layer *layer, int32_t n, const float *input,
                                     const float *grad_output, float *grad_input) {
    ftte_status status = check(layer, n, input, grad_output, grad_input);
    if (status != FTTE_OK) return status;
    const int32_t in_size = ftte_shape_size(layer->in);
    const int32_t out_size = ftte_shape_size(layer->out);
    /* Advance the pointers per sample: n * size may not fit an int32. */
    for (int32_t b = 0; b < n; b++) {
        backward_sample(layer, input, grad_output, grad_input);
        input += in_size;
        grad_input += in_size;
        grad_output += out_size;
    }
    return FTTE_OK;
}

int32_t ftte_max_pool2d_backward_get_buffer_size(const ftte_layer *layer, int32_t n) {
    (void)layer;
    (void)n;
    return 0;
}
