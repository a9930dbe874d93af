/*
 * Internal to the kernels (not public API): the 3x3, stride-1 fast path of the depthwise
 * conv2d kernels, the shape of every depthwise layer in the reference models. The public
 * kernels check their arguments, then call these when ftte_dw3x3_applies(), and their
 * general tap-by-tap code otherwise. Semantics are the public kernels' (ftte_kernels.h).
 */
#ifndef FTTE_DEPTHWISE3X3_H
#define FTTE_DEPTHWISE3X3_H

#include "ftte_kernels.h"

/* Kernel 3x3, stride 1 (any padding below 3, as validated). */
int ftte_dw3x3_applies(const ftte_layer *layer);

void ftte_dw3x3_forward(const ftte_layer *layer, int32_t n, ftte_slice slice, const float *input,
                        const float *weights, const float *bias, float *output);
void ftte_dw3x3_backward_input(const ftte_layer *layer, int32_t n, ftte_slice slice,
                               const float *grad_output, const float *weights,
                               float *grad_input);
void ftte_dw3x3_backward_weight(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                const float *input, const float *grad_output,
                                float *grad_weights);

#endif /* FTTE_DEPTHWISE3X3_H */
