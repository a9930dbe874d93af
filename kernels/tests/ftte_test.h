/*
 * Minimal test harness for the C kernel tests. Each tests/test_*.c is its own program:
 *
 *   static void test_something(void) { FTTE_CHECK(x == 1); FTTE_CHECK_CLOSE(a, b, 1e-6f); }
 *   FTTE_TEST_MAIN(test_something, test_other)
 *
 * Output is one line per test, "file:test:PASS" or "file:line:test:FAIL: message", and the
 * program exits non-zero when any check failed. Buffers in tests are malloc'ed at their exact
 * size so that AddressSanitizer catches any write out of bounds.
 */
#ifndef FTTE_TEST_H
#define FTTE_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ftte_test_failed_checks;
static const char *ftte_test_current = "";

#define FTTE_CHECK(cond)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            printf("%s:%d:%s:FAIL: %s\n", __FILE__, __LINE__, ftte_test_current, #cond);       \
            ftte_test_failed_checks++;                                                         \
        }                                                                                      \
    } while (0)

/* |a - b| <= tol * max(1, |a|, |b|): relative for large values, absolute near zero. */
#define FTTE_CHECK_CLOSE(a, b, tol)                                                            \
    do {                                                                                       \
        double ftte_a_ = (double)(a), ftte_b_ = (double)(b);                                   \
        double ftte_scale_ = fmax(1.0, fmax(fabs(ftte_a_), fabs(ftte_b_)));                    \
        if (!(fabs(ftte_a_ - ftte_b_) <= (double)(tol) * ftte_scale_)) {                     \
            printf("%s:%d:%s:FAIL: %s = %.9g, %s = %.9g\n", __FILE__, __LINE__,                \
                   ftte_test_current, #a, ftte_a_, #b, ftte_b_);                               \
            ftte_test_failed_checks++;                                                         \
        }                                                                                      \
    } while (0)

/* Deterministic pseudo-random floats in [-1, 1) for test data (xorshift32). */
static uint32_t ftte_test_rng_state = 2463534242u;
static inline float ftte_test_rand(void) {
    uint32_t x = ftte_test_rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    ftte_test_rng_state = x;
    return (float)((double)x / 2147483648.0 - 1.0);
}
static inline float *ftte_test_random_buffer(int32_t count) {
    float *p = (float *)calloc((size_t)(count > 0 ? count : 1), sizeof(float));
    for (int32_t i = 0; i < count; i++) p[i] = ftte_test_rand();
    return p;
}
static inline float *ftte_test_zero_buffer(int32_t count) {
    return (float *)calloc((size_t)(count > 0 ? count : 1), sizeof(float));
}

typedef void (*ftte_test_fn)(void);

static inline int ftte_test_run(const char *file, const ftte_test_fn *tests, const char *names,
                                int count) {
    int failed_tests = 0;
    char buffer[4096];
    strncpy(buffer, names, sizeof buffer - 1);
    buffer[sizeof buffer - 1] = '\0';
    char *name = strtok(buffer, ", ");
    for (int i = 0; i < count; i++) {
        int before = ftte_test_failed_checks;
        ftte_test_current = name ? name : "?";
        tests[i]();
        if (ftte_test_failed_checks == before) {
            printf("%s:%s:PASS\n", file, ftte_test_current);
        } else {
            failed_tests++;
        }
        name = strtok(NULL, ", ");
    }
    printf("%d passed, %d failed\n", count - failed_tests, failed_tests);
    return failed_tests ? 1 : 0;
}

#define FTTE_TEST_MAIN(...)                                                                    \
    int main(void) {                                                                           \
        static const ftte_test_fn tests[] = {__VA_ARGS__};                                     \
        return ftte_test_run(__FILE__, tests, #__VA_ARGS__,                                    \
                             (int)(sizeof tests / sizeof tests[0]));                           \
    }

#endif /* FTTE_TEST_H */
