/*
 * Internal to the kernels (not public API): the one convolution implementation behind the
 * conv2d and conv1d kernels, and the argument checks and window clamping that the depthwise
 * kernels share with it.
 */
#ifndef FTTE_CONV_CORE_H
#define FTTE_CONV_CORE_H

#include <stddef.h>

#include "ftte_kernels.h"
#include "ftte_mac.h"

/* Positions per pass of the conv kernels that read windows (the forward and the stride-1
 * backward to the input): each weight loaded in their inner loop feeds this many
 * multiply-accumulates, and their scratch holds this many zero-padded windows. */
#define FTTE_CONV_POSITIONS 4

/* Largest kernel_h * kernel_w * in.c the conv kernels accept (kernel_h * kernel_w for the
 * depthwise ones): FTTE_CONV_POSITIONS windows of it stay within an int32 of bytes. */
#define FTTE_CONV_MAX_ROW (INT32_MAX / ((int32_t)sizeof(float) * FTTE_CONV_POSITIONS))

/* Taps [*lo, *hi) of a kernel-long window starting at `start` (negative inside the padding)
 * that fall inside an axis of `size` elements. Empty when the window misses the axis. */
static inline void ftte_conv_taps(int32_t start, int32_t kernel, int32_t size, int32_t *lo,
                                  int32_t *hi) {
    *lo = start < 0 ? -start : 0;
    *hi = size - start < kernel ? size - start : kernel;
}

/* Output positions [*lo, *hi) along one axis whose tap k lands inside the input:
 * 0 <= o * stride - pad + k < in, with o in [0, out). Empty (hi <= lo) when there are none. */
static inline void ftte_conv_tap_outputs(int32_t k, int32_t pad, int32_t stride, int32_t in,
                                         int32_t out, int32_t *lo, int32_t *hi) {
    const int32_t first = pad - k, end = in + pad - k; /* o * stride in [first, end) */
    /* ceil(a / stride) for a > 0, without forming a + stride - 1 (stride may be huge) */
    *lo = first > 0 ? first / stride + (first % stride != 0) : 0;
    *hi = end > 0 ? end / stride + (end % stride != 0) : 0;
    if (*hi > out) *hi = out;
}

/* The output positions, rows [y_lo, y_hi) x columns [x_lo, x_hi), whose window puts kernel
 * tap (ky, kx) inside the input. The depthwise kernels go tap by tap over these rectangles,
 * so their inner loops run along output rows with no padding test. */
typedef struct {
    int32_t ky, kx, y_lo, y_hi, x_lo, x_hi;
} ftte_conv_rect;

/* Fills *r for tap (ky, kx); returns 0 when the tap only ever falls in the padding. */
static inline int ftte_conv_tap_rect(const ftte_layer *l, int32_t ky, int32_t kx,
                                     ftte_conv_rect *r) {
    r->ky = ky;
    r->kx = kx;
    ftte_conv_tap_outputs(ky, l->pad_top, l->stride_h, l->in.h, l->out.h, &r->y_lo, &r->y_hi);
    ftte_conv_tap_outputs(kx, l->pad_left, l->stride_w, l->in.w, l->out.w, &r->x_lo, &r->x_hi);
    return r->y_hi > r->y_lo && r->x_hi > r->x_lo;
}

/* Checks what every kernel with an output-channel slice checks before its pointers: a
 * valid layer of operator `op` with kernel_h * kernel_w <= FTTE_CONV_MAX_ROW, n > 0, a slice
 * inside [0, out.c), and a batch whose element counts fit a ptrdiff_t. */
ftte_status ftte_conv_check(const ftte_layer *layer, int32_t op, int32_t n, ftte_slice slice);

/* Scratch bytes of each conv kernel for a layer of operator `op` (0 if it is invalid). */
int32_t ftte_conv_forward_scratch(const ftte_layer *layer, int32_t op);
int32_t ftte_conv_backward_input_scratch(const ftte_layer *layer, int32_t op);
int32_t ftte_conv_backward_weight_scratch(const ftte_layer *layer, int32_t op);

/* Where each output channel's weight row is, for a call over all out.c channels of a layer
 * whose rows come from two places (the trainer's runs of trainable rows in its arena and frozen
 * rows in the layer table, src/train/layer_passes.c): channel o's row is at
 * trained + rank(o) * len when bit (o % 8) of mask[o / 8] is set (rank(o): the set bits below
 * o), else at frozen + o * len. mask NULL: every row at frozen + o * len. */
typedef struct {
    const float *trained;
    const float *frozen;
    const uint8_t *mask;
    int32_t len; /* floats per row */
} ftte_weight_rows;

/* Walks the rows of ftte_weight_rows in channel order. */
typedef struct {
    const ftte_weight_rows *rows;
    int32_t o, rank;
} ftte_row_cursor;

static inline const float *ftte_next_row(ftte_row_cursor *c) {
    const ftte_weight_rows *r = c->rows;
    const int32_t o = c->o++;
    if (r->mask != NULL && ((r->mask[o >> 3] >> (o & 7)) & 1))
        return r->trained + (ptrdiff_t)(c->rank++) * r->len;
    return r->frozen + (ptrdiff_t)o * r->len;
}

/* A run of consecutive output channels [begin, begin + count) whose weight rows are one
 * matrix from w on (the backward to the input sums a run's channels, then the next run's). */
typedef struct {
    int32_t begin, count;
    const float *w;
} ftte_conv_run;

/* The conv2d kernels' semantics (ftte_kernels.h) for a layer of operator `op`. */
ftte_status ftte_conv_forward(const ftte_layer *layer, int32_t op, int32_t n, ftte_slice slice,
                              const float *input, const float *weights, const float *bias,
                              float *output, float *scratch);
ftte_status ftte_conv_backward_input(const ftte_layer *layer, int32_t op, int32_t n,
                                     ftte_slice slice, const float *grad_output,
                                     const float *weights, float *grad_input, float *scratch);
/* The forward of every output channel, row o of the weights where `rows` says (rows->len is
 * set here): the bits of one ftte_conv_forward per run of rows, in one pass over the windows. */
ftte_status ftte_conv_forward_rows(const ftte_layer *layer, int32_t op, int32_t n,
                                   ftte_weight_rows rows, const float *input, const float *bias,
                                   float *output, float *scratch);
/* grad_input += the backward of each of the `count` runs in turn: the bits of one
 * ftte_conv_backward_input per run, in order, with each gradient kept in registers from one run
 * to the next. */
ftte_status ftte_conv_backward_input_runs(const ftte_layer *layer, int32_t op, int32_t n,
                                          const ftte_conv_run *runs, int32_t count,
                                          const float *grad_output, float *grad_input,
                                          float *scratch);
/* grad_weights (rows packed, in channel order) += the weight gradient of the output channels
 * whose bit is set in mask (as ftte_weight_rows): the bits of one ftte_conv_backward_weight per
 * run of them, with channels of several runs in one tile. */
ftte_status ftte_conv_backward_weight_rows(const ftte_layer *layer, int32_t op, int32_t n,
                                           const uint8_t *mask, const float *input,
                                           const float *grad_output, float *grad_weights,
                                           float *scratch);
ftte_status ftte_conv_backward_weight(const ftte_layer *layer, int32_t op, int32_t n,
                                      ftte_slice slice, const float *input,
                                      const float *grad_output, float *grad_weights,
                                      float *scratch);

#endif /* FTTE_CONV_CORE_H */
