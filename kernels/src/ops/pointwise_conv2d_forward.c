/* Pointwise (1x1) conv2d forward: a dense layer at every pixel, so the shared row matmul
 * (internal/rows_matmul.c) over n * h * w rows: output[r][o] = bias[o] + input[r] . weights[o]
 * for o in the slice. */
#include "ftte_kernels.h"
#include "internal/rows_matmul.h"

ftte_status ftte_pointwise_conv2d_forward(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                          const float *input, const float *weights,
                                          const float *bias, float *output) {
    int32_t rows;
    ftte_status status = ftte_rows_check(layer, FTTE_OP_POINTWISE_CONV2D, n, slice, &rows);
    if (status != FTTE_OK) return status;
    if (input == 0 || weights == 0 || output == 0) return FTTE_ERR_ARG; /* bias may be NULL */
    ftte_rows_forward(rows, layer->in.c, layer->out.c, slice, input, weights, bias, output);
    return FTTE_OK;
}

int32_t ftte_pointwise_conv2d_forward_get_buffer_size(const ftte_layer *layer, int32_t n) {
    (void)layer;
    (void)n;
    return 0;
}
