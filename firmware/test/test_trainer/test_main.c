/*
 * The trainer on the target: a few of kernels/tests/test_train.c's checks, ported to the
 * Unity-compatible header so that `pio test -e <env>` runs them where the kernels run (host,
 * Cortex-M4F with its fused multiply-add, RV32IMC with soft float). The full kernel suite,
 * under sanitizers, stays `make -C kernels test`.
 *
 * No malloc: the arena is a static buffer, as on a board.
 */
#include <string.h>

#include "ftte_train.h"
#include "unity.h"

/* conv 6x6x2 -> 6x6x4 (3x3, pad 1), relu, maxpool 2 -> 3x3x4, flatten, dense 36 -> 5. */
enum { BATCH = 3, CLASSES = 5, IN = 6 * 6 * 2, LAYERS = 5 };
static float conv_w[4 * 3 * 3 * 2], conv_b[4], dense_w[5 * 36], dense_b[5];
static ftte_layer layers[LAYERS];
static const ftte_model model = {layers, LAYERS};

#define ARENA_BYTES 16384
static uint32_t arena_words[ARENA_BYTES / 4];
static unsigned char *const arena = (unsigned char *)arena_words;
static ftte_plan plan;
static float x[BATCH * IN];
static int32_t y[BATCH];

static uint32_t rng_state;
static float rand_unit(void) {
    uint32_t s = rng_state;
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    rng_state = s;
    return (float)((double)s / 2147483648.0 - 1.0);
}

void setUp(void) {
    const ftte_layer conv = {FTTE_OP_CONV2D, {6, 6, 2}, {6, 6, 4}, 3, 3, 1, 1, 1, 1, conv_w, conv_b};
    const ftte_layer relu = {FTTE_OP_RELU, {6, 6, 4}, {6, 6, 4}, 0, 0, 0, 0, 0, 0, 0, 0};
    const ftte_layer pool = {FTTE_OP_MAX_POOL2D, {6, 6, 4}, {3, 3, 4}, 2, 2, 2, 2, 0, 0, 0, 0};
    const ftte_layer flat = {FTTE_OP_FLATTEN, {3, 3, 4}, {1, 1, 36}, 0, 0, 0, 0, 0, 0, 0, 0};
    const ftte_layer dense = {FTTE_OP_DENSE, {1, 1, 36}, {1, 1, 5}, 0, 0, 0, 0, 0, 0, dense_w, dense_b};
    layers[0] = conv, layers[1] = relu, layers[2] = pool, layers[3] = flat, layers[4] = dense;
    rng_state = 12345u;
    for (size_t i = 0; i < sizeof conv_w / sizeof *conv_w; i++) conv_w[i] = 0.4f * rand_unit();
    for (size_t i = 0; i < sizeof dense_w / sizeof *dense_w; i++) dense_w[i] = 0.3f * rand_unit();
    for (int i = 0; i < 4; i++) conv_b[i] = 0.1f * rand_unit();
    for (int i = 0; i < 5; i++) dense_b[i] = 0.0f;
    for (int i = 0; i < BATCH * IN; i++) x[i] = rand_unit();
    for (int i = 0; i < BATCH; i++) y[i] = i % CLASSES;
}

void tearDown(void) {}

/* Update specs: everything, biases only, two conv channels plus the dense bias, last layer. */
static const uint8_t conv_mask[1] = {0x5};
enum { SPECS = 4 };
static void make_spec(int which, ftte_layer_update *u) {
    memset(u, 0, sizeof(ftte_layer_update) * LAYERS);
    switch (which) {
    case 0: u[0].mode = FTTE_UPDATE_FULL, u[4].mode = FTTE_UPDATE_FULL; break;
    case 1: u[0].mode = FTTE_UPDATE_BIAS, u[4].mode = FTTE_UPDATE_BIAS; break;
    case 2:
        u[0].mode = FTTE_UPDATE_CHANNELS, u[0].channel_mask = conv_mask;
        u[4].mode = FTTE_UPDATE_BIAS;
        break;
    default: u[4].mode = FTTE_UPDATE_FULL; break;
    }
}

/* Highest arena byte one step changes, over two paint patterns (a written byte can equal
 * one of them, not both). */
static int32_t step_high_water(void) {
    const unsigned char patterns[2] = {0xA5, 0x5A};
    const ftte_sgd_params sgd = {0.1f, 0.9f};
    int32_t top = 0;
    for (int p = 0; p < 2; p++) {
        memset(arena, patterns[p], ARENA_BYTES);
        TEST_ASSERT_EQUAL_INT(FTTE_OK, ftte_train_init(&plan, arena, plan.memory.total));
        TEST_ASSERT_EQUAL_INT(FTTE_OK, ftte_train_step(&plan, arena, plan.memory.total, sgd, x,
                                                       y, BATCH, 0, 0));
        for (int32_t i = ARENA_BYTES - 1; i >= top; i--) {
            if (arena[i] != patterns[p]) {
                top = i + 1;
                break;
            }
        }
    }
    return top;
}

/* The planned arena is exactly what a step touches, for every spec, with and without
 * momentum. */
static void test_plan_equals_high_water(void) {
    for (int s = 0; s < SPECS; s++) {
        for (int momentum = 0; momentum < 2; momentum++) {
            ftte_layer_update u[LAYERS];
            make_spec(s, u);
            const ftte_train_config config = {&model, u, BATCH, momentum};
            TEST_ASSERT_EQUAL_INT(FTTE_OK, ftte_plan_train(&config, &plan));
            const ftte_train_memory *m = &plan.memory;
            TEST_ASSERT_EQUAL_INT(m->total, m->params_ram + m->optimizer_state +
                                                m->saved_activations + m->working_activations +
                                                m->gradients + m->scratch);
            TEST_ASSERT_MESSAGE(m->total <= ARENA_BYTES, "the plan exceeds the static arena");
            TEST_ASSERT_EQUAL_INT(m->total, step_high_water());
        }
    }
}

/* Training the tiny batch brings its loss down, under every spec. */
static void test_training_reduces_loss(void) {
    for (int s = 0; s < SPECS; s++) {
        ftte_layer_update u[LAYERS];
        make_spec(s, u);
        const ftte_train_config config = {&model, u, BATCH, 1};
        TEST_ASSERT_EQUAL_INT(FTTE_OK, ftte_plan_train(&config, &plan));
        TEST_ASSERT_EQUAL_INT(FTTE_OK, ftte_train_init(&plan, arena, ARENA_BYTES));
        const ftte_sgd_params sgd = {0.05f, 0.9f};
        float first = 0.0f, loss = 0.0f;
        for (int step = 0; step < 60; step++) {
            TEST_ASSERT_EQUAL_INT(FTTE_OK, ftte_train_step(&plan, arena, ARENA_BYTES, sgd, x, y,
                                                           BATCH, &loss, 0));
            if (step == 0) first = loss;
        }
        TEST_ASSERT_LESS_THAN_FLOAT(0.7f * first, loss);
    }
}

/* Training only the last layer needs less RAM, and reads the frozen conv from "flash". */
static void test_sparse_plan_is_smaller(void) {
    ftte_layer_update full[LAYERS], last[LAYERS];
    make_spec(0, full);
    make_spec(3, last);
    const ftte_train_config cf = {&model, full, BATCH, 0}, cl = {&model, last, BATCH, 0};
    ftte_plan pf;
    TEST_ASSERT_EQUAL_INT(FTTE_OK, ftte_plan_train(&cf, &pf));
    TEST_ASSERT_EQUAL_INT(FTTE_OK, ftte_plan_train(&cl, &plan));
    TEST_ASSERT_MESSAGE(plan.memory.total < pf.memory.total, "last-layer plan is not smaller");
    TEST_ASSERT_EQUAL_INT((int32_t)(sizeof conv_w + sizeof conv_b), plan.memory.params_flash);
    TEST_ASSERT_EQUAL_INT(0, pf.memory.params_flash);
}

/* The step's conv weight gradient matches a central finite difference of the loss. */
static void test_gradient_matches_finite_difference(void) {
    ftte_layer_update u[LAYERS];
    make_spec(0, u);
    const ftte_train_config config = {&model, u, BATCH, 0};
    TEST_ASSERT_EQUAL_INT(FTTE_OK, ftte_plan_train(&config, &plan));
    static float grad_conv[4 * 18], grad_conv_b[4], grad_dense[5 * 36], grad_dense_b[5];
    const ftte_param_grads grads[LAYERS] = {
        {grad_conv, grad_conv_b}, {0, 0}, {0, 0}, {0, 0}, {grad_dense, grad_dense_b}};
    const ftte_sgd_params none = {0.0f, 0.0f};
    TEST_ASSERT_EQUAL_INT(FTTE_OK, ftte_train_init(&plan, arena, ARENA_BYTES));
    TEST_ASSERT_EQUAL_INT(FTTE_OK,
                          ftte_train_step(&plan, arena, ARENA_BYTES, none, x, y, BATCH, 0, grads));
    const int checks[3] = {0, 17, 40};
    for (int k = 0; k < 3; k++) {
        float *w = &conv_w[checks[k]];
        const float saved = *w, eps = 1e-2f;
        float lp = 0.0f, lm = 0.0f;
        *w = saved + eps;
        TEST_ASSERT_EQUAL_INT(FTTE_OK, ftte_train_init(&plan, arena, ARENA_BYTES));
        TEST_ASSERT_EQUAL_INT(FTTE_OK, ftte_train_step(&plan, arena, ARENA_BYTES, none, x, y,
                                                       BATCH, &lp, 0));
        *w = saved - eps;
        TEST_ASSERT_EQUAL_INT(FTTE_OK, ftte_train_init(&plan, arena, ARENA_BYTES));
        TEST_ASSERT_EQUAL_INT(FTTE_OK, ftte_train_step(&plan, arena, ARENA_BYTES, none, x, y,
                                                       BATCH, &lm, 0));
        *w = saved;
        const float numeric = (lp - lm) / (2.0f * eps);
        const float scale = numeric > 1.0f ? numeric : (numeric < -1.0f ? -numeric : 1.0f);
        TEST_ASSERT_FLOAT_WITHIN(2e-2f * scale, numeric, grad_conv[checks[k]]);
    }
}

int main(void) {
    UNITY_BEGIN();
    RUN_TEST(test_plan_equals_high_water);
    RUN_TEST(test_training_reduces_loss);
    RUN_TEST(test_sparse_plan_is_smaller);
    RUN_TEST(test_gradient_matches_finite_difference);
    return UNITY_END();
}
