/* Global average pool forward: the mean over in.h x in.w of every channel, out = {1, 1, c}. */
#include "ftte_kernels.h"

/* Geometry first, then the operator, batch and pointers, so that a bad call never writes. */
static ftte_status check(const ftte_layer *layer, int32_t n, const float *input,
                         const float *output) {
    ftte_status status = ftte_layer_validate(layer);
    if (status != FTTE_OK) return status;
    if (layer->op != FTTE_OP_GLOBAL_AVG_POOL) return FTTE_ERR_UNSUPPORTED;
    if (n <= 0 || input == 0 || output == 0) return FTTE_ERR_ARG;
    return FTTE_OK;
}

/* The output row is the accumulator, and the input is read pixel by pixel in memory order. */
static void pool_sample(int32_t pixels, int32_t channels, const float *input, float *output) {
    for (int32_t c = 0; c < channels; c++) output[c] = 0.0f;
    for (int32_t p = 0; p < pixels; p++) {
        const float *pixel = input + p * channels;
        for (int32_t c = 0; c < channels; c++) output[c] += pixel[c];
    }
    const float count = (float)pixels;
    for (int32_t c = 0; c < channels; c++) output[c] /= count;
}

ftte_status ftte_global_avg_pool_forward(const ftte_layer *layer, int32_t n, const float *input,
                                         float *output) {
    ftte_status status = check(layer, n, input, output);
    if (status != FTTE_OK) return status;
    const int32_t pixels = layer->in.h * layer->in.w;
    const int32_t channels = layer->in.c;
    /* Advance the pointers per sample: n * size may not fit an int32. */
    for (int32_t b = 0; b < n; b++) {
        pool_sample(pixels, channels, input, output);
        input += pixels * channels;
        output += channels;
    }
    return FTTE_OK;
}

int32_t ftte_global_avg_pool_forward_get_buffer_size(const ftte_layer *layer, int32_t n) {
    (void)layer;
    (void)n;
    return 0;
}
