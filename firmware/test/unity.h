/*
 * A small Unity-compatible test header for FTTE's PlatformIO tests.
 *
 * PlatformIO's Unity runner fetches ThrowTheSwitch's Unity from its registry, which is not
 * reachable on FTTE's machines. This header implements the part of Unity's API the tests use
 * and prints what Unity prints, so that PlatformIO's Unity output parser (subclassed in
 * test_custom_runner.py, `test_framework = custom`) reads the results:
 *
 *   firmware/test/test_trainer/test_main.c:120:test_training_reduces_loss:PASS
 *   firmware/test/test_trainer/test_main.c:57:test_plan_equals_high_water:FAIL: Expected 6408 Was 6404
 *   -----------------------
 *   2 Tests 1 Failures 0 Ignored
 *   FAIL
 *
 * Semantics follow Unity: the first failing assertion ends its test (longjmp back to
 * RUN_TEST), setUp() and tearDown() run around every test and must be defined by the test
 * file, UNITY_END() returns the number of failed tests (return it from main). The same test
 * sources build with the real Unity where the registry is reachable.
 *
 * Output goes through stdio's printf: stdout on the host, semihosting on the QEMU boards.
 * Include this header from one source file per test program (its state is static).
 */
#ifndef FTTE_UNITY_H
#define FTTE_UNITY_H

#include <setjmp.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

void setUp(void);
void tearDown(void);

static struct {
    const char *file;     /* of the test being run */
    const char *name;     /* of the test being run */
    unsigned long line;   /* of its RUN_TEST */
    unsigned tests, failures, ignored;
    int current_failed;
    jmp_buf abort_frame;
} unity_state;

static inline void unity_begin(const char *file) {
    unity_state.file = file;
    unity_state.tests = unity_state.failures = unity_state.ignored = 0;
}

/* Reports a failure of the current test and ends it. */
static inline void unity_fail(unsigned long line, const char *message) {
    printf("%s:%lu:%s:FAIL: %s\n", unity_state.file, line, unity_state.name, message);
    unity_state.current_failed = 1;
    longjmp(unity_state.abort_frame, 1);
}

static inline void unity_run(void (*test)(void), const char *name, unsigned long line) {
    unity_state.name = name;
    unity_state.line = line;
    unity_state.current_failed = 0;
    unity_state.tests++;
    if (setjmp(unity_state.abort_frame) == 0) {
        setUp();
        test();
    }
    if (setjmp(unity_state.abort_frame) == 0) tearDown();
    if (unity_state.current_failed) {
        unity_state.failures++;
    } else {
        printf("%s:%lu:%s:PASS\n", unity_state.file, line, name);
    }
    fflush(stdout);
}

static inline int unity_end(void) {
    printf("\n-----------------------\n%u Tests %u Failures %u Ignored\n%s\n", unity_state.tests,
           unity_state.failures, unity_state.ignored, unity_state.failures ? "FAIL" : "OK");
    fflush(stdout);
    return (int)unity_state.failures;
}

static inline void unity_assert(int condition, unsigned long line, const char *message) {
    if (!condition) unity_fail(line, message);
}

/* long, not long long: newlib-nano's printf has no %lld. */
static inline void unity_assert_equal_int(long expected, long actual, unsigned long line,
                                          const char *message) {
    if (expected != actual) {
        char text[160];
        snprintf(text, sizeof text, "Expected %ld Was %ld%s%s", expected, actual,
                 message ? ". " : "", message ? message : "");
        unity_fail(line, text);
    }
}

/* |expected - actual| <= delta, as Unity's TEST_ASSERT_FLOAT_WITHIN. */
static inline void unity_assert_float_within(float delta, float expected, float actual,
                                             unsigned long line, const char *message) {
    float diff = actual > expected ? actual - expected : expected - actual;
    if (!(diff <= delta)) {
        char text[160];
        snprintf(text, sizeof text, "Expected %.9g +/- %.3g Was %.9g%s%s", (double)expected,
                 (double)delta, (double)actual, message ? ". " : "", message ? message : "");
        unity_fail(line, text);
    }
}

/* actual < threshold, as Unity's TEST_ASSERT_LESS_THAN_FLOAT(threshold, actual). */
static inline void unity_assert_less_than_float(float threshold, float actual,
                                                unsigned long line, const char *message) {
    if (!(actual < threshold)) {
        char text[160];
        snprintf(text, sizeof text, "Expected %.9g to be less than %.9g%s%s", (double)actual,
                 (double)threshold, message ? ". " : "", message ? message : "");
        unity_fail(line, text);
    }
}

#define UNITY_BEGIN() unity_begin(__FILE__)
#define UNITY_END() unity_end()
#define RUN_TEST(fn) unity_run(fn, #fn, __LINE__)

#define TEST_FAIL_MESSAGE(msg) unity_fail(__LINE__, (msg))
#define TEST_FAIL() unity_fail(__LINE__, "")
#define TEST_ASSERT_MESSAGE(cond, msg) unity_assert((cond) ? 1 : 0, __LINE__, (msg))
#define TEST_ASSERT(cond) unity_assert((cond) ? 1 : 0, __LINE__, "Expression Evaluated To FALSE")
#define TEST_ASSERT_TRUE(cond) TEST_ASSERT(cond)
#define TEST_ASSERT_FALSE(cond) unity_assert((cond) ? 0 : 1, __LINE__, "Expected FALSE Was TRUE")
#define TEST_ASSERT_NOT_NULL(p) unity_assert((p) != NULL, __LINE__, "Expected Non-NULL")
#define TEST_ASSERT_EQUAL_INT(e, a) unity_assert_equal_int((e), (a), __LINE__, NULL)
#define TEST_ASSERT_EQUAL_INT32(e, a) unity_assert_equal_int((e), (a), __LINE__, NULL)
#define TEST_ASSERT_EQUAL(e, a) unity_assert_equal_int((e), (a), __LINE__, NULL)
#define TEST_ASSERT_EQUAL_INT_MESSAGE(e, a, msg) unity_assert_equal_int((e), (a), __LINE__, (msg))
#define TEST_ASSERT_EQUAL_MESSAGE(e, a, msg) unity_assert_equal_int((e), (a), __LINE__, (msg))
#define TEST_ASSERT_FLOAT_WITHIN(d, e, a) unity_assert_float_within((d), (e), (a), __LINE__, NULL)
#define TEST_ASSERT_FLOAT_WITHIN_MESSAGE(d, e, a, msg) \
    unity_assert_float_within((d), (e), (a), __LINE__, (msg))
#define TEST_ASSERT_LESS_THAN_FLOAT(t, a) unity_assert_less_than_float((t), (a), __LINE__, NULL)
#define TEST_ASSERT_LESS_THAN_FLOAT_MESSAGE(t, a, msg) \
    unity_assert_less_than_float((t), (a), __LINE__, (msg))

#ifdef __cplusplus
}
#endif

#endif /* FTTE_UNITY_H */
