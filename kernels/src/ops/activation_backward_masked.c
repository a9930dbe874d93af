/* ReLU / ReLU6 backward from a saved activation mask (ftte_relu_mask, ftte_relu6_mask). */
#include "ftte_kernels.h"
#include "internal/ftte_mac.h"

ftte_status ftte_activation_backward_masked(int32_t size, const uint32_t *mask,
                                            const float *grad_output, float *grad_input) {
    if (size < 0 || mask == 0 || grad_output == 0 || grad_input == 0) return FTTE_ERR_ARG;
    int32_t i = 0;
#if FTTE_HOST_TILES
    /* A mask word at a time, 8 bits to a vector: each lane keeps its gradient's bits or 0. */
    const vec8i bits = {1, 2, 4, 8, 16, 32, 64, 128};
    for (; i + 32 <= size; i += 32) {
        const uint32_t word = mask[i >> 5];
        for (int32_t q = 0; q < 4; q++) {
            const int32_t byte = (int32_t)((word >> (8 * q)) & 0xffu);
            const vec8i b = {byte, byte, byte, byte, byte, byte, byte, byte};
            vec8 g;
            load8(&g, grad_output + i + 8 * q);
            const vec8 kept = (vec8)((vec8i)g & ((b & bits) != 0));
            store8(grad_input + i + 8 * q, &kept);
        }
    }
#endif
    for (; i < size; i++) {
        grad_input[i] = (mask[i >> 5] >> (i & 31)) & 1u ? grad_output[i] : 0.0f;
    }
    return FTTE_OK;
}
