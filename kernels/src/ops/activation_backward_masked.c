/* ReLU / ReLU6 backward from a saved activation mask (ftte_relu_mask, ftte_relu6_mask). */
#include "ftte_kernels.h"

ftte_status ftte_activation_backward_masked(int32_t size, const uint32_t *mask,
                                            const float *grad_output, float *grad_input) {
    if (size < 0 || mask == 0 || grad_output == 0 || grad_input == 0) return FTTE_ERR_ARG;
    for (int32_t i = 0; i < size; i++) {
        grad_input[i] = (mask[i >> 5] >> (i & 31)) & 1u ? grad_output[i] : 0.0f;
    }
    return FTTE_OK;
}
