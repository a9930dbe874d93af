/* ReLU6 backward from the saved forward output: grad_input = 0 < output < 6 ? grad_output : 0
 * (a clipped output, 0 or 6, has no gradient). Writes; grad_input may alias grad_output. */
#include "ftte_kernels.h"

ftte_status ftte_relu6_backward(int32_t size, const float *output, const float *grad_output,
                                float *grad_input) {
    if (size < 0 || output == 0 || grad_output == 0 || grad_input == 0) return FTTE_ERR_ARG;
    for (int32_t i = 0; i < size; i++) {
        const float o = output[i];
        grad_input[i] = (o > 0.0f && o < 6.0f) ? grad_output[i] : 0.0f;
    }
    return FTTE_OK;
}
