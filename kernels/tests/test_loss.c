/*
 * Tests of softmax and the softmax cross-entropy loss (forward and backward) against double
 * references, with extreme logits (stability), aliased buffers, finite differences of the
 * loss, and the error statuses (a bad label writes nothing).
 *
 * Tolerances are doubles: FTTE_CHECK_CLOSE multiplies the tolerance by a double, and a float
 * literal there would be an implicit promotion, which -Wdouble-promotion rejects.
 */
#include "ftte_kernels.h"
#include "ftte_test.h"

#define TOL 1e-5

static const int32_t BATCHES[] = {1, 2, 3, 5, 8};
static const int32_t CLASSES[] = {1, 2, 3, 4, 5, 10, 17};
#define COUNT(a) ((int32_t)(sizeof(a) / sizeof((a)[0])))

static int32_t rand_int(int32_t lo, int32_t hi) { /* inclusive */
    uint32_t r = (uint32_t)((ftte_test_rand() + 1.0f) * 1000000.0f);
    return lo + (int32_t)(r % (uint32_t)(hi - lo + 1));
}

static float *copy_buffer(const float *src, int32_t count) {
    float *p = (float *)malloc((size_t)count * sizeof(float));
    for (int32_t i = 0; i < count; i++) p[i] = src[i];
    return p;
}

static int same_buffer(const float *a, const float *b, int32_t count) {
    return memcmp(a, b, (size_t)count * sizeof(float)) == 0;
}

/* Logits spread over [-scale, scale). */
static float *logits_buffer(int32_t count, float scale) {
    float *p = ftte_test_random_buffer(count);
    for (int32_t i = 0; i < count; i++) p[i] *= scale;
    return p;
}

static int32_t *labels_buffer(int32_t n, int32_t classes) {
    int32_t *p = (int32_t *)malloc((size_t)n * sizeof(int32_t));
    for (int32_t b = 0; b < n; b++) p[b] = rand_int(0, classes - 1);
    return p;
}

/* ---------------------------------------------------------------------------------------- */
/* References in double                                                                       */
/* ---------------------------------------------------------------------------------------- */

static void ref_softmax_row(int32_t classes, const float *x, double *p) {
    double max = (double)x[0], sum = 0.0;
    for (int32_t k = 1; k < classes; k++) max = fmax(max, (double)x[k]);
    for (int32_t k = 0; k < classes; k++) sum += (p[k] = exp((double)x[k] - max));
    for (int32_t k = 0; k < classes; k++) p[k] /= sum;
}

/* Mean over the batch of -log softmax(x[b])[label[b]], from log-sum-exp. */
static double ref_loss(int32_t n, int32_t classes, const float *x, const int32_t *labels) {
    double total = 0.0;
    for (int32_t b = 0; b < n; b++) {
        const float *row = x + b * classes;
        double max = (double)row[0], sum = 0.0;
        for (int32_t k = 1; k < classes; k++) max = fmax(max, (double)row[k]);
        for (int32_t k = 0; k < classes; k++) sum += exp((double)row[k] - max);
        total += log(sum) + max - (double)row[labels[b]];
    }
    return total / n;
}

/* ---------------------------------------------------------------------------------------- */
/* Softmax                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void check_softmax(int32_t n, int32_t classes, const float *x) {
    float *p = ftte_test_random_buffer(n * classes), *in_place = copy_buffer(x, n * classes);
    double *want = (double *)malloc((size_t)classes * sizeof(double));
    FTTE_CHECK(ftte_softmax_forward(n, classes, x, p) == FTTE_OK);
    FTTE_CHECK(ftte_softmax_forward(n, classes, in_place, in_place) == FTTE_OK);
    FTTE_CHECK(same_buffer(in_place, p, n * classes)); /* aliasing changes nothing */
    for (int32_t b = 0; b < n; b++) {
        double sum = 0.0;
        ref_softmax_row(classes, x + b * classes, want);
        for (int32_t k = 0; k < classes; k++) {
            FTTE_CHECK_CLOSE(p[b * classes + k], want[k], TOL);
            sum += (double)p[b * classes + k];
        }
        FTTE_CHECK_CLOSE(sum, 1.0, TOL);
    }
    free(p), free(in_place), free(want);
}

static void test_softmax(void) {
    for (int32_t i = 0; i < COUNT(BATCHES); i++) {
        for (int32_t j = 0; j < COUNT(CLASSES); j++) {
            float *x = logits_buffer(BATCHES[i] * CLASSES[j], 10.0f);
            check_softmax(BATCHES[i], CLASSES[j], x);
            free(x);
        }
    }
}

/* Logits far beyond exp's float range (e^89 overflows) stay finite and exact. */
static const float EXTREME[4][4] = {{1000.0f, 1001.0f, -1000.0f, 0.0f},
                                    {-1000.0f, -1000.0f, -1000.0f, -1000.0f},
                                    {88.0f, 89.0f, 90.0f, -90.0f},
                                    {-200.0f, 100.0f, 3e38f, -3e38f}};

static void test_softmax_extreme_logits(void) {
    float *x = copy_buffer(&EXTREME[0][0], 16);
    check_softmax(4, 4, x);
    float *p = ftte_test_random_buffer(16);
    FTTE_CHECK(ftte_softmax_forward(4, 4, x, p) == FTTE_OK);
    for (int32_t i = 0; i < 16; i++) FTTE_CHECK(isfinite(p[i]));
    free(x), free(p);
}

static void test_softmax_errors(void) {
    float *x = ftte_test_random_buffer(6), *p = ftte_test_random_buffer(6);
    float *snapshot = copy_buffer(p, 6);
    FTTE_CHECK(ftte_softmax_forward(0, 3, x, p) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_softmax_forward(-1, 3, x, p) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_softmax_forward(2, 0, x, p) == FTTE_ERR_SHAPE);
    FTTE_CHECK(ftte_softmax_forward(2, -3, x, p) == FTTE_ERR_SHAPE);
    FTTE_CHECK(ftte_softmax_forward(2, 3, 0, p) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_softmax_forward(2, 3, x, 0) == FTTE_ERR_ARG);
    FTTE_CHECK(same_buffer(p, snapshot, 6));
    free(x), free(p), free(snapshot);
}

/* ---------------------------------------------------------------------------------------- */
/* Cross-entropy                                                                              */
/* ---------------------------------------------------------------------------------------- */

/* Forward loss, backward gradient and loss, against the references; then the backward aliased
 * onto the logits, which must give the same bits. */
static void check_cross_entropy(int32_t n, int32_t classes, const float *x,
                                const int32_t *labels) {
    const int32_t size = n * classes;
    const double want_loss = ref_loss(n, classes, x, labels);
    float loss = -1.0f, loss_backward = -1.0f, loss_aliased = -1.0f;
    FTTE_CHECK(ftte_cross_entropy_forward(n, classes, x, labels, &loss) == FTTE_OK);
    FTTE_CHECK_CLOSE(loss, want_loss, TOL);
    float *g = ftte_test_random_buffer(size);
    FTTE_CHECK(ftte_cross_entropy_backward(n, classes, x, labels, g, &loss_backward) == FTTE_OK);
    FTTE_CHECK_CLOSE(loss_backward, want_loss, TOL);
    double *p = (double *)malloc((size_t)classes * sizeof(double));
    for (int32_t b = 0; b < n; b++) {
        double row_sum = 0.0;
        ref_softmax_row(classes, x + b * classes, p);
        p[labels[b]] -= 1.0;
        for (int32_t k = 0; k < classes; k++) {
            FTTE_CHECK_CLOSE(g[b * classes + k], p[k] / n, TOL);
            row_sum += (double)g[b * classes + k];
        }
        FTTE_CHECK_CLOSE(row_sum, 0.0, TOL);
    }
    float *aliased = copy_buffer(x, size);
    FTTE_CHECK(ftte_cross_entropy_backward(n, classes, aliased, labels, aliased, &loss_aliased) ==
               FTTE_OK);
    FTTE_CHECK(same_buffer(aliased, g, size) && loss_aliased == loss_backward);
    float *g_no_loss = ftte_test_random_buffer(size); /* loss may be NULL */
    FTTE_CHECK(ftte_cross_entropy_backward(n, classes, x, labels, g_no_loss, 0) == FTTE_OK);
    FTTE_CHECK(same_buffer(g_no_loss, g, size));
    free(g), free(p), free(aliased), free(g_no_loss);
}

static void test_cross_entropy(void) {
    for (int32_t i = 0; i < COUNT(BATCHES); i++) {
        for (int32_t j = 0; j < COUNT(CLASSES); j++) {
            int32_t n = BATCHES[i], classes = CLASSES[j];
            float *x = logits_buffer(n * classes, 10.0f);
            int32_t *labels = labels_buffer(n, classes);
            check_cross_entropy(n, classes, x, labels);
            free(x), free(labels);
        }
    }
}

/* Equal logits: the loss is log(classes) and the label's gradient (1/classes - 1) / n. */
static void test_cross_entropy_uniform(void) {
    float x[2 * 10], g[2 * 10], loss = 0.0f;
    const int32_t labels[2] = {3, 9};
    for (int32_t i = 0; i < 20; i++) x[i] = 2.5f;
    FTTE_CHECK(ftte_cross_entropy_backward(2, 10, x, labels, g, &loss) == FTTE_OK);
    FTTE_CHECK_CLOSE(loss, log(10.0), TOL);
    FTTE_CHECK_CLOSE(g[3], (0.1 - 1.0) / 2.0, TOL);
    FTTE_CHECK_CLOSE(g[10 + 9], (0.1 - 1.0) / 2.0, TOL);
    FTTE_CHECK_CLOSE(g[0], 0.1 / 2.0, TOL);
    /* One class: probability 1, loss 0, gradient 0. */
    FTTE_CHECK(ftte_cross_entropy_backward(2, 1, x, labels + 0, g, &loss) == FTTE_ERR_LABEL);
    const int32_t zeros[2] = {0, 0};
    FTTE_CHECK(ftte_cross_entropy_backward(2, 1, x, zeros, g, &loss) == FTTE_OK);
    FTTE_CHECK(loss == 0.0f && g[0] == 0.0f && g[1] == 0.0f);
}

static void test_cross_entropy_extreme_logits(void) {
    float *x = copy_buffer(&EXTREME[0][0], 16);
    const int32_t labels[4] = {2, 0, 1, 0};
    check_cross_entropy(4, 4, x, labels);
    float loss = 0.0f;
    FTTE_CHECK(ftte_cross_entropy_forward(4, 4, x, labels, &loss) == FTTE_OK);
    FTTE_CHECK(isfinite(loss));
    free(x);
}

/* The gradient is the derivative of the loss: central differences of the double reference. */
static void test_cross_entropy_finite_differences(void) {
    for (int32_t t = 0; t < 10; t++) {
        int32_t n = rand_int(1, 4), classes = rand_int(2, 6), size = n * classes;
        float *x = logits_buffer(size, 3.0f), *g = ftte_test_random_buffer(size);
        int32_t *labels = labels_buffer(n, classes);
        FTTE_CHECK(ftte_cross_entropy_backward(n, classes, x, labels, g, 0) == FTTE_OK);
        for (int32_t i = 0; i < size; i++) {
            const float saved = x[i], above = saved + 1e-2f, below = saved - 1e-2f;
            x[i] = above;
            double up = ref_loss(n, classes, x, labels);
            x[i] = below;
            double down = ref_loss(n, classes, x, labels);
            x[i] = saved;
            FTTE_CHECK_CLOSE(g[i], (up - down) / ((double)above - (double)below), 1e-4);
        }
        free(x), free(g), free(labels);
    }
}

/* A bad label anywhere in the batch: FTTE_ERR_LABEL before any row or the loss is written. */
static void test_cross_entropy_bad_labels(void) {
    const int32_t bad[] = {-1, 4, 100, INT32_MIN, INT32_MAX};
    for (int32_t i = 0; i < COUNT(bad); i++) {
        for (int32_t row = 0; row < 3; row++) {
            float *x = logits_buffer(12, 5.0f), *snapshot = copy_buffer(x, 12);
            float *g = ftte_test_random_buffer(12), *g_snapshot = copy_buffer(g, 12);
            int32_t labels[3] = {1, 2, 3};
            float loss = 42.0f;
            labels[row] = bad[i];
            FTTE_CHECK(ftte_cross_entropy_forward(3, 4, x, labels, &loss) == FTTE_ERR_LABEL);
            FTTE_CHECK(ftte_cross_entropy_backward(3, 4, x, labels, g, &loss) == FTTE_ERR_LABEL);
            FTTE_CHECK(ftte_cross_entropy_backward(3, 4, x, labels, x, &loss) == FTTE_ERR_LABEL);
            FTTE_CHECK(loss == 42.0f && same_buffer(g, g_snapshot, 12));
            FTTE_CHECK(same_buffer(x, snapshot, 12));
            free(x), free(snapshot), free(g), free(g_snapshot);
        }
    }
}

static void test_cross_entropy_errors(void) {
    float *x = logits_buffer(6, 1.0f), *g = ftte_test_random_buffer(6);
    float *g_snapshot = copy_buffer(g, 6), loss = 42.0f;
    const int32_t labels[2] = {0, 2};
    FTTE_CHECK(ftte_cross_entropy_forward(0, 3, x, labels, &loss) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_cross_entropy_forward(-2, 3, x, labels, &loss) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_cross_entropy_forward(2, 0, x, labels, &loss) == FTTE_ERR_SHAPE);
    FTTE_CHECK(ftte_cross_entropy_forward(2, 3, 0, labels, &loss) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_cross_entropy_forward(2, 3, x, 0, &loss) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_cross_entropy_forward(2, 3, x, labels, 0) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_cross_entropy_backward(0, 3, x, labels, g, &loss) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_cross_entropy_backward(-2, 3, x, labels, g, &loss) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_cross_entropy_backward(2, -1, x, labels, g, &loss) == FTTE_ERR_SHAPE);
    FTTE_CHECK(ftte_cross_entropy_backward(2, 3, 0, labels, g, &loss) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_cross_entropy_backward(2, 3, x, 0, g, &loss) == FTTE_ERR_ARG);
    FTTE_CHECK(ftte_cross_entropy_backward(2, 3, x, labels, 0, &loss) == FTTE_ERR_ARG);
    FTTE_CHECK(loss == 42.0f && same_buffer(g, g_snapshot, 6));
    free(x), free(g), free(g_snapshot);
}

FTTE_TEST_MAIN(test_softmax, test_softmax_extreme_logits, test_softmax_errors,
               test_cross_entropy, test_cross_entropy_uniform, test_cross_entropy_extreme_logits,
               test_cross_entropy_finite_differences, test_cross_entropy_bad_labels,
               test_cross_entropy_errors)
