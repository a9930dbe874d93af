/* Flatten forward: NHWC memory already is the flattened order, so this copies the batch, and
 * does nothing when output aliases input. */
#include "ftte_kernels.h"

ftte_status ftte_flatten_forward(const ftte_layer *layer, int32_t n, const float *input,
                                 float *output) {
    ftte_status status = ftte_layer_validate(layer);
    if (status != FTTE_OK) return status;
    if (layer->op != FTTE_OP_FLATTEN) return FTTE_ERR_UNSUPPORTED;
    if (n <= 0 || input == 0 || output == 0) return FTTE_ERR_ARG;
    if (input == output) return FTTE_OK;
    const int32_t size = ftte_shape_size(layer->in);
    /* Sample by sample: n * size may not fit an int32. */
    for (int32_t b = 0; b < n; b++, input += size, output += size)
        for (int32_t i = 0; i < size; i++) output[i] = input[i];
    return FTTE_OK;
}
