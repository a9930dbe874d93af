/*
 * Helpers shared by the windowed-kernel tests (conv, depthwise): random geometries, buffers,
 * comparison against a double reference with the case described on failure.
 */
#ifndef FTTE_WINDOW_CASES_H
#define FTTE_WINDOW_CASES_H

#include "ftte_kernels.h"
#include "ftte_test.h"

static uint32_t int_state = 12345u;

/* Uniform integer in [lo, hi]. */
static inline int32_t rnd(int32_t lo, int32_t hi) {
    int_state = int_state * 1664525u + 1013904223u;
    return lo + (int32_t)((int_state >> 8) % (uint32_t)(hi - lo + 1));
}

static inline float *copy_of(const float *src, int32_t count) {
    float *p = (float *)malloc((size_t)(count > 0 ? count : 1) * sizeof(float));
    memcpy(p, src, (size_t)count * sizeof(float));
    return p;
}

static inline float *filled(int32_t count, float value) {
    float *p = (float *)malloc((size_t)(count > 0 ? count : 1) * sizeof(float));
    for (int32_t i = 0; i < count; i++) p[i] = value;
    return p;
}

/* Checks got against want, reporting only the first mismatch with the case's description. */
static inline int check_array(const float *got, const double *want, int32_t count, double tol,
                       const char *what, const char *desc) {
    for (int32_t i = 0; i < count; i++) {
        double scale = fmax(1.0, fmax(fabs((double)got[i]), fabs(want[i])));
        if (!(fabs((double)got[i] - want[i]) <= tol * scale)) {
            FTTE_CHECK_CLOSE(got[i], want[i], tol);
            printf("  %s: element %d of %d, %s\n", what, (int)i, (int)count, desc);
            return 0;
        }
    }
    return 1;
}

static inline void describe(char *buf, size_t size, const ftte_layer *l, int32_t n, ftte_slice s) {
    snprintf(buf, size,
             "op %d n %d in %dx%dx%d out %dx%dx%d k %dx%d s %dx%d pad %d,%d slice %d+%d",
             (int)l->op, (int)n, (int)l->in.h, (int)l->in.w, (int)l->in.c, (int)l->out.h,
             (int)l->out.w, (int)l->out.c, (int)l->kernel_h, (int)l->kernel_w, (int)l->stride_h,
             (int)l->stride_w, (int)l->pad_top, (int)l->pad_left, (int)s.begin, (int)s.count);
}

/* One random axis: kernel 1..5, stride 1..3, padding below the kernel and at most 2, and an
 * output length anywhere from 1 to the most the input allows (so windows may hang past the
 * end by up to kernel - 1). */
static inline void random_axis(int32_t *in, int32_t *out, int32_t *kernel, int32_t *stride,
                        int32_t *pad) {
    *kernel = rnd(1, 5);
    *stride = rnd(1, 4) == 4 ? 3 : rnd(1, 2);
    *pad = rnd(0, *kernel - 1 < 2 ? *kernel - 1 : 2);
    *in = rnd(1, 9);
    int32_t most = (*in - 1 + *pad) / *stride + 1;
    int32_t same = (*in + 2 * *pad - *kernel) / *stride + 1; /* symmetric padding */
    *out = (rnd(0, 1) && same >= 1 && same <= most) ? same : rnd(1, most);
}

#endif /* FTTE_WINDOW_CASES_H */
