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
