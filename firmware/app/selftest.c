/*
 * FTTE self-test: the kernels train a tiny model inside one static arena on this target.
 *
 * It is the program that `pio run -e native|m4f_qemu|rv32_qemu` builds, until the firmware
 * core arrives. It plans one training configuration, checks the plan fits the static arena,
 * runs one SGD step on the arena painted with two patterns in turn, checks that the highest
 * byte the step wrote is exactly the planned size, then trains on, checks that the loss went
 * down, and exits 0 (pass) or 1.
 *
 * Output (parsed by tests/test_platformio.py; keep the line prefixes stable):
 *
 *   ftte selftest: conv2d 3x3 6x6x2->6x6x4, relu, max pool 2, flatten, dense 36->5; batch 3
 *   planned arena bytes: 4844 (params 1044, optimizer 1044, saved 596, working 2160, ...)
 *   arena bytes written by step 1: 4844
 *   step 1 loss: 1.361432
 *   step 30 loss: 0.000482
 *   ftte selftest: PASS
 *
 * Portable C99 with only stdio: on the host stdout is the terminal; on the QEMU boards the
 * dev-platform's runtime sends it to the host through semihosting, and main's return value
 * becomes QEMU's exit status.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ftte_train.h"

enum { BATCH = 3, CLASSES = 5, IN = 6 * 6 * 2, LAYERS = 5, STEPS = 30 };

/* The static arena: what a board would set aside for training. Far more than the plan needs,
 * so the test of the plan is the painted high-water mark, not this size. */
#define ARENA_BYTES 16384
static uint32_t arena_words[ARENA_BYTES / 4]; /* 4-byte aligned, as ftte_train_init asks */

/* conv 6x6x2 -> 6x6x4 (3x3, padding 1), relu, max pool 2 -> 3x3x4, flatten, dense 36 -> 5. */
static float conv_w[4 * 3 * 3 * 2], conv_b[4], dense_w[5 * 36], dense_b[5];
static const ftte_layer layers[LAYERS] = {
    {FTTE_OP_CONV2D, {6, 6, 2}, {6, 6, 4}, 3, 3, 1, 1, 1, 1, conv_w, conv_b},
    {FTTE_OP_RELU, {6, 6, 4}, {6, 6, 4}, 0, 0, 0, 0, 0, 0, 0, 0},
    {FTTE_OP_MAX_POOL2D, {6, 6, 4}, {3, 3, 4}, 2, 2, 2, 2, 0, 0, 0, 0},
    {FTTE_OP_FLATTEN, {3, 3, 4}, {1, 1, 36}, 0, 0, 0, 0, 0, 0, 0, 0},
    {FTTE_OP_DENSE, {1, 1, 36}, {1, 1, 5}, 0, 0, 0, 0, 0, 0, dense_w, dense_b},
};
static const ftte_model model = {layers, LAYERS};

/* Train everything that has weights, with momentum. */
static const ftte_layer_update spec[LAYERS] = {
    {FTTE_UPDATE_FULL, 0}, {FTTE_UPDATE_FROZEN, 0}, {FTTE_UPDATE_FROZEN, 0},
    {FTTE_UPDATE_FROZEN, 0}, {FTTE_UPDATE_FULL, 0},
};

static ftte_plan plan; /* about 1 KB: static, not on a small stack */
static float input[BATCH * IN];
static int32_t labels[BATCH];

/* Deterministic values in [-1, 1) (xorshift32): the same model and data on every target. */
static uint32_t rng_state = 12345u;
static float rand_unit(void) {
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rng_state = x;
    return (float)((double)x / 2147483648.0 - 1.0);
}

static void fill(float *p, size_t count, float scale) {
    for (size_t i = 0; i < count; i++) p[i] = scale * rand_unit();
}

static int fail(const char *what, int status) {
    printf("ftte selftest: FAIL: %s (status %d)\n", what, status);
    return 1;
}

int main(void) {
    fill(conv_w, sizeof conv_w / sizeof *conv_w, 0.4f);
    fill(conv_b, sizeof conv_b / sizeof *conv_b, 0.1f);
    fill(dense_w, sizeof dense_w / sizeof *dense_w, 0.3f);
    fill(input, sizeof input / sizeof *input, 1.0f);
    for (int i = 0; i < BATCH; i++) labels[i] = i % CLASSES;

    printf("ftte selftest: conv2d 3x3 6x6x2->6x6x4, relu, max pool 2, flatten, dense 36->5; "
           "batch %d\n", BATCH);

    const ftte_train_config config = {&model, spec, BATCH, 1};
    ftte_status status = ftte_plan_train(&config, &plan);
    if (status != FTTE_OK) return fail("ftte_plan_train", status);
    const ftte_train_memory *m = &plan.memory;
    printf("planned arena bytes: %ld (params %ld, optimizer %ld, saved %ld, working %ld, "
           "gradients %ld, scratch %ld; static arena %d)\n",
           (long)m->total, (long)m->params_ram, (long)m->optimizer_state,
           (long)m->saved_activations, (long)m->working_activations, (long)m->gradients,
           (long)m->scratch, ARENA_BYTES);
    if (m->total > ARENA_BYTES) return fail("the plan does not fit the static arena", m->total);

    /* Step 1 on an arena painted with one pattern, then again from scratch with another:
     * the highest byte either step changed is the arena the step really needs (a written
     * byte can equal one pattern, not both). */
    const ftte_sgd_params sgd = {0.05f, 0.9f};
    unsigned char *arena = (unsigned char *)arena_words;
    const unsigned char patterns[2] = {0xA5u, 0x5Au};
    int32_t top = 0;
    float first = 0.0f, loss = 0.0f;
    for (int p = 0; p < 2; p++) {
        memset(arena, patterns[p], sizeof arena_words);
        status = ftte_train_init(&plan, arena, m->total);
        if (status != FTTE_OK) return fail("ftte_train_init", status);
        status = ftte_train_step(&plan, arena, m->total, sgd, input, labels, BATCH, &first, 0);
        if (status != FTTE_OK) return fail("ftte_train_step", status);
        for (int32_t i = (int32_t)sizeof arena_words - 1; i >= top; i--) {
            if (arena[i] != patterns[p]) {
                top = i + 1;
                break;
            }
        }
    }
    printf("arena bytes written by step 1: %ld\n", (long)top);
    printf("step 1 loss: %.6f\n", (double)first);
    if (top != m->total) return fail("the bytes step 1 wrote differ from the plan", (int)top);

    for (int step = 2; step <= STEPS; step++) {
        status = ftte_train_step(&plan, arena, m->total, sgd, input, labels, BATCH, &loss, 0);
        if (status != FTTE_OK) return fail("ftte_train_step", status);
    }
    printf("step %d loss: %.6f\n", STEPS, (double)loss);
    if (!(loss < 0.5f * first)) return fail("the loss did not halve", 0);
    printf("ftte selftest: PASS\n");
    return 0;
}
