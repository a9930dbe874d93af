/* ReLU backward from the saved forward output (the forward may have run in place):
 * grad_input = output > 0 ? grad_output : 0. Writes; grad_input may alias grad_output, as each
 * element is read before it is written. */
#include "ftte_kernels.h"

ftte_status ftte_relu_backward(int32_t size, const float *output, const float *grad_output,
                               float *grad_input) {
    if (size < 0 || output == 0 || grad_output == 0 || grad_input == 0) return FTTE_ERR_ARG;
    for (int32_t i = 0; i < size; i++) grad_input[i] = output[i] > 0.0f ? grad_output[i] : 0.0f;
    return FTTE_OK;
}
