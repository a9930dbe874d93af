/* Layers that train some output channels (update mode CHANNELS): the trainer's one-pass calls
 * (src/train/layer_passes.c) give the same bits as the public kernels called once per run of
 * trainable or frozen rows, in order (the per-run path they replace). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/train/train_internal.h"
#include "ftte_kernels.h"
#include "ftte_test.h"

static int32_t rnd(int32_t lo, int32_t hi) {
    return lo + (int32_t)((ftte_test_rand() + 1.0f) * 0.5f * (float)(hi - lo + 1)) % (hi - lo + 1);
}

static ftte_layer make_layer(int32_t op, int32_t in_c, int32_t out_c, int32_t stride) {
    ftte_layer l;
    memset(&l, 0, sizeof l);
    l.op = op;
    l.in.h = l.out.h = l.in.w = l.out.w = 1;
    l.kernel_h = l.kernel_w = l.stride_h = l.stride_w = 1;
    l.in.c = in_c, l.out.c = out_c;
    if (op == FTTE_OP_POINTWISE_CONV2D) l.in.h = l.out.h = 2, l.in.w = l.out.w = 3;
    if (op == FTTE_OP_CONV1D || op == FTTE_OP_CONV2D) {
        l.in.w = 12, l.kernel_w = 5, l.pad_left = 2, l.stride_w = stride;
        l.out.w = (12 + 4 - 5) / stride + 1;
    }
    if (op == FTTE_OP_CONV2D) {
        l.in.h = 5, l.kernel_h = 3, l.pad_top = 1, l.stride_h = stride;
        l.out.h = (5 + 2 - 3) / stride + 1;
    }
    return l;
}

/* The per-run path: one public kernel call per run, weights and bias as the trainer keeps them
 * (trainable rows packed in params, then the bias; frozen rows in the layer table). */
static const float *run_weights(const ftte_layer *l, const float *params, const ftte_run *run) {
    const int32_t len = ftte_layer_row_length(l);
    return run->trainable ? params + run->rank * len : l->weights + run->begin * len;
}

static ftte_status forward_slice(const ftte_layer *l, int32_t n, ftte_slice s, const float *x,
                                 const float *w, const float *b, float *y, float *scratch) {
    switch (l->op) {
    case FTTE_OP_DENSE: return ftte_dense_forward(l, n, s, x, w, b, y);
    case FTTE_OP_POINTWISE_CONV2D: return ftte_pointwise_conv2d_forward(l, n, s, x, w, b, y);
    case FTTE_OP_CONV1D: return ftte_conv1d_forward(l, n, s, x, w, b, y, scratch);
    default: return ftte_conv2d_forward(l, n, s, x, w, b, y, scratch);
    }
}

static ftte_status backward_input_slice(const ftte_layer *l, int32_t n, ftte_slice s,
                                        const float *g, const float *w, float *gx,
                                        float *scratch) {
    switch (l->op) {
    case FTTE_OP_DENSE: return ftte_dense_backward_input(l, n, s, g, w, gx);
    case FTTE_OP_POINTWISE_CONV2D: return ftte_pointwise_conv2d_backward_input(l, n, s, g, w, gx);
    case FTTE_OP_CONV1D: return ftte_conv1d_backward_input(l, n, s, g, w, gx, scratch);
    default: return ftte_conv2d_backward_input(l, n, s, g, w, gx, scratch);
    }
}

static ftte_status backward_weight_slice(const ftte_layer *l, int32_t n, ftte_slice s,
                                         const float *x, const float *g, float *gw,
                                         float *scratch) {
    switch (l->op) {
    case FTTE_OP_DENSE: return ftte_dense_backward_weight(l, n, s, x, g, gw);
    case FTTE_OP_POINTWISE_CONV2D: return ftte_pointwise_conv2d_backward_weight(l, n, s, x, g, gw);
    case FTTE_OP_CONV1D: return ftte_conv1d_backward_weight(l, n, s, x, g, gw, scratch);
    default: return ftte_conv2d_backward_weight(l, n, s, x, g, gw, scratch);
    }
}

static int same_bits(const float *a, const float *b, int32_t count) {
    return memcmp(a, b, (size_t)count * sizeof(float)) == 0;
}

/* One layer, one mask, one batch: forward, backward to the input, backward to the params. */
static void check_case(ftte_layer l, const uint8_t *mask, int32_t n) {
    const ftte_layer_update update = {FTTE_UPDATE_CHANNELS, mask};
    FTTE_CHECK(ftte_layer_validate(&l) == FTTE_OK);
    const int32_t len = ftte_layer_row_length(&l), rows = ftte_update_rows(&l, &update);
    const int32_t in_size = n * ftte_shape_size(l.in), out_size = n * ftte_shape_size(l.out);
    float *table = ftte_test_random_buffer(l.out.c * len), *table_bias =
        ftte_test_random_buffer(l.out.c);
    l.weights = table, l.bias = table_bias;
    float *params = ftte_test_random_buffer(rows * len + l.out.c); /* rows, then the bias */
    float *x = ftte_test_random_buffer(in_size), *g = ftte_test_random_buffer(out_size);
    float *y = ftte_test_random_buffer(out_size), *y_ref = ftte_test_zero_buffer(out_size);
    memcpy(y_ref, y, (size_t)out_size * sizeof(float));
    float *gx = ftte_test_random_buffer(in_size), *gx_ref = ftte_test_zero_buffer(in_size);
    memcpy(gx_ref, gx, (size_t)in_size * sizeof(float));
    float *gw = ftte_test_random_buffer(rows * len + 1), *gw_ref = ftte_test_zero_buffer(rows * len + 1);
    memcpy(gw_ref, gw, (size_t)(rows * len + 1) * sizeof(float));
    const int32_t scratch_bytes = ftte_layer_forward_scratch(&l, n) >
                                          ftte_layer_backward_scratch(&l, n, 1, 1)
                                      ? ftte_layer_forward_scratch(&l, n)
                                      : ftte_layer_backward_scratch(&l, n, 1, 1);
    float *scratch = ftte_test_zero_buffer(scratch_bytes / (int32_t)sizeof(float) + 1);

    FTTE_CHECK(ftte_layer_forward(&l, &update, params, n, x, y, scratch, NULL) == FTTE_OK);
    FTTE_CHECK(ftte_layer_backward_input(&l, &update, params, n, x, y, NULL, g, gx, scratch) ==
               FTTE_OK);
    FTTE_CHECK(ftte_layer_backward_params(&l, &update, n, x, g, rows ? gw : NULL, NULL,
                                          scratch) == FTTE_OK);

    ftte_run run = {0, 0, 0, 0};
    while (ftte_next_run(&l, &update, &run)) {
        const ftte_slice s = {run.begin, run.count};
        const float *w = run_weights(&l, params, &run);
        FTTE_CHECK(forward_slice(&l, n, s, x, w, params + rows * len + run.begin, y_ref,
                                 scratch) == FTTE_OK);
        FTTE_CHECK(backward_input_slice(&l, n, s, g, w, gx_ref, scratch) == FTTE_OK);
        if (run.trainable)
            FTTE_CHECK(backward_weight_slice(&l, n, s, x, g, gw_ref + run.rank * len, scratch) ==
                       FTTE_OK);
    }
    FTTE_CHECK(same_bits(y, y_ref, out_size));
    FTTE_CHECK(same_bits(gx, gx_ref, in_size));
    FTTE_CHECK(same_bits(gw, gw_ref, rows * len + 1));
    if (!same_bits(y, y_ref, out_size) || !same_bits(gx, gx_ref, in_size) ||
        !same_bits(gw, gw_ref, rows * len + 1))
        printf("  op %d in.c %d out.c %d n %d stride %d\n", (int)l.op, (int)l.in.c, (int)l.out.c,
               (int)n, (int)l.stride_w);
    free(table), free(table_bias), free(params), free(x), free(g), free(y), free(y_ref);
    free(gx), free(gx_ref), free(gw), free(gw_ref), free(scratch);
}

/* Random masks (scattered, runs of every length, none and all) over random sizes. */
static void check_op(int32_t op, int32_t max_in, int32_t max_out, int cases) {
    static const int32_t batches[] = {1, 3, 4, 5};
    for (int c = 0; c < cases; c++) {
        const int32_t in_c = c == 0 ? 160 : rnd(1, max_in), out_c = c == 0 ? 32 : rnd(1, max_out);
        uint8_t mask[16] = {0};
        const int density = rnd(0, 4); /* 0: none, 4: all, else about density / 4 */
        for (int32_t o = 0; o < out_c; o++)
            if (density == 4 || rnd(0, 3) < density) mask[o >> 3] |= (uint8_t)(1u << (o & 7));
        for (int b = 0; b < 4; b++)
            check_case(make_layer(op, in_c, out_c, 1 + (c & 1)), mask, batches[b]);
    }
}

static void test_dense_runs_same_bits(void) { check_op(FTTE_OP_DENSE, 70, 70, 40); }
static void test_pointwise_runs_same_bits(void) { check_op(FTTE_OP_POINTWISE_CONV2D, 40, 40, 20); }
static void test_conv1d_runs_same_bits(void) { check_op(FTTE_OP_CONV1D, 9, 40, 20); }
static void test_conv2d_runs_same_bits(void) { check_op(FTTE_OP_CONV2D, 5, 20, 12); }

FTTE_TEST_MAIN(test_dense_runs_same_bits, test_pointwise_runs_same_bits,
               test_conv1d_runs_same_bits, test_conv2d_runs_same_bits)
