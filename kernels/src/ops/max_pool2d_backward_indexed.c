/* Max pool 2-D backward from the window positions ftte_max_pool2d_forward_indexed recorded. */
#include "ftte_kernels.h"
#include "internal/ftte_mac.h"

static ftte_status check(const ftte_layer *layer, int32_t n, const uint8_t *argmax,
                         const float *grad_output, const float *grad_input) {
    ftte_status status = ftte_layer_validate(layer);
    if (status != FTTE_OK) return status;
    if (layer->op != FTTE_OP_MAX_POOL2D) return FTTE_ERR_UNSUPPORTED;
    if (layer->kernel_h * layer->kernel_w > 256) return FTTE_ERR_UNSUPPORTED;
    if (n <= 0 || argmax == 0 || grad_output == 0 || grad_input == 0) return FTTE_ERR_ARG;
    return FTTE_OK;
}

ftte_status ftte_max_pool2d_backward_indexed(const ftte_layer *layer, int32_t n,
                                             const uint8_t *argmax, const float *grad_output,
                                             float *grad_input) {
    ftte_status status = check(layer, n, argmax, grad_output, grad_input);
    if (status != FTTE_OK) return status;
    const ftte_layer *l = layer;
    const int32_t channels = l->in.c, in_size = ftte_shape_size(l->in);
    const int32_t out_size = ftte_shape_size(l->out);
#if FTTE_HOST_TILES
    /* A window position's offset from the corner, looked up: no division per element. */
    int32_t offsets[256];
    for (int32_t t = 0; t < l->kernel_h * l->kernel_w; t++)
        offsets[t] = (t / l->kernel_w * l->in.w + t % l->kernel_w) * channels;
#endif
    for (int32_t b = 0; b < n; b++) {
        for (int32_t oy = 0; oy < l->out.h; oy++) {
            for (int32_t ox = 0; ox < l->out.w; ox++) {
                const int32_t at = (oy * l->out.w + ox) * channels;
                const int32_t corner = ((oy * l->stride_h) * l->in.w + ox * l->stride_w) * channels;
                for (int32_t c = 0; c < channels; c++) {
#if FTTE_HOST_TILES
                    const int32_t offset = offsets[argmax[at + c]];
#else
                    int32_t ky = argmax[at + c] / l->kernel_w, kx = argmax[at + c] % l->kernel_w;
                    const int32_t offset = (ky * l->in.w + kx) * channels;
#endif
                    grad_input[corner + offset + c] += grad_output[at + c];
                }
            }
        }
        argmax += out_size;
        grad_output += out_size;
        grad_input += in_size;
    }
    return FTTE_OK;
}

int32_t ftte_max_pool2d_backward_indexed_get_buffer_size(const ftte_layer *layer, int32_t n) {
    (void)layer;
    (void)n;
    return 0;
}
