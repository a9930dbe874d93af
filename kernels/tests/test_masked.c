/* Activation masks and indexed max pool: the compact aux data the trainer saves must drive the
 * backward pass exactly like the float values they replace. */
#include "ftte_kernels.h"
#include "ftte_test.h"

static void fill_with_edges(float *v, int32_t size) {
    for (int32_t i = 0; i < size; i++) v[i] = 8.0f * ftte_test_rand();
    if (size > 3) v[0] = 0.0f, v[1] = 6.0f, v[2] = -0.0f, v[3] = 5.9999995f;
}

static void test_masked_backward_equals_float_backward(void) {
    for (int32_t size = 0; size < 100; size += 7) {
        float *out = ftte_test_zero_buffer(size), *g = ftte_test_random_buffer(size);
        float *want = ftte_test_zero_buffer(size), *got = ftte_test_zero_buffer(size);
        int32_t words = ftte_activation_mask_get_buffer_size(size) / 4;
        uint32_t *mask = (uint32_t *)calloc((size_t)(words ? words : 1), 4);
        for (int six = 0; six < 2; six++) {
            fill_with_edges(out, size);
            if (six) {
                FTTE_CHECK(ftte_relu6_forward(size, out, out) == FTTE_OK);
                FTTE_CHECK(ftte_relu6_mask(size, out, mask) == FTTE_OK);
                FTTE_CHECK(ftte_relu6_backward(size, out, g, want) == FTTE_OK);
            } else {
                FTTE_CHECK(ftte_relu_forward(size, out, out) == FTTE_OK);
                FTTE_CHECK(ftte_relu_mask(size, out, mask) == FTTE_OK);
                FTTE_CHECK(ftte_relu_backward(size, out, g, want) == FTTE_OK);
            }
            FTTE_CHECK(ftte_activation_backward_masked(size, mask, g, got) == FTTE_OK);
            for (int32_t i = 0; i < size; i++) FTTE_CHECK(got[i] == want[i]);
            if (size % 32) FTTE_CHECK((mask[words - 1] >> (size % 32)) == 0u);
        }
        free(out), free(g), free(want), free(got), free(mask);
    }
}

static void test_indexed_pool_equals_float_pool(void) {
    const int32_t k[4][4] = {{2, 2, 2, 2}, {3, 3, 1, 1}, {1, 4, 1, 2}, {2, 3, 2, 1}};
    for (int t = 0; t < 4; t++) {
        ftte_layer l = {FTTE_OP_MAX_POOL2D, {7, 9, 3}, {0, 0, 3}, k[t][0], k[t][1], k[t][2],
                        k[t][3], 0, 0, 0, 0};
        l.out.h = (l.in.h - l.kernel_h) / l.stride_h + 1;
        l.out.w = (l.in.w - l.kernel_w) / l.stride_w + 1;
        const int32_t n = 2, in = n * 7 * 9 * 3, out = n * ftte_shape_size(l.out);
        float *x = ftte_test_random_buffer(in), *g = ftte_test_random_buffer(out);
        for (int32_t i = 0; i < in; i += 5) x[i] = 0.0f; /* ties */
        float *y1 = ftte_test_zero_buffer(out), *y2 = ftte_test_zero_buffer(out);
        float *want = ftte_test_random_buffer(in), *got = (float *)malloc((size_t)in * 4);
        memcpy(got, want, (size_t)in * 4);
        uint8_t *argmax = (uint8_t *)malloc((size_t)out);
        FTTE_CHECK(ftte_max_pool2d_forward(&l, n, x, y1) == FTTE_OK);
        FTTE_CHECK(ftte_max_pool2d_forward_indexed(&l, n, x, y2, argmax) == FTTE_OK);
        FTTE_CHECK(memcmp(y1, y2, (size_t)out * 4) == 0);
        FTTE_CHECK(ftte_max_pool2d_backward(&l, n, x, g, want) == FTTE_OK);
        FTTE_CHECK(ftte_max_pool2d_backward_indexed(&l, n, argmax, g, got) == FTTE_OK);
        for (int32_t i = 0; i < in; i++) FTTE_CHECK(got[i] == want[i]);
        free(x), free(g), free(y1), free(y2), free(want), free(got), free(argmax);
    }
}

static void test_errors(void) {
    uint32_t mask[1] = {0};
    float v[4] = {0}, g[4] = {0};
    uint8_t argmax[4] = {0};
    FTTE_CHECK(ftte_relu_mask(-1, v, mask) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_relu6_mask(4, 0, mask) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_activation_backward_masked(4, 0, g, g) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_activation_mask_get_buffer_size(33) == 8);
    ftte_layer big = {FTTE_OP_MAX_POOL2D, {17, 17, 1}, {1, 1, 1}, 17, 17, 1, 1, 0, 0, 0, 0};
    FTTE_CHECK(ftte_max_pool2d_forward_indexed(&big, 1, v, v, argmax) == FTTE_ERR_UNSUPPORTED);
    ftte_layer ok = {FTTE_OP_MAX_POOL2D, {2, 2, 1}, {1, 1, 1}, 2, 2, 2, 2, 0, 0, 0, 0};
    FTTE_CHECK(ftte_max_pool2d_forward_indexed(&ok, 1, v, v, 0) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_max_pool2d_backward_indexed(&ok, 0, argmax, g, g) == FTTE_ERR_ARG);
    ok.op = FTTE_OP_AVG_POOL2D;
    FTTE_CHECK(ftte_max_pool2d_backward_indexed(&ok, 1, argmax, g, g) == FTTE_ERR_UNSUPPORTED);
}

FTTE_TEST_MAIN(test_masked_backward_equals_float_backward, test_indexed_pool_equals_float_pool,
               test_errors)
