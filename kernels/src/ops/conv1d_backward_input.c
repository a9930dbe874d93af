/* Conv1d backward to the input (ftte_kernels.h): a conv2d of height 1, run by the shared core. */
#include "ftte_kernels.h"
#include "internal/conv_core.h"

ftte_status ftte_conv1d_backward_input(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                       const float *grad_output, const float *weights,
                                       float *grad_input, float *scratch) {
    return ftte_conv_backward_input(layer, FTTE_OP_CONV1D, n, slice, grad_output, weights,
                                    grad_input, scratch);
}

/* Stride 1: four zero-padded grad_output windows, whatever the batch; other strides: none. */
int32_t ftte_conv1d_backward_input_get_buffer_size(const ftte_layer *layer, int32_t n) {
    (void)n;
    return ftte_conv_backward_input_scratch(layer, FTTE_OP_CONV1D);
}
