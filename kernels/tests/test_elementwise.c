/*
 * Tests of the elementwise kernels: ReLU and ReLU6 (forward, backward, in place), flatten
 * (forward copy, backward accumulate) and the SGD update (Keras semantics, with and without
 * momentum), against references written out per element, plus their error statuses.
 */
#include "ftte_kernels.h"
#include "ftte_test.h"

static const int32_t SIZES[] = {0, 1, 2, 3, 4, 5, 7, 8, 31, 100};
#define COUNT(a) ((int32_t)(sizeof(a) / sizeof((a)[0])))

/* Zeroed first: with a size the compiler cannot prove positive, ftte_test_random_buffer's
 * uninitialised malloc trips -Wmaybe-uninitialized at -O2 and above. */
static float *random_buffer(int32_t count) {
    float *p = ftte_test_zero_buffer(count);
    for (int32_t i = 0; i < count; i++) p[i] = ftte_test_rand();
    return p;
}

static float *copy_buffer(const float *src, int32_t count) {
    float *p = (float *)malloc((size_t)(count > 0 ? count : 1) * sizeof(float));
    for (int32_t i = 0; i < count; i++) p[i] = src[i];
    return p;
}

static int same_buffer(const float *a, const float *b, int32_t count) {
    return count <= 0 || memcmp(a, b, (size_t)count * sizeof(float)) == 0;
}

/* Activations spread over [-8, 8), with the clipping points 0, -0 and 6 planted exactly. */
static float *activation_buffer(int32_t count) {
    float *p = random_buffer(count);
    static const float planted[] = {0.0f, -0.0f, 6.0f, 5.999999f, 6.000001f, 1e-30f, -1e-30f};
    for (int32_t i = 0; i < count; i++) {
        p[i] *= 8.0f;
        if (i % 5 == 0) p[i] = planted[(i / 5) % COUNT(planted)];
    }
    return p;
}

/* ---------------------------------------------------------------------------------------- */
/* ReLU and ReLU6                                                                            */
/* ---------------------------------------------------------------------------------------- */

typedef ftte_status (*act_forward_fn)(int32_t, const float *, float *);
typedef ftte_status (*act_backward_fn)(int32_t, const float *, const float *, float *);

static float relu_ref(float x) { return x > 0.0f ? x : 0.0f; }
static float relu6_ref(float x) { return x > 6.0f ? 6.0f : relu_ref(x); }
static float relu_grad_ref(float y, float g) { return y > 0.0f ? g : 0.0f; }
static float relu6_grad_ref(float y, float g) { return y > 0.0f && y < 6.0f ? g : 0.0f; }

/* Forward into a separate buffer and in place; backward likewise, from the forward output. */
static void check_activation(act_forward_fn forward, act_backward_fn backward,
                             float (*f)(float), float (*df)(float, float), int32_t size) {
    float *x = activation_buffer(size), *y = random_buffer(size);
    float *in_place = copy_buffer(x, size);
    FTTE_CHECK(forward(size, x, y) == FTTE_OK);
    FTTE_CHECK(forward(size, in_place, in_place) == FTTE_OK);
    for (int32_t i = 0; i < size; i++) {
        FTTE_CHECK(y[i] == f(x[i]));
        FTTE_CHECK(in_place[i] == f(x[i]));
    }
    float *g = random_buffer(size), *gx = random_buffer(size);
    float *g_in_place = copy_buffer(g, size);
    FTTE_CHECK(backward(size, y, g, gx) == FTTE_OK); /* writes: gx's old values are gone */
    FTTE_CHECK(backward(size, y, g_in_place, g_in_place) == FTTE_OK);
    for (int32_t i = 0; i < size; i++) {
        FTTE_CHECK(gx[i] == df(y[i], g[i]));
        FTTE_CHECK(g_in_place[i] == df(y[i], g[i]));
    }
    free(x), free(y), free(in_place), free(g), free(gx), free(g_in_place);
}

static void test_relu(void) {
    for (int32_t s = 0; s < COUNT(SIZES); s++)
        check_activation(ftte_relu_forward, ftte_relu_backward, relu_ref, relu_grad_ref,
                         SIZES[s]);
}

static void test_relu6(void) {
    for (int32_t s = 0; s < COUNT(SIZES); s++)
        check_activation(ftte_relu6_forward, ftte_relu6_backward, relu6_ref, relu6_grad_ref,
                         SIZES[s]);
}

/* Exact values at and around the clipping points. */
static void test_activation_edges(void) {
    const float x[] = {-1.0f, -0.0f, 0.0f, 1e-30f, 3.0f, 6.0f, 6.5f};
    const float relu[] = {0.0f, 0.0f, 0.0f, 1e-30f, 3.0f, 6.0f, 6.5f};
    const float relu6[] = {0.0f, 0.0f, 0.0f, 1e-30f, 3.0f, 6.0f, 6.0f};
    const float relu_g[] = {0.0f, 0.0f, 0.0f, 1.0f, 1.0f, 1.0f, 1.0f};
    const float relu6_g[] = {0.0f, 0.0f, 0.0f, 1.0f, 1.0f, 0.0f, 0.0f};
    const float ones[] = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
    float y[7], g[7];
    FTTE_CHECK(ftte_relu_forward(7, x, y) == FTTE_OK);
    FTTE_CHECK(ftte_relu_backward(7, y, ones, g) == FTTE_OK);
    for (int i = 0; i < 7; i++) FTTE_CHECK(y[i] == relu[i] && g[i] == relu_g[i]);
    FTTE_CHECK(ftte_relu6_forward(7, x, y) == FTTE_OK);
    FTTE_CHECK(ftte_relu6_backward(7, y, ones, g) == FTTE_OK);
    for (int i = 0; i < 7; i++) FTTE_CHECK(y[i] == relu6[i] && g[i] == relu6_g[i]);
}

static void check_activation_errors(act_forward_fn forward, act_backward_fn backward) {
    float *a = random_buffer(4), *b = random_buffer(4);
    float *c = random_buffer(4), *snap_b = copy_buffer(b, 4), *snap_c = copy_buffer(c, 4);
    FTTE_CHECK(forward(-1, a, b) == FTTE_ERR_ARG);
    FTTE_CHECK(forward(4, 0, b) == FTTE_ERR_ARG);
    FTTE_CHECK(forward(4, a, 0) == FTTE_ERR_ARG);
    FTTE_CHECK(backward(-1, a, b, c) == FTTE_ERR_ARG);
    FTTE_CHECK(backward(4, 0, b, c) == FTTE_ERR_ARG);
    FTTE_CHECK(backward(4, a, 0, c) == FTTE_ERR_ARG);
    FTTE_CHECK(backward(4, a, b, 0) == FTTE_ERR_ARG);
    FTTE_CHECK(same_buffer(b, snap_b, 4) && same_buffer(c, snap_c, 4));
    FTTE_CHECK(forward(0, a, b) == FTTE_OK && backward(0, a, b, c) == FTTE_OK);
    FTTE_CHECK(same_buffer(b, snap_b, 4) && same_buffer(c, snap_c, 4));
    free(a), free(b), free(c), free(snap_b), free(snap_c);
}

static void test_activation_errors(void) {
    check_activation_errors(ftte_relu_forward, ftte_relu_backward);
    check_activation_errors(ftte_relu6_forward, ftte_relu6_backward);
}

/* ---------------------------------------------------------------------------------------- */
/* Flatten                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static ftte_layer flatten_layer(int32_t h, int32_t w, int32_t c) {
    ftte_layer l;
    memset(&l, 0, sizeof l);
    l.op = FTTE_OP_FLATTEN;
    l.in.h = h;
    l.in.w = w;
    l.in.c = c;
    l.out.h = 1;
    l.out.w = 1;
    l.out.c = h * w * c;
    return l;
}

static void check_flatten(int32_t n, int32_t h, int32_t w, int32_t c) {
    const ftte_layer l = flatten_layer(h, w, c);
    const int32_t size = n * h * w * c;
    float *x = random_buffer(size), *y = random_buffer(size);
    FTTE_CHECK(ftte_flatten_forward(&l, n, x, y) == FTTE_OK);
    FTTE_CHECK(same_buffer(x, y, size));
    float *snapshot = copy_buffer(x, size);
    FTTE_CHECK(ftte_flatten_forward(&l, n, x, x) == FTTE_OK); /* aliased: nothing to do */
    FTTE_CHECK(same_buffer(x, snapshot, size));
    float *g = random_buffer(size), *gx = random_buffer(size);
    float *want = copy_buffer(gx, size);
    for (int32_t i = 0; i < size; i++) want[i] += g[i];
    FTTE_CHECK(ftte_flatten_backward(&l, n, g, gx) == FTTE_OK); /* accumulates */
    FTTE_CHECK(same_buffer(gx, want, size));
    free(x), free(y), free(snapshot), free(g), free(gx), free(want);
}

static void test_flatten(void) {
    for (int32_t n = 1; n <= 3; n++) {
        check_flatten(n, 1, 1, 1);
        check_flatten(n, 2, 3, 5);
        check_flatten(n, 4, 1, 7);
        check_flatten(n, 1, 9, 2);
    }
}

/* Both flatten kernels give `want` and write nothing. */
static void expect_flatten_status(const ftte_layer *l, int32_t n, int null_in, int null_out,
                                  ftte_status want) {
    float *a = random_buffer(24), *b = random_buffer(24);
    float *snapshot = copy_buffer(b, 24);
    FTTE_CHECK(ftte_flatten_forward(l, n, null_in ? 0 : a, null_out ? 0 : b) == want);
    FTTE_CHECK(ftte_flatten_backward(l, n, null_in ? 0 : a, null_out ? 0 : b) == want);
    FTTE_CHECK(same_buffer(b, snapshot, 24));
    free(a), free(b), free(snapshot);
}

static void test_flatten_errors(void) {
    const ftte_layer good = flatten_layer(2, 2, 3);
    ftte_layer l = good;
    l.op = FTTE_OP_RELU;
    l.out = l.in; /* a valid ReLU layer: the wrong operator */
    expect_flatten_status(&l, 2, 0, 0, FTTE_ERR_UNSUPPORTED);
    l = good;
    l.op = 0;
    expect_flatten_status(&l, 2, 0, 0, FTTE_ERR_UNSUPPORTED);
    expect_flatten_status(0, 2, 0, 0, FTTE_ERR_ARG);
    l = good;
    l.out.c = 13; /* not in.h * in.w * in.c */
    expect_flatten_status(&l, 2, 0, 0, FTTE_ERR_SHAPE);
    l = good;
    l.out.h = 12, l.out.c = 1;
    expect_flatten_status(&l, 2, 0, 0, FTTE_ERR_SHAPE);
    l = good;
    l.in.w = 0;
    expect_flatten_status(&l, 2, 0, 0, FTTE_ERR_SHAPE);
    expect_flatten_status(&good, 0, 0, 0, FTTE_ERR_ARG);
    expect_flatten_status(&good, -3, 0, 0, FTTE_ERR_ARG);
    expect_flatten_status(&good, 2, 1, 0, FTTE_ERR_ARG);
    expect_flatten_status(&good, 2, 0, 1, FTTE_ERR_ARG);
    /* The backward accumulates, so an aliased call would double the gradient: refused. */
    float *g = random_buffer(24), *snapshot = copy_buffer(g, 24);
    FTTE_CHECK(ftte_flatten_backward(&good, 2, g, g) == FTTE_ERR_ARG);
    FTTE_CHECK(same_buffer(g, snapshot, 24));
    free(g), free(snapshot);
}

/* ---------------------------------------------------------------------------------------- */
/* SGD                                                                                       */
/* ---------------------------------------------------------------------------------------- */

/* Without velocity: param -= lr * grad, for every element. */
static void test_sgd_plain(void) {
    for (int32_t s = 0; s < COUNT(SIZES); s++) {
        int32_t count = SIZES[s];
        float *g = random_buffer(count), *p = random_buffer(count);
        float *want = copy_buffer(p, count);
        for (int32_t i = 0; i < count; i++) want[i] -= 0.05f * g[i];
        FTTE_CHECK(ftte_sgd_update(count, 0.05f, 0.9f, g, 0, p) == FTTE_OK); /* momentum unused */
        for (int32_t i = 0; i < count; i++) FTTE_CHECK_CLOSE(p[i], want[i], 1e-7);
        free(g), free(p), free(want);
    }
}

/* Several steps with velocity against the Keras recurrence in double. */
static void test_sgd_momentum(void) {
    const float lr = 0.1f, momentum = 0.9f;
    for (int32_t s = 0; s < COUNT(SIZES); s++) {
        int32_t count = SIZES[s];
        float *p = random_buffer(count), *v = ftte_test_zero_buffer(count);
        double *pd = (double *)malloc((size_t)(count + 1) * sizeof(double));
        double *vd = (double *)calloc((size_t)(count + 1), sizeof(double));
        for (int32_t i = 0; i < count; i++) pd[i] = (double)p[i];
        for (int step = 0; step < 5; step++) {
            float *g = random_buffer(count);
            FTTE_CHECK(ftte_sgd_update(count, lr, momentum, g, v, p) == FTTE_OK);
            for (int32_t i = 0; i < count; i++) {
                vd[i] = (double)momentum * vd[i] - (double)lr * (double)g[i];
                pd[i] += vd[i];
                FTTE_CHECK_CLOSE(v[i], vd[i], 1e-6);
                FTTE_CHECK_CLOSE(p[i], pd[i], 1e-6);
            }
            free(g);
        }
        free(p), free(v), free(pd), free(vd);
    }
}

/* The Keras documentation's example: lr 0.1, momentum 0.9, loss var^2 / 2 from var = 1:
 * the first step is 0.1, the second 0.18. */
static void test_sgd_keras_example(void) {
    float var = 1.0f, velocity = 0.0f, grad = var;
    FTTE_CHECK(ftte_sgd_update(1, 0.1f, 0.9f, &grad, &velocity, &var) == FTTE_OK);
    FTTE_CHECK_CLOSE(var, 0.9, 1e-6);
    grad = var;
    FTTE_CHECK(ftte_sgd_update(1, 0.1f, 0.9f, &grad, &velocity, &var) == FTTE_OK);
    FTTE_CHECK_CLOSE(var, 0.9 - 0.18, 1e-6);
    /* Momentum 0 with a velocity buffer is plain SGD, to the bit. */
    float a = 0.7f, b = 0.7f, v0 = 0.25f, g = 0.3f;
    FTTE_CHECK(ftte_sgd_update(1, 0.01f, 0.0f, &g, &v0, &a) == FTTE_OK);
    FTTE_CHECK(ftte_sgd_update(1, 0.01f, 0.0f, &g, 0, &b) == FTTE_OK);
    FTTE_CHECK(a == b);
}

static void test_sgd_errors(void) {
    float *g = random_buffer(4), *v = random_buffer(4);
    float *p = random_buffer(4);
    float *snap_v = copy_buffer(v, 4), *snap_p = copy_buffer(p, 4);
    FTTE_CHECK(ftte_sgd_update(-1, 0.1f, 0.9f, g, v, p) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_sgd_update(4, 0.1f, 0.9f, 0, v, p) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_sgd_update(4, 0.1f, 0.9f, g, v, 0) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_sgd_update(0, 0.1f, 0.9f, g, v, p) == FTTE_OK);
    FTTE_CHECK(same_buffer(v, snap_v, 4) && same_buffer(p, snap_p, 4));
    free(g), free(v), free(p), free(snap_v), free(snap_p);
}

FTTE_TEST_MAIN(test_relu, test_relu6, test_activation_edges, test_activation_errors,
               test_flatten, test_flatten_errors, test_sgd_plain, test_sgd_momentum,
               test_sgd_keras_example, test_sgd_errors)
