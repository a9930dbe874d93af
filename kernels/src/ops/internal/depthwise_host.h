/*
 * Internal to the kernels (not public API): the depthwise conv2d kernels on a vector host
 * (FTTE_HOST_TILES, ftte_mac.h), 8 channels per vector register. The public kernels check
 * their arguments, then try these first; each returns 0, having done nothing, when the
 * slice's weights turned [tap][channel] would not fit its stack panel, and the board's code
 * runs instead. Semantics are the public kernels' (ftte_kernels.h).
 */
#ifndef FTTE_DEPTHWISE_HOST_H
#define FTTE_DEPTHWISE_HOST_H

#include "ftte_kernels.h"
#include "ftte_mac.h"

#if FTTE_HOST_TILES
int ftte_dw_host_forward(const ftte_layer *layer, int32_t n, ftte_slice slice,
                         const float *input, const float *weights, const float *bias,
                         float *output);
int ftte_dw_host_backward_input(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                const float *grad_output, const float *weights,
                                float *grad_input);
int ftte_dw_host_backward_weight(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                 const float *input, const float *grad_output,
                                 float *grad_weights);
#endif

#endif /* FTTE_DEPTHWISE_HOST_H */
