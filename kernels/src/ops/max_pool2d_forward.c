/* Max pool 2-D forward: NHWC, kernel_h x kernel_w windows, stride, no padding. */
#include "ftte_kernels.h"

/* Geometry first, then the operator, batch and pointers, so that a bad call never writes. */
static ftte_status check(const ftte_layer *layer, int32_t n, const float *input,
                         const float *output) {
    ftte_status status = ftte_layer_validate(layer);
    if (status != FTTE_OK) return status;
    if (layer->op != FTTE_OP_MAX_POOL2D) return FTTE_ERR_UNSUPPORTED;
    if (n <= 0 || input == 0 || output == 0) return FTTE_ERR_ARG;
    return FTTE_OK;
}

/* One output pixel, all channels at once: the channels of a pixel are contiguous in NHWC,
 * so sweeping the window pixel by pixel reads memory in order. Strict '>' keeps the first
 * maximum, the one the backward pass routes the gradient to. */
static void pool_pixel(const ftte_layer *l, const float *corner, float *out) {
    const int32_t channels = l->in.c;
    for (int32_t c = 0; c < channels; c++) out[c] = corner[c];
    for (int32_t ky = 0; ky < l->kernel_h; ky++) {
        for (int32_t kx = 0; kx < l->kernel_w; kx++) {
            const float *pixel = corner + (ky * l->in.w + kx) * channels;
            for (int32_t c = 0; c < channels; c++) {
                if (pixel[c] > out[c]) out[c] = pixel[c];
            }
        }
    }
}

static void pool_sample(const ftte_layer *l, const float *input, float *output) {
    const int32_t channels = l->in.c;
    for (int32_t oy = 0; oy < l->out.h; oy++) {
        for (int32_t ox = 0; ox < l->out.w; ox++) {
            const float *corner =
                input + ((oy * l->stride_h) * l->in.w + ox * l->stride_w) * channels;
            pool_pixel(l, corner, output + (oy * l->out.w + ox) * channels);
        }
    }
}

ftte_status ftte_max_pool2d_forward(const ftte_layer *layer, int32_t n, const float *input,
                                    float *output) {
    ftte_status status = check(layer, n, input, output);
    if (status != FTTE_OK) return status;
    const int32_t in_size = ftte_shape_size(layer->in);
    const int32_t out_size = ftte_shape_size(layer->out);
    /* Advance the pointers per sample: n * size may not fit an int32. */
    for (int32_t b = 0; b < n; b++) {
        pool_sample(layer, input, output);
        input += in_size;
        output += out_size;
    }
    return FTTE_OK;
}

int32_t ftte_max_pool2d_forward_get_buffer_size(const ftte_layer *layer, int32_t n) {
    (void)layer;
    (void)n;
    return 0;
}
