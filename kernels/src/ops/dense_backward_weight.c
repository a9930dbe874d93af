/* Dense backward to the weights: grad_weights[o][i] += sum over the n rows of
 * grad_output[r][o] * input[r][i], for o in the slice. Shared math: internal/rows_matmul.c. */
#include "ftte_kernels.h"
#include "internal/rows_matmul.h"

ftte_status ftte_dense_backward_weight(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                       const float *input, const float *grad_output,
                                       float *grad_weights) {
    int32_t rows;
    ftte_status status = ftte_rows_check(layer, FTTE_OP_DENSE, n, slice, &rows);
    if (status != FTTE_OK) return status;
    if (input == 0 || grad_output == 0 || grad_weights == 0) return FTTE_ERR_ARG;
    ftte_rows_backward_weight(rows, layer->in.c, layer->out.c, slice, input, grad_output,
                              grad_weights);
    return FTTE_OK;
}

int32_t ftte_dense_backward_weight_get_buffer_size(const ftte_layer *layer, int32_t n) {
    (void)layer;
    (void)n;
    return 0;
}
