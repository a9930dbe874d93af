/*
 * Internal: the row matmul shared by dense and pointwise conv2d (not part of the public API).
 *
 * Both layers are out[r][o] = bias[o] + sum_i in[r][i] * w[o][i] over `rows` rows of in.c
 * floats: the batch for dense, every pixel of the batch (n * h * w) for pointwise. The public
 * kernels validate with ftte_rows_check() and then call the math below, which trusts its
 * arguments. Slices follow the public contract: `weights` (and `bias`, `grad_weights`) start
 * at the slice's first row; activations are full tensors with out.c floats per row.
 */
#ifndef FTTE_ROWS_MATMUL_H
#define FTTE_ROWS_MATMUL_H

#include "conv_core.h" /* ftte_weight_rows */
#include "ftte_kernels.h"

/** Validates the layer (whose op must be `op`), the batch and the slice, and gives the number
 *  of rows. Pointers are left to the caller, as each kernel needs a different set. */
ftte_status ftte_rows_check(const ftte_layer *layer, int32_t op, int32_t n, ftte_slice slice,
                            int32_t *rows);

/** output[r][slice.begin + o] = bias[o] (0 if NULL) + sum_i input[r][i] * weights[o][i]. */
void ftte_rows_forward(int32_t rows, int32_t in_c, int32_t out_c, ftte_slice slice,
                       const float *input, const float *weights, const float *bias,
                       float *output);

/** One row of it: y[o] = bias[o] (0 if NULL) + x . weights[o] for o < count, weight rows k
 *  apart. The board's and the host's batch-1 forward (a matrix-vector product). */
void ftte_rows_forward_row(int32_t k, int32_t count, const float *x, const float *weights,
                           const float *bias, float *y);

/** grad_input[r][i] += sum_o grad_output[r][slice.begin + o] * weights[o][i]. */
void ftte_rows_backward_input(int32_t rows, int32_t in_c, int32_t out_c, ftte_slice slice,
                              const float *grad_output, const float *weights,
                              float *grad_input);

/** grad_weights[o][i] += sum_r grad_output[r][slice.begin + o] * input[r][i]. */
void ftte_rows_backward_weight(int32_t rows, int32_t in_c, int32_t out_c, ftte_slice slice,
                               const float *input, const float *grad_output,
                               float *grad_weights);

/* Layers whose rows train in several runs (src/train/layer_passes.c): every output channel in
 * one call, channel o's weight row where `w` says (w.len = in_c). Each element is summed in the
 * order of the slice kernels above called once per run, in order, so the bits are theirs. The
 * rows are taken ROWS_CHUNK at a time into a table of pointers on the stack. */
#define FTTE_ROWS_CHUNK 32

/** output[r][o] = bias[o] (0 if NULL) + sum_i input[r][i] * row_o[i], for o < out_c. */
void ftte_rows_forward_rows(int32_t rows, int32_t in_c, int32_t out_c, ftte_weight_rows w,
                            const float *input, const float *bias, float *output);

/** grad_input[r][i] += sum_o grad_output[r][o] * row_o[i], by ascending o < out_c. */
void ftte_rows_backward_input_rows(int32_t rows, int32_t in_c, int32_t out_c,
                                   ftte_weight_rows w, const float *grad_output,
                                   float *grad_input);

/** ftte_rows_forward_row with weight row o at wp[o] (count <= FTTE_ROWS_CHUNK). */
void ftte_rows_forward_row_ptrs(int32_t k, int32_t count, const float *x,
                                const float *const *wp, const float *bias, float *y);

/** Fills wp with the cursor's next rows, FTTE_ROWS_CHUNK of the `left` rows at most; returns
 *  how many. */
static inline int32_t ftte_rows_take(ftte_row_cursor *c, int32_t left, const float **wp) {
    const int32_t count = left < FTTE_ROWS_CHUNK ? left : FTTE_ROWS_CHUNK;
    for (int32_t j = 0; j < count; j++) wp[j] = ftte_next_row(c);
    return count;
}

#endif /* FTTE_ROWS_MATMUL_H */
