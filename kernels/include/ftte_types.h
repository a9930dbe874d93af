/*
 * FTTE kernels: shared types.
 *
 * Everything the host and the boards must agree on about a model's layout lives here:
 * the status codes, the operator ids, and the layer record of the layer table. The Python
 * package reads these definitions through cffi; it never re-declares them.
 *
 * Conventions used by every kernel:
 *  - float32 everywhere, activations in NHWC order (batch, height, width, channels);
 *    a 1-D signal [n, width, channels] is the same memory as [n, 1, width, channels].
 *  - A shape (ftte_shape) describes one sample; the batch size is an argument.
 *  - Buffers are owned by the caller; kernels never allocate and never do I/O.
 *  - Kernels validate their arguments and return a status instead of writing anywhere
 *    when the geometry is inconsistent.
 */
#ifndef FTTE_TYPES_H
#define FTTE_TYPES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Status returned by every kernel and by the trainer. Zero is success, errors are negative. */
typedef enum {
    FTTE_OK = 0,
    FTTE_ERR_ARG = -1,         /**< NULL pointer, non-positive batch, or out-of-range slice */
    FTTE_ERR_SHAPE = -2,       /**< layer geometry inconsistent (sizes, stride, padding) */
    FTTE_ERR_ARENA = -3,       /**< caller-provided arena smaller than the plan needs */
    FTTE_ERR_UNSUPPORTED = -4, /**< operator or option this build does not support */
    FTTE_ERR_SPEC = -5,        /**< update spec invalid for the layer (e.g. bias-only without bias) */
    FTTE_ERR_MODEL = -6,       /**< layer table inconsistent (shapes of consecutive layers differ) */
    FTTE_ERR_LABEL = -7        /**< a class label outside [0, classes) */
} ftte_status;

/** Operator ids of the layer table. The values are part of the model layout: never renumber. */
typedef enum {
    FTTE_OP_DENSE = 1,            /**< weights [out.c][in.c], in = {1, 1, features} */
    FTTE_OP_CONV2D = 2,           /**< weights [out.c][kernel_h][kernel_w][in.c] */
    FTTE_OP_DEPTHWISE_CONV2D = 3, /**< weights [c][kernel_h][kernel_w], channel multiplier 1 */
    FTTE_OP_POINTWISE_CONV2D = 4, /**< weights [out.c][in.c], 1x1 kernel, stride 1, no padding */
    FTTE_OP_CONV1D = 5,           /**< as CONV2D with in.h == out.h == kernel_h == 1 */
    FTTE_OP_RELU = 6,
    FTTE_OP_RELU6 = 7,
    FTTE_OP_MAX_POOL2D = 8,       /**< window kernel_h x kernel_w, stride, no padding */
    FTTE_OP_AVG_POOL2D = 9,       /**< window kernel_h x kernel_w, stride, no padding */
    FTTE_OP_GLOBAL_AVG_POOL = 10, /**< out = {1, 1, in.c} */
    FTTE_OP_FLATTEN = 11          /**< out = {1, 1, in.h * in.w * in.c}, same memory */
} ftte_op;

/** Shape of one sample, NHWC without N. */
typedef struct {
    int32_t h;
    int32_t w;
    int32_t c;
} ftte_shape;

/**
 * One record of the layer table.
 *
 * Geometry: an output position oy reads input rows oy * stride_h - pad_top + ky for
 * ky in [0, kernel_h); rows outside [0, in.h) are zero padding. Only the padding before
 * the first row (column) is stored; the padding after the last is implied by out.h (out.w).
 * Unused fields (kernel, stride, padding of an activation) are 0 and ignored.
 *
 * weights and bias point at read-only memory (flash on a board). Trainable parts are
 * copied into the training arena (see ftte_train.h); the originals are never written.
 */
typedef struct {
    int32_t op; /**< ftte_op */
    ftte_shape in;
    ftte_shape out;
    int32_t kernel_h;
    int32_t kernel_w;
    int32_t stride_h;
    int32_t stride_w;
    int32_t pad_top;
    int32_t pad_left;
    const float *weights; /**< layout per ftte_op; NULL for operators without weights */
    const float *bias;    /**< [out.c], or NULL when the layer has no bias */
} ftte_layer;

/** A contiguous range of output channels [begin, begin + count). */
typedef struct {
    int32_t begin;
    int32_t count;
} ftte_slice;

/** Number of elements of one sample of a shape. */
static inline int32_t ftte_shape_size(ftte_shape s) { return s.h * s.w * s.c; }

#ifdef __cplusplus
}
#endif

#endif /* FTTE_TYPES_H */
