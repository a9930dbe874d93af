/* Global average pool backward: every input pixel gets its channel's gradient / (h * w). */
#include "ftte_kernels.h"

/* Geometry first, then the operator, batch and pointers, so that a bad call never writes. */
static ftte_status check(const ftte_layer *layer, int32_t n, const float *grad_output,
                         const float *grad_input) {
    ftte_status status = ftte_layer_validate(layer);
    if (status != FTTE_OK) return status;
    if (layer->op != FTTE_OP_GLOBAL_AVG_POOL) return FTTE_ERR_UNSUPPORTED;
    if (n <= 0 || grad_output == 0 || grad_input == 0) return FTTE_ERR_ARG;
    return FTTE_OK;
}

/* Channel-outer so that each channel's share is divided once, not once per pixel: there is no
 * scratch to hold the shares, and a float division is expensive on a microcontroller. */
static void spread_sample(int32_t pixels, int32_t channels, const float *grad_output,
                          float *grad_input) {
    const float count = (float)pixels;
    for (int32_t c = 0; c < channels; c++) {
        const float share = grad_output[c] / count;
        for (int32_t p = 0; p < pixels; p++) grad_input[p * channels + c] += share;
    }
}

ftte_status ftte_global_avg_pool_backward(const ftte_layer *layer, int32_t n,
                                          const float *grad_output, float *grad_input) {
    ftte_status status = check(layer, n, grad_output, grad_input);
    if (status != FTTE_OK) return status;
    const int32_t pixels = layer->in.h * layer->in.w;
    const int32_t channels = layer->in.c;
    /* Advance the pointers per sample: n * size may not fit an int32. */
    for (int32_t b = 0; b < n; b++) {
        spread_sample(pixels, channels, grad_output, grad_input);
        grad_input += pixels * channels;
        grad_output += channels;
    }
    return FTTE_OK;
}

int32_t ftte_global_avg_pool_backward_get_buffer_size(const ftte_layer *layer, int32_t n) {
    (void)layer;
    (void)n;
    return 0;
}
