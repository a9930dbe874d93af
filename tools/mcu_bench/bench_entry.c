/*
 * Freestanding Cortex-M4F harness for the instruction-count benchmark
 * (host/ftte/bench/instructions.py, linked with tools/mcu_bench/link.ld).
 *
 * bench_run(case_id) calls ONE kernel once on the fixed geometry of row case_id of
 * bench_cases and returns its status. There is no startup code: the emulator sets SP, enters
 * bench_run with LR = bench_halt, and counts the instructions executed from the kernel's entry
 * to its return. Buffers are static (.bss); the host fills them before each run (inputs and
 * the accumulated gradients alike) and reads the results back, so nothing here initialises
 * data and the counted call is the kernel alone.
 *
 * The case table is the single source of the geometries: the host reads it from the ELF
 * (bench_cases, bench_case_count, bench_case_fields) and names each row by its operator and
 * direction.
 */
#include <stdint.h>
#include <string.h>

#include "ftte_kernels.h"
#include "ftte_train.h"

/* Directions, as the host names them. */
#define BENCH_FORWARD 0
#define BENCH_BACKWARD_INPUT 1
#define BENCH_BACKWARD_WEIGHT 2

/* Statuses of the harness itself, far from every ftte_status. */
#define BENCH_ERR_CASE (-100)     /* case_id outside the table */
#define BENCH_ERR_CAPACITY (-101) /* a case needs more than a static buffer holds */
#define BENCH_ERR_DIRECTION (-102)

/* One row: direction, batch, op, in.h, in.w, in.c, out.h, out.w, out.c, kernel_h, kernel_w,
 * stride_h, stride_w, pad_top, pad_left. */
#define BENCH_FIELDS 15
#define CASE(dir, n, op, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl) \
    {dir, n, op, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl}
/* All three directions of one layer. */
#define LAYER(n, op, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl)                   \
    CASE(BENCH_FORWARD, n, op, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl),         \
    CASE(BENCH_BACKWARD_INPUT, n, op, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl),  \
    CASE(BENCH_BACKWARD_WEIGHT, n, op, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl)

/* Geometries of the reference models' layers (host/ftte/zoo/reference.py). */
const int32_t bench_cases[][BENCH_FIELDS] = {
    /* dense 64 -> 32 (digits_mlp), batch 1 and batch 8 */
    LAYER(1, FTTE_OP_DENSE, 1, 1, 64, 1, 1, 32, 0, 0, 0, 0, 0, 0),
    LAYER(8, FTTE_OP_DENSE, 1, 1, 64, 1, 1, 32, 0, 0, 0, 0, 0, 0),
    /* conv2d 3x3, 8 -> 16 channels on 14x14, stride 1, padding 1 (digits_cnn2d-like) */
    LAYER(1, FTTE_OP_CONV2D, 14, 14, 8, 14, 14, 16, 3, 3, 1, 1, 1, 1),
    /* pointwise 16 -> 16 on 14x14 (digits_cnn2d) */
    LAYER(1, FTTE_OP_POINTWISE_CONV2D, 14, 14, 16, 14, 14, 16, 1, 1, 1, 1, 0, 0),
    /* depthwise 3x3 on 14x14x8, stride 1, padding 1 (digits_cnn2d) */
    LAYER(1, FTTE_OP_DEPTHWISE_CONV2D, 14, 14, 8, 14, 14, 8, 3, 3, 1, 1, 1, 1),
    /* conv1d kernel 5, 3 -> 16 channels on width 64, stride 1, padding 2 (accel_cnn1d-like) */
    LAYER(1, FTTE_OP_CONV1D, 1, 64, 3, 1, 64, 16, 1, 5, 1, 1, 0, 2),
};
const int32_t bench_case_count = (int32_t)(sizeof bench_cases / sizeof bench_cases[0]);
const int32_t bench_case_fields = BENCH_FIELDS;

/* Capacities in floats; the host reads the sizes from the symbol table. */
#define X_CAP 4096 /* one batch of input activations */
#define Y_CAP 4096 /* one batch of output activations */
#define W_CAP 2048 /* the weights of one layer */
#define B_CAP 64
#define S_CAP 1024 /* kernel scratch */

float bench_x[X_CAP];       /* input (forward, backward_weight) */
float bench_gx[X_CAP];      /* grad_input (backward_input; accumulated) */
float bench_y[Y_CAP];       /* output (forward) */
float bench_gy[Y_CAP];      /* grad_output (backward_input, backward_weight) */
float bench_w[W_CAP];       /* weights */
float bench_gw[W_CAP];      /* grad_weights (backward_weight; accumulated) */
float bench_bias[B_CAP];    /* bias (forward) */
float bench_scratch[S_CAP]; /* scratch of the conv kernels */

/* LR of the emulated call: bench_run returns here and the emulator stops at it. */
void bench_halt(void) {
    for (;;) {
    }
}

static int32_t scratch_bytes(const ftte_layer *l, int32_t n, int32_t direction) {
    if (l->op == FTTE_OP_CONV2D) {
        if (direction == BENCH_FORWARD) return ftte_conv2d_forward_get_buffer_size(l, n);
        if (direction == BENCH_BACKWARD_INPUT) return ftte_conv2d_backward_input_get_buffer_size(l, n);
        return ftte_conv2d_backward_weight_get_buffer_size(l, n);
    }
    if (l->op == FTTE_OP_CONV1D) {
        if (direction == BENCH_FORWARD) return ftte_conv1d_forward_get_buffer_size(l, n);
        if (direction == BENCH_BACKWARD_INPUT) return ftte_conv1d_backward_input_get_buffer_size(l, n);
        return ftte_conv1d_backward_weight_get_buffer_size(l, n);
    }
    return 0;
}

/* The one counted call: kernel `op` in `direction`. */
static int dispatch(const ftte_layer *l, int32_t n, int32_t direction) {
    const ftte_slice all = {0, l->out.c};
    float *x = bench_x, *gx = bench_gx, *y = bench_y, *gy = bench_gy, *gw = bench_gw;
    const float *w = bench_w, *b = bench_bias;
    float *s = bench_scratch;
    switch (l->op * 4 + direction) {
    case FTTE_OP_DENSE * 4 + BENCH_FORWARD:
        return ftte_dense_forward(l, n, all, x, w, b, y);
    case FTTE_OP_DENSE * 4 + BENCH_BACKWARD_INPUT:
        return ftte_dense_backward_input(l, n, all, gy, w, gx);
    case FTTE_OP_DENSE * 4 + BENCH_BACKWARD_WEIGHT:
        return ftte_dense_backward_weight(l, n, all, x, gy, gw);
    case FTTE_OP_CONV2D * 4 + BENCH_FORWARD:
        return ftte_conv2d_forward(l, n, all, x, w, b, y, s);
    case FTTE_OP_CONV2D * 4 + BENCH_BACKWARD_INPUT:
        return ftte_conv2d_backward_input(l, n, all, gy, w, gx, s);
    case FTTE_OP_CONV2D * 4 + BENCH_BACKWARD_WEIGHT:
        return ftte_conv2d_backward_weight(l, n, all, x, gy, gw, s);
    case FTTE_OP_CONV1D * 4 + BENCH_FORWARD:
        return ftte_conv1d_forward(l, n, all, x, w, b, y, s);
    case FTTE_OP_CONV1D * 4 + BENCH_BACKWARD_INPUT:
        return ftte_conv1d_backward_input(l, n, all, gy, w, gx, s);
    case FTTE_OP_CONV1D * 4 + BENCH_BACKWARD_WEIGHT:
        return ftte_conv1d_backward_weight(l, n, all, x, gy, gw, s);
    case FTTE_OP_POINTWISE_CONV2D * 4 + BENCH_FORWARD:
        return ftte_pointwise_conv2d_forward(l, n, all, x, w, b, y);
    case FTTE_OP_POINTWISE_CONV2D * 4 + BENCH_BACKWARD_INPUT:
        return ftte_pointwise_conv2d_backward_input(l, n, all, gy, w, gx);
    case FTTE_OP_POINTWISE_CONV2D * 4 + BENCH_BACKWARD_WEIGHT:
        return ftte_pointwise_conv2d_backward_weight(l, n, all, x, gy, gw);
    case FTTE_OP_DEPTHWISE_CONV2D * 4 + BENCH_FORWARD:
        return ftte_depthwise_conv2d_forward(l, n, all, x, w, b, y);
    case FTTE_OP_DEPTHWISE_CONV2D * 4 + BENCH_BACKWARD_INPUT:
        return ftte_depthwise_conv2d_backward_input(l, n, all, gy, w, gx);
    case FTTE_OP_DEPTHWISE_CONV2D * 4 + BENCH_BACKWARD_WEIGHT:
        return ftte_depthwise_conv2d_backward_weight(l, n, all, x, gy, gw);
    default:
        return BENCH_ERR_DIRECTION;
    }
}

/* The layer a case row describes from its op field on (op, in h w c, out h w c, kernel h w,
 * stride h w, pad top left), over the static weight and bias buffers. */
static ftte_layer case_layer(const int32_t *g) {
    ftte_layer l;
    l.op = g[0];
    l.in.h = g[1], l.in.w = g[2], l.in.c = g[3];
    l.out.h = g[4], l.out.w = g[5], l.out.c = g[6];
    l.kernel_h = g[7], l.kernel_w = g[8];
    l.stride_h = g[9], l.stride_w = g[10];
    l.pad_top = g[11], l.pad_left = g[12];
    l.weights = bench_w;
    l.bias = bench_bias;
    return l;
}

int bench_run(int32_t case_id) {
    if (case_id < 0 || case_id >= bench_case_count) return BENCH_ERR_CASE;
    const int32_t *c = bench_cases[case_id];
    const int32_t direction = c[0], n = c[1];
    if (direction < BENCH_FORWARD || direction > BENCH_BACKWARD_WEIGHT) return BENCH_ERR_DIRECTION;
    ftte_layer l = case_layer(c + 2);
    const ftte_status valid = ftte_layer_validate(&l);
    if (valid != FTTE_OK) return valid;
    /* The tensors of the case must fit the static buffers. */
    if (n < 1 || (int64_t)n * ftte_shape_size(l.in) > X_CAP ||
        (int64_t)n * ftte_shape_size(l.out) > Y_CAP ||
        (int64_t)l.out.c * ftte_layer_row_length(&l) > W_CAP || l.out.c > B_CAP ||
        scratch_bytes(&l, n, direction) > (int32_t)sizeof bench_scratch)
        return BENCH_ERR_CAPACITY;
    return dispatch(&l, n, direction);
}

/* ---------------------------------------------------------------------------------------- */
/* The rest of a training step (ftte.bench.instructions' "ops" section)                      */
/* ---------------------------------------------------------------------------------------- */

/* bench_op_run(case_id) calls ONE function once on row case_id of bench_op_cases: a MAC
 * kernel on an output-channel slice {0, count} (what a run of trainable or frozen channels
 * costs), or one of the other operations of ftte_train_step (SGD, activations and their
 * masks, indexed max pool, bias gradient, loss, zeroing). Each is measured at two or more
 * sizes, so that the host solves a per-element cost and a per-call constant exactly. */
#define OP_FORWARD 0 /* 0..2: the MAC kernel of the row's op in that direction, slice {0, count} */
#define OP_BACKWARD_INPUT 1
#define OP_BACKWARD_WEIGHT 2
#define OP_SGD 3          /* ftte_sgd_update of count values, no velocity */
#define OP_SGD_MOMENTUM 4 /* ... with velocity */
#define OP_RELU 5         /* ftte_relu_forward of count floats */
#define OP_RELU6 6
#define OP_RELU_MASK 7 /* ftte_relu_mask of count floats */
#define OP_RELU6_MASK 8
#define OP_MASKED_BACKWARD 9 /* ftte_activation_backward_masked of count floats */
#define OP_RELU_BACKWARD 10  /* ftte_relu_backward of count floats */
#define OP_POOL_FORWARD 11   /* ftte_max_pool2d_forward_indexed of the row's geometry */
#define OP_POOL_BACKWARD 12  /* ftte_max_pool2d_backward_indexed of the row's geometry */
#define OP_BIAS_BACKWARD 13  /* ftte_bias_backward: count rows of the geometry's out.c */
#define OP_CROSS_ENTROPY 14  /* ftte_cross_entropy_backward: batch n of count classes */
#define OP_ZERO 15           /* memset of count floats (train_step.c's zero() compiles to it) */
#define OP_KINDS 16

/* One row: kind, batch, count, then the 13 geometry integers of bench_cases. */
#define OP_FIELDS 16
#define OP(kind, n, count, op, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl) \
    {kind, n, count, op, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl}
#define ELEMENTWISE(kind, count) OP(kind, 1, count, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
/* A MAC kernel direction on slices of 1, 2, 3, 4 and 8 channels, and the whole layer again at
 * a second size (for the per-call constant; the whole layer at the first size is bench_cases'). */
#define SLICES(dir, n, op, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl, ih2, iw2, ic2, oh2, ow2) \
    OP(dir, n, 1, op, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl),                            \
    OP(dir, n, 2, op, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl),                            \
    OP(dir, n, 3, op, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl),                            \
    OP(dir, n, 4, op, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl),                            \
    OP(dir, n, 8, op, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl),                            \
    OP(dir, n, oc, op, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl),                           \
    OP(dir, n, oc, op, ih2, iw2, ic2, oh2, ow2, oc, kh, kw, sh, sw, pt, pl)
#define SLICES3(n, op, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl, ih2, iw2, ic2, oh2, ow2)                      \
    SLICES(OP_FORWARD, n, op, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl, ih2, iw2, ic2, oh2, ow2),         \
    SLICES(OP_BACKWARD_INPUT, n, op, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl, ih2, iw2, ic2, oh2, ow2),  \
    SLICES(OP_BACKWARD_WEIGHT, n, op, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl, ih2, iw2, ic2, oh2, ow2)

const int32_t bench_op_cases[][OP_FIELDS] = {
    /* the MAC kernels of bench_cases (batch 1), second size: half the input channels (dense)
     * or half the width (conv) */
    SLICES3(1, FTTE_OP_DENSE, 1, 1, 64, 1, 1, 32, 0, 0, 0, 0, 0, 0, 1, 1, 32, 1, 1),
    SLICES3(1, FTTE_OP_CONV2D, 14, 14, 8, 14, 14, 16, 3, 3, 1, 1, 1, 1, 14, 7, 8, 14, 7),
    SLICES3(1, FTTE_OP_POINTWISE_CONV2D, 14, 14, 16, 14, 14, 16, 1, 1, 1, 1, 0, 0, 14, 7, 16, 14, 7),
    SLICES3(1, FTTE_OP_DEPTHWISE_CONV2D, 14, 14, 8, 14, 14, 8, 3, 3, 1, 1, 1, 1, 14, 7, 8, 14, 7),
    SLICES3(1, FTTE_OP_CONV1D, 1, 64, 3, 1, 64, 16, 1, 5, 1, 1, 0, 2, 1, 32, 3, 1, 32),
    ELEMENTWISE(OP_SGD, 64), ELEMENTWISE(OP_SGD, 256),
    ELEMENTWISE(OP_SGD_MOMENTUM, 64), ELEMENTWISE(OP_SGD_MOMENTUM, 256),
    ELEMENTWISE(OP_RELU, 64), ELEMENTWISE(OP_RELU, 256),
    ELEMENTWISE(OP_RELU6, 64), ELEMENTWISE(OP_RELU6, 256),
    ELEMENTWISE(OP_RELU_MASK, 64), ELEMENTWISE(OP_RELU_MASK, 256),
    ELEMENTWISE(OP_RELU6_MASK, 64), ELEMENTWISE(OP_RELU6_MASK, 256),
    ELEMENTWISE(OP_MASKED_BACKWARD, 64), ELEMENTWISE(OP_MASKED_BACKWARD, 256),
    ELEMENTWISE(OP_RELU_BACKWARD, 64), ELEMENTWISE(OP_RELU_BACKWARD, 256),
    ELEMENTWISE(OP_ZERO, 64), ELEMENTWISE(OP_ZERO, 256),
    ELEMENTWISE(OP_CROSS_ENTROPY, 8), ELEMENTWISE(OP_CROSS_ENTROPY, 16),
    /* bias gradient: rows x channels at (16, 8), (32, 8), (16, 16) */
    OP(OP_BIAS_BACKWARD, 1, 16, FTTE_OP_DENSE, 1, 1, 1, 1, 1, 8, 0, 0, 0, 0, 0, 0),
    OP(OP_BIAS_BACKWARD, 1, 32, FTTE_OP_DENSE, 1, 1, 1, 1, 1, 8, 0, 0, 0, 0, 0, 0),
    OP(OP_BIAS_BACKWARD, 1, 16, FTTE_OP_DENSE, 1, 1, 1, 1, 1, 16, 0, 0, 0, 0, 0, 0),
    /* indexed max pool: 1x2 windows over 32 and 64 columns of 8 channels, 1x4 over 64 */
    OP(OP_POOL_FORWARD, 1, 0, FTTE_OP_MAX_POOL2D, 1, 32, 8, 1, 16, 8, 1, 2, 1, 2, 0, 0),
    OP(OP_POOL_FORWARD, 1, 0, FTTE_OP_MAX_POOL2D, 1, 64, 8, 1, 32, 8, 1, 2, 1, 2, 0, 0),
    OP(OP_POOL_FORWARD, 1, 0, FTTE_OP_MAX_POOL2D, 1, 64, 8, 1, 16, 8, 1, 4, 1, 4, 0, 0),
    OP(OP_POOL_BACKWARD, 1, 0, FTTE_OP_MAX_POOL2D, 1, 32, 8, 1, 16, 8, 1, 2, 1, 2, 0, 0),
    OP(OP_POOL_BACKWARD, 1, 0, FTTE_OP_MAX_POOL2D, 1, 64, 8, 1, 32, 8, 1, 2, 1, 2, 0, 0),
    OP(OP_POOL_BACKWARD, 1, 0, FTTE_OP_MAX_POOL2D, 1, 64, 8, 1, 16, 8, 1, 4, 1, 4, 0, 0),
};
const int32_t bench_op_fields = OP_FIELDS;

uint8_t bench_aux[X_CAP];  /* activation masks, max pool argmax */
int32_t bench_labels[64];  /* cross-entropy labels */
float bench_op_loss;

int bench_op_run(int32_t case_id) {
    const int32_t count_cases = (int32_t)(sizeof bench_op_cases / sizeof bench_op_cases[0]);
    if (case_id < 0 || case_id >= count_cases) return BENCH_ERR_CASE;
    const int32_t *c = bench_op_cases[case_id];
    const int32_t kind = c[0], n = c[1], count = c[2];
    ftte_layer l = case_layer(c + 3);
    if (kind < 0 || kind >= OP_KINDS) return BENCH_ERR_DIRECTION;
    if (kind <= OP_BACKWARD_WEIGHT || kind == OP_POOL_FORWARD || kind == OP_POOL_BACKWARD) {
        const ftte_status valid = ftte_layer_validate(&l);
        if (valid != FTTE_OK) return valid;
        if (n < 1 || (int64_t)n * ftte_shape_size(l.in) > X_CAP ||
            (int64_t)n * ftte_shape_size(l.out) > Y_CAP)
            return BENCH_ERR_CAPACITY;
    } else if (count < 1 || count > X_CAP || count > W_CAP || n > 64) {
        return BENCH_ERR_CAPACITY;
    }
    float *x = bench_x, *gx = bench_gx, *y = bench_y, *gy = bench_gy, *gw = bench_gw;
    const float *w = bench_w, *b = bench_bias;
    float *s = bench_scratch;
    if (kind <= OP_BACKWARD_WEIGHT) {
        const ftte_slice slice = {0, count};
        if (count < 1 || count > l.out.c || (int64_t)l.out.c * ftte_layer_row_length(&l) > W_CAP ||
            l.out.c > B_CAP || scratch_bytes(&l, n, kind) > (int32_t)sizeof bench_scratch)
            return BENCH_ERR_CAPACITY;
        switch (l.op * 4 + kind) {
        case FTTE_OP_DENSE * 4 + BENCH_FORWARD: return ftte_dense_forward(&l, n, slice, x, w, b, y);
        case FTTE_OP_DENSE * 4 + BENCH_BACKWARD_INPUT:
            return ftte_dense_backward_input(&l, n, slice, gy, w, gx);
        case FTTE_OP_DENSE * 4 + BENCH_BACKWARD_WEIGHT:
            return ftte_dense_backward_weight(&l, n, slice, x, gy, gw);
        case FTTE_OP_CONV2D * 4 + BENCH_FORWARD:
            return ftte_conv2d_forward(&l, n, slice, x, w, b, y, s);
        case FTTE_OP_CONV2D * 4 + BENCH_BACKWARD_INPUT:
            return ftte_conv2d_backward_input(&l, n, slice, gy, w, gx, s);
        case FTTE_OP_CONV2D * 4 + BENCH_BACKWARD_WEIGHT:
            return ftte_conv2d_backward_weight(&l, n, slice, x, gy, gw, s);
        case FTTE_OP_CONV1D * 4 + BENCH_FORWARD:
            return ftte_conv1d_forward(&l, n, slice, x, w, b, y, s);
        case FTTE_OP_CONV1D * 4 + BENCH_BACKWARD_INPUT:
            return ftte_conv1d_backward_input(&l, n, slice, gy, w, gx, s);
        case FTTE_OP_CONV1D * 4 + BENCH_BACKWARD_WEIGHT:
            return ftte_conv1d_backward_weight(&l, n, slice, x, gy, gw, s);
        case FTTE_OP_POINTWISE_CONV2D * 4 + BENCH_FORWARD:
            return ftte_pointwise_conv2d_forward(&l, n, slice, x, w, b, y);
        case FTTE_OP_POINTWISE_CONV2D * 4 + BENCH_BACKWARD_INPUT:
            return ftte_pointwise_conv2d_backward_input(&l, n, slice, gy, w, gx);
        case FTTE_OP_POINTWISE_CONV2D * 4 + BENCH_BACKWARD_WEIGHT:
            return ftte_pointwise_conv2d_backward_weight(&l, n, slice, x, gy, gw);
        case FTTE_OP_DEPTHWISE_CONV2D * 4 + BENCH_FORWARD:
            return ftte_depthwise_conv2d_forward(&l, n, slice, x, w, b, y);
        case FTTE_OP_DEPTHWISE_CONV2D * 4 + BENCH_BACKWARD_INPUT:
            return ftte_depthwise_conv2d_backward_input(&l, n, slice, gy, w, gx);
        case FTTE_OP_DEPTHWISE_CONV2D * 4 + BENCH_BACKWARD_WEIGHT:
            return ftte_depthwise_conv2d_backward_weight(&l, n, slice, x, gy, gw);
        default: return BENCH_ERR_DIRECTION;
        }
    }
    switch (kind) {
    case OP_SGD: return ftte_sgd_update(count, 0.01f, 0.0f, gw, 0, bench_w);
    case OP_SGD_MOMENTUM: return ftte_sgd_update(count, 0.01f, 0.9f, gw, bench_gx, bench_w);
    case OP_RELU: return ftte_relu_forward(count, x, y);
    case OP_RELU6: return ftte_relu6_forward(count, x, y);
    case OP_RELU_MASK: return ftte_relu_mask(count, y, (uint32_t *)(void *)bench_aux);
    case OP_RELU6_MASK: return ftte_relu6_mask(count, y, (uint32_t *)(void *)bench_aux);
    case OP_MASKED_BACKWARD:
        return ftte_activation_backward_masked(count, (const uint32_t *)(const void *)bench_aux,
                                               gy, gx);
    case OP_RELU_BACKWARD: return ftte_relu_backward(count, y, gy, gx);
    case OP_POOL_FORWARD: return ftte_max_pool2d_forward_indexed(&l, n, x, y, bench_aux);
    case OP_POOL_BACKWARD: return ftte_max_pool2d_backward_indexed(&l, n, bench_aux, gy, gx);
    case OP_BIAS_BACKWARD:
        if ((int64_t)count * l.out.c > Y_CAP || l.out.c > W_CAP) return BENCH_ERR_CAPACITY;
        return ftte_bias_backward(count, l.out.c, gy, gw);
    case OP_CROSS_ENTROPY:
        if ((int64_t)n * count > Y_CAP) return BENCH_ERR_CAPACITY;
        return ftte_cross_entropy_backward(n, count, y, bench_labels, gy, &bench_op_loss);
    case OP_ZERO: memset(gw, 0, (size_t)count * sizeof(float)); return 0;
    default: return BENCH_ERR_DIRECTION;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* One whole training step (host/ftte/bench/steps.py)                                        */
/* ---------------------------------------------------------------------------------------- */

/* The host writes a model and an update spec here, calls bench_step_prepare() (plan and
 * init, not counted) and then bench_step_run(), of which the emulator counts the one call of
 * ftte_train_step: forward, loss, backward and SGD update of one batch, as a board runs it. */
#define STEP_MAX_LAYERS 16
/* One row per layer: op, in.h, in.w, in.c, out.h, out.w, out.c, kernel_h, kernel_w,
 * stride_h, stride_w, pad_top, pad_left, has_bias, update mode. */
#define STEP_FIELDS 15
#define STEP_MASK_BYTES 16 /* channel masks of up to 128 output channels */
#define STEP_PARAMS_CAP 12288 /* floats: every layer's weights then bias, in layer order */
#define STEP_ARENA_CAP 81920 /* bytes: the full spec of accel_cnn1d plans 73,752 */
#define STEP_BATCH_CAP 4

int32_t bench_step_layers[STEP_MAX_LAYERS][STEP_FIELDS];
uint8_t bench_step_masks[STEP_MAX_LAYERS][STEP_MASK_BYTES];
int32_t bench_step_count; /* layers */
int32_t bench_step_batch;
int32_t bench_step_labels[STEP_BATCH_CAP];
float bench_step_params[STEP_PARAMS_CAP];
float bench_step_loss;
float bench_step_lr;
int32_t bench_step_memory; /* the plan's arena bytes, for the host to compare */
unsigned char bench_step_arena[STEP_ARENA_CAP] __attribute__((aligned(8)));
const int32_t bench_step_fields = STEP_FIELDS;
const int32_t bench_step_max_layers = STEP_MAX_LAYERS;
const int32_t bench_step_mask_bytes = STEP_MASK_BYTES;

static ftte_layer step_layers[STEP_MAX_LAYERS];
static ftte_layer_update step_updates[STEP_MAX_LAYERS];
static ftte_model step_model;
static ftte_train_config step_config;
static ftte_plan step_plan;

int bench_step_prepare(void) {
    const int32_t count = bench_step_count;
    if (count < 1 || count > STEP_MAX_LAYERS || bench_step_batch < 1 ||
        bench_step_batch > STEP_BATCH_CAP)
        return BENCH_ERR_CAPACITY;
    int64_t used = 0;
    for (int32_t i = 0; i < count; i++) {
        const int32_t *c = bench_step_layers[i];
        ftte_layer *l = &step_layers[i];
        l->op = c[0];
        l->in.h = c[1], l->in.w = c[2], l->in.c = c[3];
        l->out.h = c[4], l->out.w = c[5], l->out.c = c[6];
        l->kernel_h = c[7], l->kernel_w = c[8];
        l->stride_h = c[9], l->stride_w = c[10];
        l->pad_top = c[11], l->pad_left = c[12];
        l->weights = 0;
        l->bias = 0;
        if (l->op == FTTE_OP_DENSE || l->op == FTTE_OP_CONV2D || l->op == FTTE_OP_CONV1D ||
            l->op == FTTE_OP_POINTWISE_CONV2D || l->op == FTTE_OP_DEPTHWISE_CONV2D) {
            const int64_t weights = (int64_t)l->out.c * ftte_layer_row_length(l);
            const int64_t bias = c[13] ? l->out.c : 0;
            if (used + weights + bias > STEP_PARAMS_CAP || l->out.c > 8 * STEP_MASK_BYTES)
                return BENCH_ERR_CAPACITY;
            l->weights = bench_step_params + used;
            l->bias = bias ? bench_step_params + used + weights : 0;
            used += weights + bias;
        }
        step_updates[i].mode = c[14];
        step_updates[i].channel_mask = bench_step_masks[i];
    }
    if ((int64_t)bench_step_batch * ftte_shape_size(step_layers[0].in) > X_CAP)
        return BENCH_ERR_CAPACITY;
    step_model.layers = step_layers;
    step_model.num_layers = count;
    step_config.model = &step_model;
    step_config.updates = step_updates;
    step_config.batch = bench_step_batch;
    step_config.momentum = 0;
    ftte_status status = ftte_plan_train(&step_config, &step_plan);
    if (status != FTTE_OK) return status;
    bench_step_memory = step_plan.memory.total;
    if (step_plan.memory.total > STEP_ARENA_CAP) return BENCH_ERR_CAPACITY;
    return ftte_train_init(&step_plan, bench_step_arena, STEP_ARENA_CAP);
}

/* The counted call: one ftte_train_step on bench_x (the batch) and bench_step_labels. */
int bench_step_run(void) {
    const ftte_sgd_params sgd = {bench_step_lr, 0.0f};
    return ftte_train_step(&step_plan, bench_step_arena, STEP_ARENA_CAP, sgd, bench_x,
                           bench_step_labels, bench_step_batch, &bench_step_loss, 0);
}
