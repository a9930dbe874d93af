/* ReLU6 forward: output = min(max(input, 0), 6), elementwise; output may alias input. */
#include "ftte_kernels.h"

ftte_status ftte_relu6_forward(int32_t size, const float *input, float *output) {
    if (size < 0 || input == 0 || output == 0) return FTTE_ERR_ARG;
    for (int32_t i = 0; i < size; i++) {
        const float v = input[i];
        output[i] = v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v); /* a NaN passes through */
    }
    return FTTE_OK;
}
