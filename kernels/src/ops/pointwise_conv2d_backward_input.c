/* Pointwise (1x1) conv2d backward to the input, over n * h * w rows (one per pixel):
 * grad_input[r][i] += sum over the slice's outputs o of grad_output[r][o] * weights[o][i].
 * Shared math: internal/rows_matmul.c. */
#include "ftte_kernels.h"
#include "internal/rows_matmul.h"

ftte_status ftte_pointwise_conv2d_backward_input(const ftte_layer *layer, int32_t n,
                                                 ftte_slice slice, const float *grad_output,
                                                 const float *weights, float *grad_input) {
    int32_t rows;
    ftte_status status = ftte_rows_check(layer, FTTE_OP_POINTWISE_CONV2D, n, slice, &rows);
    if (status != FTTE_OK) return status;
    if (grad_output == 0 || weights == 0 || grad_input == 0) return FTTE_ERR_ARG;
    ftte_rows_backward_input(rows, layer->in.c, layer->out.c, slice, grad_output, weights,
                             grad_input);
    return FTTE_OK;
}

int32_t ftte_pointwise_conv2d_backward_input_get_buffer_size(const ftte_layer *layer,
                                                             int32_t n) {
    (void)layer;
    (void)n;
    return 0;
}
