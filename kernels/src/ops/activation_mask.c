/* Activation masks: the one bit per element that the ReLU/ReLU6 backward pass needs. Saving
 * it instead of the float output cuts that saved activation 32-fold. */
#include "ftte_kernels.h"

/* Bit i of mask word i / 32 is set when 0 < output[i] (and, with below_six, output[i] < 6):
 * exactly where the float-output backward kernels pass the gradient. The unused bits of the
 * last word are cleared, so every mask word is fully defined. */
static uint32_t bit(float v, int below_six) {
    return (uint32_t)((v > 0.0f) & (!below_six | (v < 6.0f)));
}

static void pack(int32_t size, const float *output, int below_six, uint32_t *mask) {
    int32_t word = 0;
    /* Whole words with a constant trip count and no branch: vector compares on a host. */
    for (; word * 32 + 32 <= size; word++) {
        uint32_t bits = 0;
        const float *v = output + word * 32;
        for (int32_t b = 0; b < 32; b++) bits |= bit(v[b], below_six) << b;
        mask[word] = bits;
    }
    if (word * 32 < size) {
        uint32_t bits = 0;
        const float *v = output + word * 32;
        for (int32_t b = 0; b < size - word * 32; b++) bits |= bit(v[b], below_six) << b;
        mask[word] = bits;
    }
}

ftte_status ftte_relu_mask(int32_t size, const float *output, uint32_t *mask) {
    if (size < 0 || output == 0 || mask == 0) return FTTE_ERR_ARG;
    pack(size, output, 0, mask);
    return FTTE_OK;
}

ftte_status ftte_relu6_mask(int32_t size, const float *output, uint32_t *mask) {
    if (size < 0 || output == 0 || mask == 0) return FTTE_ERR_ARG;
    pack(size, output, 1, mask);
    return FTTE_OK;
}

int32_t ftte_activation_mask_get_buffer_size(int32_t size) {
    return size > 0 ? (size + 31) / 32 * (int32_t)sizeof(uint32_t) : 0;
}
