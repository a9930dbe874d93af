/* Conv2d backward to the weights (ftte_kernels.h), run by the core it shares with conv1d. */
#include "ftte_kernels.h"
#include "internal/conv_core.h"

ftte_status ftte_conv2d_backward_weight(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                        const float *input, const float *grad_output,
                                        float *grad_weights, float *scratch) {
    return ftte_conv_backward_weight(layer, FTTE_OP_CONV2D, n, slice, input, grad_output,
                                     grad_weights, scratch);
}

/* None: the sums stay in registers (the scratch argument is kept for a uniform API). */
int32_t ftte_conv2d_backward_weight_get_buffer_size(const ftte_layer *layer, int32_t n) {
    (void)n;
    return ftte_conv_backward_weight_scratch(layer, FTTE_OP_CONV2D);
}
