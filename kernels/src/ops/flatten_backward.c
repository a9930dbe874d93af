/* Flatten backward: the same memory order both sides, so grad_input += grad_output. */
#include "ftte_kernels.h"

ftte_status ftte_flatten_backward(const ftte_layer *layer, int32_t n, const float *grad_output,
                                  float *grad_input) {
    ftte_status status = ftte_layer_validate(layer);
    if (status != FTTE_OK) return status;
    if (layer->op != FTTE_OP_FLATTEN) return FTTE_ERR_UNSUPPORTED;
    if (n <= 0 || grad_output == 0 || grad_input == 0) return FTTE_ERR_ARG;
    /* Aliased, the sum would double the gradient: the contract forbids it, refuse it. */
    if (grad_input == grad_output) return FTTE_ERR_ARG;
    const int32_t size = ftte_shape_size(layer->in);
    /* Sample by sample: n * size may not fit an int32. */
    for (int32_t b = 0; b < n; b++, grad_output += size, grad_input += size)
        for (int32_t i = 0; i < size; i++) grad_input[i] += grad_output[i];
    return FTTE_OK;
}
