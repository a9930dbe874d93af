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

#include "ftte_kernels.h"

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

int bench_run(int32_t case_id) {
    if (case_id < 0 || case_id >= bench_case_count) return BENCH_ERR_CASE;
    const int32_t *c = bench_cases[case_id];
    const int32_t direction = c[0], n = c[1];
    if (direction < BENCH_FORWARD || direction > BENCH_BACKWARD_WEIGHT) return BENCH_ERR_DIRECTION;
    ftte_layer l;
    l.op = c[2];
    l.in.h = c[3], l.in.w = c[4], l.in.c = c[5];
    l.out.h = c[6], l.out.w = c[7], l.out.c = c[8];
    l.kernel_h = c[9], l.kernel_w = c[10];
    l.stride_h = c[11], l.stride_w = c[12];
    l.pad_top = c[13], l.pad_left = c[14];
    l.weights = bench_w;
    l.bias = bench_bias;
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
