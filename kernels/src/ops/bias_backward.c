/* Bias gradient of every layer with a bias: grad_bias[c] += sum_r grad_output[r][c]. */
#include "ftte_kernels.h"

#include <stddef.h>

#include "internal/ftte_mac.h"

/* Four channels at a time, swept down the rows in registers: each grad_bias element is loaded
 * and stored once per call, not once per row. */
static void sum_columns4(int32_t rows, int32_t channels, const float *g, float *gb) {
    float a0 = gb[0], a1 = gb[1], a2 = gb[2], a3 = gb[3];
    for (int32_t r = 0; r < rows; r++) {
        const float *p = g + r * channels;
        a0 += p[0];
        a1 += p[1];
        a2 += p[2];
        a3 += p[3];
    }
    gb[0] = a0;
    gb[1] = a1;
    gb[2] = a2;
    gb[3] = a3;
}

static float sum_column(int32_t rows, int32_t channels, const float *g, float acc) {
    for (int32_t r = 0; r < rows; r++) acc += g[r * channels];
    return acc;
}

ftte_status ftte_bias_backward(int32_t rows, int32_t channels, const float *grad_output,
                               float *grad_bias) {
    if (rows <= 0 || grad_output == 0 || grad_bias == 0) return FTTE_ERR_ARG;
    if (channels <= 0) return FTTE_ERR_SHAPE;
    /* The tensor must fit an int32 element count, so that r * channels cannot overflow. */
    if (rows > INT32_MAX / channels) return FTTE_ERR_ARG;
    int32_t c = 0;
#if FTTE_HOST_TILES
    /* 8 channels a vector, in the same order: from grad_bias, down the rows. */
    for (; c + 8 <= channels; c += 8) {
        vec8 acc, v;
        load8(&acc, grad_bias + c);
        for (int32_t r = 0; r < rows; r++) {
            load8(&v, grad_output + (ptrdiff_t)r * channels + c);
            acc += v;
        }
        store8(grad_bias + c, &acc);
    }
#endif
    for (; c + 4 <= channels; c += 4) sum_columns4(rows, channels, grad_output + c, grad_bias + c);
    for (; c < channels; c++)
        grad_bias[c] = sum_column(rows, channels, grad_output + c, grad_bias[c]);
    return FTTE_OK;
}
