/* Conv1d forward (ftte_kernels.h): a conv2d of height 1, run by the shared core. */
#include "ftte_kernels.h"
#include "internal/conv_core.h"

ftte_status ftte_conv1d_forward(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                const float *input, const float *weights, const float *bias,
                                float *output, float *scratch) {
    return ftte_conv_forward(layer, FTTE_OP_CONV1D, n, slice, input, weights, bias, output,
                             scratch);
}

/* Four zero-padded input windows (for windows over the padding), whatever the batch. */
int32_t ftte_conv1d_forward_get_buffer_size(const ftte_layer *layer, int32_t n) {
    (void)n;
    return ftte_conv_forward_scratch(layer, FTTE_OP_CONV1D);
}
