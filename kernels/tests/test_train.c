/* Trainer tests: exact memory plan (painted high-water mark), learning, sparse specs, errors. */
#include "ftte_test.h"
#include "ftte_kernels.h"
#include "ftte_train.h"

/* conv 6x6x2 -> 6x6x4 (3x3, pad 1), relu, maxpool 2 -> 3x3x4, flatten, dense 36 -> 5. */
enum { BATCH = 3, CLASSES = 5, IN = 6 * 6 * 2 };
static float conv_w[4 * 3 * 3 * 2], conv_b[4], dense_w[5 * 36], dense_b[5];
static ftte_layer layers[5];
static const ftte_model model = {layers, 5};

static void build_model(void) {
    ftte_layer conv = {FTTE_OP_CONV2D, {6, 6, 2}, {6, 6, 4}, 3, 3, 1, 1, 1, 1, conv_w, conv_b};
    ftte_layer relu = {FTTE_OP_RELU, {6, 6, 4}, {6, 6, 4}, 0, 0, 0, 0, 0, 0, 0, 0};
    ftte_layer pool = {FTTE_OP_MAX_POOL2D, {6, 6, 4}, {3, 3, 4}, 2, 2, 2, 2, 0, 0, 0, 0};
    ftte_layer flat = {FTTE_OP_FLATTEN, {3, 3, 4}, {1, 1, 36}, 0, 0, 0, 0, 0, 0, 0, 0};
    ftte_layer dense = {FTTE_OP_DENSE, {1, 1, 36}, {1, 1, 5}, 0, 0, 0, 0, 0, 0, dense_w, dense_b};
    layers[0] = conv, layers[1] = relu, layers[2] = pool, layers[3] = flat, layers[4] = dense;
    ftte_test_rng_state = 12345u;
    for (size_t i = 0; i < sizeof conv_w / sizeof *conv_w; i++) conv_w[i] = 0.4f * ftte_test_rand();
    for (size_t i = 0; i < sizeof dense_w / sizeof *dense_w; i++) dense_w[i] = 0.3f * ftte_test_rand();
    for (int i = 0; i < 4; i++) conv_b[i] = 0.1f * ftte_test_rand();
    for (int i = 0; i < 5; i++) dense_b[i] = 0.0f;
}

static const uint8_t conv_mask[1] = {0x5}; /* channels 0 and 2 */

static void spec_full(ftte_layer_update *u) {
    u[0].mode = FTTE_UPDATE_FULL, u[4].mode = FTTE_UPDATE_FULL;
}
static void spec_bias(ftte_layer_update *u) {
    u[0].mode = FTTE_UPDATE_BIAS, u[4].mode = FTTE_UPDATE_BIAS;
}
static void spec_channels(ftte_layer_update *u) {
    u[0].mode = FTTE_UPDATE_CHANNELS, u[0].channel_mask = conv_mask, u[4].mode = FTTE_UPDATE_BIAS;
}
static void spec_last(ftte_layer_update *u) { u[4].mode = FTTE_UPDATE_FULL; }

typedef void (*spec_fn)(ftte_layer_update *);
static const spec_fn specs[] = {spec_full, spec_bias, spec_channels, spec_last};

static void make_batch(float *x, int32_t *y) {
    for (int i = 0; i < BATCH * IN; i++) x[i] = ftte_test_rand();
    for (int i = 0; i < BATCH; i++) y[i] = i % CLASSES;
}

/* Highest byte a step changed, over two paint patterns (a written byte can equal one). */
static int32_t high_water(const ftte_plan *plan, const float *x, const int32_t *y) {
    int32_t top = 0, total = plan->memory.total;
    const unsigned char patterns[2] = {0xA5, 0x5A};
    for (int p = 0; p < 2; p++) {
        unsigned char *arena = (unsigned char *)malloc((size_t)total);
        memset(arena, patterns[p], (size_t)total);
        ftte_sgd_params sgd = {0.1f, 0.9f};
        FTTE_CHECK(ftte_train_init(plan, arena, total) == FTTE_OK);
        FTTE_CHECK(ftte_train_step(plan, arena, total, sgd, x, y, BATCH, 0, 0) == FTTE_OK);
        for (int32_t i = total - 1; i >= 0; i--) {
            if (arena[i] != patterns[p]) {
                if (i + 1 > top) top = i + 1;
                break;
            }
        }
        free(arena);
    }
    return top;
}

static void test_plan_equals_high_water_mark(void) {
    build_model();
    float x[BATCH * IN];
    int32_t y[BATCH];
    make_batch(x, y);
    for (size_t s = 0; s < sizeof specs / sizeof *specs; s++) {
        for (int momentum = 0; momentum < 2; momentum++) {
            ftte_layer_update u[5] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}};
            specs[s](u);
            ftte_train_config config = {&model, u, BATCH, momentum};
            ftte_plan plan;
            FTTE_CHECK(ftte_plan_train(&config, &plan) == FTTE_OK);
            const ftte_train_memory *m = &plan.memory;
            FTTE_CHECK(m->total == m->params_ram + m->optimizer_state + m->saved_activations +
                                       m->working_activations + m->gradients + m->scratch);
            FTTE_CHECK(high_water(&plan, x, y) == m->total);
        }
    }
}

static void test_sparse_memory_is_smaller(void) {
    build_model();
    ftte_layer_update full[5] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}};
    ftte_layer_update last[5] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}};
    spec_full(full);
    spec_last(last);
    ftte_train_config cf = {&model, full, BATCH, 0}, cl = {&model, last, BATCH, 0};
    ftte_plan pf, pl;
    FTTE_CHECK(ftte_plan_train(&cf, &pf) == FTTE_OK);
    FTTE_CHECK(ftte_plan_train(&cl, &pl) == FTTE_OK);
    FTTE_CHECK(pl.memory.total < pf.memory.total);
    FTTE_CHECK(pl.memory.params_flash == (int32_t)sizeof conv_w + (int32_t)sizeof conv_b);
    FTTE_CHECK(pf.memory.params_flash == 0);
}

static void test_training_reduces_loss(void) {
    build_model();
    float x[BATCH * IN];
    int32_t y[BATCH];
    make_batch(x, y);
    for (size_t s = 0; s < sizeof specs / sizeof *specs; s++) {
        ftte_layer_update u[5] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}};
        specs[s](u);
        ftte_train_config config = {&model, u, BATCH, 1};
        ftte_plan plan;
        FTTE_CHECK(ftte_plan_train(&config, &plan) == FTTE_OK);
        float *arena = (float *)malloc((size_t)plan.memory.total);
        FTTE_CHECK(ftte_train_init(&plan, arena, plan.memory.total) == FTTE_OK);
        float first = 0.0f, loss = 0.0f;
        ftte_sgd_params sgd = {0.05f, 0.9f};
        for (int step = 0; step < 60; step++) {
            FTTE_CHECK(ftte_train_step(&plan, arena, plan.memory.total, sgd, x, y, BATCH, &loss, 0) ==
                       FTTE_OK);
            if (step == 0) first = loss;
        }
        FTTE_CHECK(loss < 0.7f * first);
        free(arena);
    }
}

/* The step's gradient of the dense bias matches a central finite difference of the loss. */
static void test_gradient_matches_finite_difference(void) {
    build_model();
    float x[BATCH * IN];
    int32_t y[BATCH];
    make_batch(x, y);
    ftte_layer_update u[5] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}};
    spec_full(u);
    ftte_train_config config = {&model, u, BATCH, 0};
    ftte_plan plan;
    FTTE_CHECK(ftte_plan_train(&config, &plan) == FTTE_OK);
    float *arena = (float *)malloc((size_t)plan.memory.total);
    float grad_conv[4 * 18], grad_conv_b[4], grad_dense[5 * 36], grad_dense_b[5];
    ftte_param_grads grads[5] = {{grad_conv, grad_conv_b}, {0, 0}, {0, 0}, {0, 0},
                                 {grad_dense, grad_dense_b}};
    ftte_sgd_params none = {0.0f, 0.0f};
    FTTE_CHECK(ftte_train_init(&plan, arena, plan.memory.total) == FTTE_OK);
    FTTE_CHECK(ftte_train_step(&plan, arena, plan.memory.total, none, x, y, BATCH, 0, grads) ==
               FTTE_OK);
    const int checks[3] = {0, 17, 40};
    for (int k = 0; k < 3; k++) {
        float *w = &conv_w[checks[k]], saved = *w, lp, lm;
        const float eps = 1e-2f;
        *w = saved + eps;
        FTTE_CHECK(ftte_train_init(&plan, arena, plan.memory.total) == FTTE_OK);
        FTTE_CHECK(ftte_train_step(&plan, arena, plan.memory.total, none, x, y, BATCH, &lp, 0) == FTTE_OK);
        *w = saved - eps;
        FTTE_CHECK(ftte_train_init(&plan, arena, plan.memory.total) == FTTE_OK);
        FTTE_CHECK(ftte_train_step(&plan, arena, plan.memory.total, none, x, y, BATCH, &lm, 0) == FTTE_OK);
        *w = saved;
        FTTE_CHECK_CLOSE(grad_conv[checks[k]], (lp - lm) / (2.0f * eps), 2e-2);
    }
    free(arena);
}

/* Steps of one sample without gradients asked for (where a host steps a full dense layer in
 * place) leave the same parameters as steps that copy the gradients out. */
static void test_step_without_grads_equals_step_with_them(void) {
    build_model();
    float x[BATCH * IN];
    int32_t y[BATCH];
    make_batch(x, y);
    ftte_layer_update u[5] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}};
    spec_full(u);
    ftte_train_config config = {&model, u, BATCH, 0};
    ftte_plan plan;
    FTTE_CHECK(ftte_plan_train(&config, &plan) == FTTE_OK);
    const int32_t total = plan.memory.total;
    float *plain = (float *)malloc((size_t)total), *copied = (float *)malloc((size_t)total);
    float grad_conv[4 * 18], grad_conv_b[4], grad_dense[5 * 36], grad_dense_b[5];
    ftte_param_grads grads[5] = {{grad_conv, grad_conv_b}, {0, 0}, {0, 0}, {0, 0},
                                 {grad_dense, grad_dense_b}};
    ftte_sgd_params sgd = {0.3f, 0.0f};
    FTTE_CHECK(ftte_train_init(&plan, plain, total) == FTTE_OK);
    FTTE_CHECK(ftte_train_init(&plan, copied, total) == FTTE_OK);
    for (int step = 0; step < 3 * BATCH; step++) {
        const int32_t k = step % BATCH;
        float a = 0.0f, b = 1.0f;
        FTTE_CHECK(ftte_train_step(&plan, plain, total, sgd, x + k * IN, y + k, 1, &a, 0) ==
                   FTTE_OK);
        FTTE_CHECK(ftte_train_step(&plan, copied, total, sgd, x + k * IN, y + k, 1, &b, grads) ==
                   FTTE_OK);
        FTTE_CHECK(a == b);
    }
    int32_t same = 1;
    for (int32_t i = 0; i < plan.memory.params_ram / 4; i++) same &= plain[i] == copied[i];
    FTTE_CHECK(same);
    free(plain);
    free(copied);
}

static void test_errors_leave_state_unchanged(void) {
    build_model();
    float x[BATCH * IN];
    int32_t y[BATCH];
    make_batch(x, y);
    ftte_layer_update u[5] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}};
    spec_full(u);
    ftte_train_config config = {&model, u, BATCH, 0};
    ftte_plan plan;
    FTTE_CHECK(ftte_plan_train(&config, &plan) == FTTE_OK);
    int32_t total = plan.memory.total;
    float *arena = (float *)malloc((size_t)total);
    float *before = (float *)malloc((size_t)plan.memory.params_ram);
    ftte_sgd_params sgd = {0.1f, 0.0f};
    FTTE_CHECK(ftte_train_init(&plan, arena, total) == FTTE_OK);
    memcpy(before, arena, (size_t)plan.memory.params_ram);
    FTTE_CHECK(ftte_train_step(&plan, arena, total - 4, sgd, x, y, BATCH, 0, 0) == FTTE_ERR_ARENA);
    FTTE_CHECK(ftte_train_step(&plan, arena, total, sgd, x, y, BATCH + 1, 0, 0) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_train_step(&plan, arena, total, sgd, x, y, 0, 0, 0) == FTTE_ERR_ARG);
    y[1] = CLASSES;
    FTTE_CHECK(ftte_train_step(&plan, arena, total, sgd, x, y, BATCH, 0, 0) == FTTE_ERR_LABEL);
    y[1] = -1;
    FTTE_CHECK(ftte_train_step(&plan, arena, total, sgd, x, y, BATCH, 0, 0) == FTTE_ERR_LABEL);
    FTTE_CHECK(memcmp(before, arena, (size_t)plan.memory.params_ram) == 0);
    ftte_plan forward;
    FTTE_CHECK(ftte_plan_forward(&config, &forward) == FTTE_OK);
    FTTE_CHECK(ftte_train_step(&forward, arena, total, sgd, x, y, BATCH, 0, 0) == FTTE_ERR_ARG);
    free(before);
    free(arena);
}

static void test_invalid_specs_and_models(void) {
    build_model();
    ftte_layer_update u[5] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}};
    ftte_train_config config = {&model, u, BATCH, 0};
    ftte_plan plan;
    u[1].mode = FTTE_UPDATE_BIAS; /* relu has no parameters */
    FTTE_CHECK(ftte_plan_train(&config, &plan) == FTTE_ERR_SPEC);
    u[1].mode = FTTE_UPDATE_FROZEN;
    u[0].mode = FTTE_UPDATE_CHANNELS; /* no mask */
    FTTE_CHECK(ftte_plan_train(&config, &plan) == FTTE_ERR_SPEC);
    u[0].mode = 7;
    FTTE_CHECK(ftte_plan_train(&config, &plan) == FTTE_ERR_SPEC);
    u[0].mode = FTTE_UPDATE_FROZEN;
    config.batch = 0;
    FTTE_CHECK(ftte_plan_train(&config, &plan) == FTTE_ERR_ARG);
    config.batch = BATCH;
    layers[4].in.c = 35; /* flatten gives 36 */
    FTTE_CHECK(ftte_plan_train(&config, &plan) != FTTE_OK);
    layers[4].in.c = 36;
    layers[0].weights = 0;
    FTTE_CHECK(ftte_plan_train(&config, &plan) == FTTE_ERR_MODEL);
}

/* ftte_train_steps() leaves the bits and losses of as many ftte_train_step() calls, and the
 * loss after of ftte_forward() and ftte_cross_entropy_forward() on the last batch. */
static void test_steps_equal_repeated_step(void) {
    build_model();
    enum { STEPS = 4, N = 2 };
    float x[STEPS * N * IN];
    int32_t y[STEPS * N];
    for (int i = 0; i < STEPS * N * IN; i++) x[i] = ftte_test_rand();
    for (int i = 0; i < STEPS * N; i++) y[i] = (3 * i + 1) % CLASSES;
    ftte_layer_update u[5] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}};
    spec_channels(u);
    ftte_train_config config = {&model, u, BATCH, 1};
    ftte_plan plan;
    FTTE_CHECK(ftte_plan_train(&config, &plan) == FTTE_OK);
    const int32_t total = plan.memory.total;
    float *one = (float *)malloc((size_t)total), *many = (float *)malloc((size_t)total);
    float loss_one[STEPS], loss_many[STEPS];
    ftte_sgd_params sgd = {0.2f, 0.9f};
    FTTE_CHECK(ftte_train_init(&plan, one, total) == FTTE_OK);
    FTTE_CHECK(ftte_train_init(&plan, many, total) == FTTE_OK);
    for (int k = 0; k < STEPS; k++)
        FTTE_CHECK(ftte_train_step(&plan, one, total, sgd, x + k * N * IN, y + k * N, N,
                                   loss_one + k, 0) == FTTE_OK);
    float after = -1.0f, logits[N * CLASSES], want = -2.0f;
    FTTE_CHECK(ftte_train_steps(&plan, many, total, sgd, x, y, N, STEPS, loss_many, &after) ==
               FTTE_OK);
    FTTE_CHECK(ftte_forward(&plan, one, total, x + (STEPS - 1) * N * IN, N, logits) == FTTE_OK);
    FTTE_CHECK(ftte_cross_entropy_forward(N, CLASSES, logits, y + (STEPS - 1) * N, &want) ==
               FTTE_OK);
    FTTE_CHECK(after == want);
    const int32_t persistent = (plan.memory.params_ram + plan.memory.optimizer_state) / 4;
    int32_t same = 1;
    for (int32_t i = 0; i < persistent; i++) same &= one[i] == many[i];
    for (int k = 0; k < STEPS; k++) same &= loss_one[k] == loss_many[k];
    FTTE_CHECK(same);
    FTTE_CHECK(loss_many[STEPS - 1] != loss_many[0]); /* it did train */
    /* Wrong for every step: refused at the first, nothing changed. */
    memcpy(one, many, (size_t)total);
    FTTE_CHECK(ftte_train_steps(&plan, many, total, sgd, x, y, BATCH + 1, 2, 0, 0) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_train_steps(&plan, many, total, sgd, x, y, N, -1, 0, 0) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_train_steps(&plan, many, total, sgd, 0, y, N, 2, 0, 0) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_train_steps(&plan, many, total, sgd, x, y, N, 0, 0, &after) == FTTE_OK);
    FTTE_CHECK(memcmp(one, many, (size_t)persistent * 4) == 0);
    free(one);
    free(many);
}

/* Inference under a forward plan gives the same logits in fewer bytes than training needs. */
static void test_forward_plan(void) {
    build_model();
    float x[BATCH * IN], out_train[BATCH * CLASSES], out_forward[BATCH * CLASSES];
    int32_t y[BATCH];
    make_batch(x, y);
    ftte_layer_update u[5] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}};
    spec_full(u);
    ftte_train_config config = {&model, u, BATCH, 0};
    ftte_plan train, forward;
    FTTE_CHECK(ftte_plan_train(&config, &train) == FTTE_OK);
    FTTE_CHECK(ftte_plan_forward(&config, &forward) == FTTE_OK);
    FTTE_CHECK(forward.memory.total < train.memory.total);
    float *arena = (float *)malloc((size_t)train.memory.total);
    FTTE_CHECK(ftte_train_init(&train, arena, train.memory.total) == FTTE_OK);
    FTTE_CHECK(ftte_forward(&train, arena, train.memory.total, x, BATCH, out_train) == FTTE_OK);
    FTTE_CHECK(ftte_forward(&forward, arena, forward.memory.total, x, BATCH, out_forward) == FTTE_OK);
    for (int i = 0; i < BATCH * CLASSES; i++) FTTE_CHECK(out_train[i] == out_forward[i]);
    free(arena);
}

FTTE_TEST_MAIN(test_plan_equals_high_water_mark, test_sparse_memory_is_smaller,
               test_training_reduces_loss, test_gradient_matches_finite_difference,
               test_step_without_grads_equals_step_with_them,
               test_steps_equal_repeated_step, test_errors_leave_state_unchanged,
               test_invalid_specs_and_models, test_forward_plan)
