/*
 * Internal to the kernels (not public API): the one convolution implementation behind the
 * conv2d and conv1d kernels, and the argument checks and window clamping that the depthwise
 * kernels share with it.
 */
#ifndef FTTE_CONV_CORE_H
#define FTTE_CONV_CORE_H

#include <stddef.h>

#include "ftte_kernels.h"

/* Output positions per pass of the conv kernels. Each weight loaded in the inner loop then
 * feeds this many multiply-accumulates, which is what brings a Cortex-M4F under two
 * instructions per MAC; the scratch holds this many im2col patches. */
#define FTTE_CONV_POSITIONS 4

/* Largest kernel_h * kernel_w * in.c the conv kernels accept (kernel_h * kernel_w for the
 * depthwise ones): FTTE_CONV_POSITIONS patches of it stay within an int32 of bytes. */
#define FTTE_CONV_MAX_ROW (INT32_MAX / ((int32_t)sizeof(float) * FTTE_CONV_POSITIONS))

/* acc += a * b. -std=c99 turns off floating-point contraction, so a plain multiply-add costs
 * two FPU instructions; use the fused instruction where the FPU has one. */
#if defined(__GNUC__) && defined(__ARM_FEATURE_FMA)
#define FTTE_MAC(acc, a, b) ((acc) = __builtin_fmaf((a), (b), (acc)))
#else
#define FTTE_MAC(acc, a, b) ((acc) += (a) * (b))
#endif

/* Taps [*lo, *hi) of a kernel-long window starting at `start` (negative inside the padding)
 * that fall inside an axis of `size` elements. Empty when the window misses the axis. */
static inline void ftte_conv_taps(int32_t start, int32_t kernel, int32_t size, int32_t *lo,
                                  int32_t *hi) {
    *lo = start < 0 ? -start : 0;
    *hi = size - start < kernel ? size - start : kernel;
}

/* Checks what every kernel with an output-channel slice checks before its pointers: a
 * valid layer of operator `op` with kernel_h * kernel_w <= FTTE_CONV_MAX_ROW, n > 0, a slice
 * inside [0, out.c), and a batch whose element counts fit a ptrdiff_t. */
ftte_status ftte_conv_check(const ftte_layer *layer, int32_t op, int32_t n, ftte_slice slice);

/* Scratch bytes of the conv kernels for a layer of operator `op` (0 if it is invalid). */
int32_t ftte_conv_buffer_size(const ftte_layer *layer, int32_t op);

/* The conv2d kernels' semantics (ftte_kernels.h) for a layer of operator `op`. */
ftte_status ftte_conv_forward(const ftte_layer *layer, int32_t op, int32_t n, ftte_slice slice,
                              const float *input, const float *weights, const float *bias,
                              float *output, float *scratch);
ftte_status ftte_conv_backward_input(const ftte_layer *layer, int32_t op, int32_t n,
                                     ftte_slice slice, const float *grad_output,
                                     const float *weights, float *grad_input, float *scratch);
ftte_status ftte_conv_backward_weight(const ftte_layer *layer, int32_t op, int32_t n,
                                      ftte_slice slice, const float *input,
                                      const float *grad_output, float *grad_weights,
                                      float *scratch);

#endif /* FTTE_CONV_CORE_H */
