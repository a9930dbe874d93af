/*
 * Tests of the pooling kernels (max, average, global average; forward and backward) against
 * naive references that index the NHWC tensors directly, over random geometries.
 *
 * Tolerances are doubles: FTTE_CHECK_CLOSE multiplies the tolerance by a double, and a float
 * literal there would be an implicit promotion, which -Wdouble-promotion rejects.
 */
#include "ftte_kernels.h"
#include "ftte_test.h"

#define TOL 1e-5

/* ---------------------------------------------------------------------------------------- */
/* Layers and buffers                                                                        */
/* ---------------------------------------------------------------------------------------- */

/* A pooling layer whose output shape follows from the input, window and stride (floor). */
static ftte_layer pool_layer(int32_t op, int32_t h, int32_t w, int32_t c, int32_t kh, int32_t kw,
                             int32_t sh, int32_t sw) {
    ftte_layer l;
    memset(&l, 0, sizeof l);
    l.op = op;
    l.in.h = h;
    l.in.w = w;
    l.in.c = c;
    l.out.h = (h - kh) / sh + 1;
    l.out.w = (w - kw) / sw + 1;
    l.out.c = c;
    l.kernel_h = kh;
    l.kernel_w = kw;
    l.stride_h = sh;
    l.stride_w = sw;
    return l;
}

static ftte_layer gap_layer(int32_t h, int32_t w, int32_t c) {
    ftte_layer l;
    memset(&l, 0, sizeof l);
    l.op = FTTE_OP_GLOBAL_AVG_POOL;
    l.in.h = h;
    l.in.w = w;
    l.in.c = c;
    l.out.h = 1;
    l.out.w = 1;
    l.out.c = c;
    return l;
}

static int32_t rand_int(int32_t lo, int32_t hi) { /* inclusive */
    uint32_t r = (uint32_t)((ftte_test_rand() + 1.0f) * 1000000.0f);
    return lo + (int32_t)(r % (uint32_t)(hi - lo + 1));
}

/* Inputs drawn from {-1, 0, 1}: windows then often hold several equal maxima, which is what
 * exercises the first-maximum rule of the max pool backward. */
static float *tied_buffer(int32_t count) {
    float *p = ftte_test_random_buffer(count);
    for (int32_t i = 0; i < count; i++) p[i] = (float)rand_int(-1, 1);
    return p;
}

static float *copy_buffer(const float *src, int32_t count) {
    float *p = (float *)malloc((size_t)count * sizeof(float));
    memcpy(p, src, (size_t)count * sizeof(float));
    return p;
}

/* Element (b, y, x, c) of an NHWC tensor of sample shape s. */
static int32_t at(ftte_shape s, int32_t b, int32_t y, int32_t x, int32_t c) {
    return ((b * s.h + y) * s.w + x) * s.c + c;
}

static void check_buffers_close(const float *got, const float *want, int32_t count) {
    int mismatches = 0;
    for (int32_t i = 0; i < count && mismatches < 5; i++) {
        double scale = fmax(1.0, fmax(fabs((double)got[i]), fabs((double)want[i])));
        if (fabs((double)got[i] - (double)want[i]) > TOL * scale) mismatches++;
        FTTE_CHECK_CLOSE(got[i], want[i], TOL);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Naive references                                                                          */
/* ---------------------------------------------------------------------------------------- */

/* Index into the input of the first maximum of window (b, oy, ox), channel c. */
static int32_t ref_argmax(const ftte_layer *l, const float *in, int32_t b, int32_t oy,
                          int32_t ox, int32_t c) {
    int32_t best = at(l->in, b, oy * l->stride_h, ox * l->stride_w, c);
    for (int32_t ky = 0; ky < l->kernel_h; ky++) {
        for (int32_t kx = 0; kx < l->kernel_w; kx++) {
            int32_t i = at(l->in, b, oy * l->stride_h + ky, ox * l->stride_w + kx, c);
            if (in[i] > in[best]) best = i;
        }
    }
    return best;
}

static void ref_max_forward(const ftte_layer *l, int32_t n, const float *in, float *out) {
    for (int32_t b = 0; b < n; b++)
        for (int32_t oy = 0; oy < l->out.h; oy++)
            for (int32_t ox = 0; ox < l->out.w; ox++)
                for (int32_t c = 0; c < l->out.c; c++)
                    out[at(l->out, b, oy, ox, c)] = in[ref_argmax(l, in, b, oy, ox, c)];
}

static void ref_max_backward(const ftte_layer *l, int32_t n, const float *in, const float *gout,
                             float *gin) {
    for (int32_t b = 0; b < n; b++)
        for (int32_t oy = 0; oy < l->out.h; oy++)
            for (int32_t ox = 0; ox < l->out.w; ox++)
                for (int32_t c = 0; c < l->out.c; c++)
                    gin[ref_argmax(l, in, b, oy, ox, c)] += gout[at(l->out, b, oy, ox, c)];
}

static double ref_window_sum(const ftte_layer *l, const float *in, int32_t b, int32_t oy,
                             int32_t ox, int32_t c) {
    double sum = 0.0;
    for (int32_t ky = 0; ky < l->kernel_h; ky++)
        for (int32_t kx = 0; kx < l->kernel_w; kx++)
            sum += (double)in[at(l->in, b, oy * l->stride_h + ky, ox * l->stride_w + kx, c)];
    return sum;
}

static void ref_avg_forward(const ftte_layer *l, int32_t n, const float *in, float *out) {
    double area = (double)(l->kernel_h * l->kernel_w);
    for (int32_t b = 0; b < n; b++)
        for (int32_t oy = 0; oy < l->out.h; oy++)
            for (int32_t ox = 0; ox < l->out.w; ox++)
                for (int32_t c = 0; c < l->out.c; c++)
                    out[at(l->out, b, oy, ox, c)] =
                        (float)(ref_window_sum(l, in, b, oy, ox, c) / area);
}

/* Gather form (per input element, sum over the windows covering it), unlike the kernel's
 * scatter, so that both cannot share an indexing mistake. */
static void ref_avg_backward(const ftte_layer *l, int32_t n, const float *gout, float *gin) {
    double area = (double)(l->kernel_h * l->kernel_w);
    for (int32_t b = 0; b < n; b++)
        for (int32_t y = 0; y < l->in.h; y++)
            for (int32_t x = 0; x < l->in.w; x++)
                for (int32_t c = 0; c < l->in.c; c++) {
                    double sum = 0.0;
                    for (int32_t oy = 0; oy < l->out.h; oy++)
                        for (int32_t ox = 0; ox < l->out.w; ox++) {
                            int32_t dy = y - oy * l->stride_h, dx = x - ox * l->stride_w;
                            if (dy < 0 || dy >= l->kernel_h || dx < 0 || dx >= l->kernel_w)
                                continue;
                            sum += (double)gout[at(l->out, b, oy, ox, c)] / area;
                        }
                    gin[at(l->in, b, y, x, c)] =
                        (float)((double)gin[at(l->in, b, y, x, c)] + sum);
                }
}

static void ref_gap_forward(const ftte_layer *l, int32_t n, const float *in, float *out) {
    double pixels = (double)(l->in.h * l->in.w);
    for (int32_t b = 0; b < n; b++)
        for (int32_t c = 0; c < l->in.c; c++) {
            double sum = 0.0;
            for (int32_t y = 0; y < l->in.h; y++)
                for (int32_t x = 0; x < l->in.w; x++) sum += (double)in[at(l->in, b, y, x, c)];
            out[b * l->out.c + c] = (float)(sum / pixels);
        }
}

static void ref_gap_backward(const ftte_layer *l, int32_t n, const float *gout, float *gin) {
    double pixels = (double)(l->in.h * l->in.w);
    for (int32_t b = 0; b < n; b++)
        for (int32_t y = 0; y < l->in.h; y++)
            for (int32_t x = 0; x < l->in.w; x++)
                for (int32_t c = 0; c < l->in.c; c++) {
                    int32_t i = at(l->in, b, y, x, c);
                    gin[i] = (float)((double)gin[i] + (double)gout[b * l->out.c + c] / pixels);
                }
}

/* ---------------------------------------------------------------------------------------- */
/* Random geometries                                                                         */
/* ---------------------------------------------------------------------------------------- */

/* Window and stride families the models use: 2x2/2, 3x3/1, 3x3/2, 1xk for 1-D signals, and a
 * few uneven ones. Input sizes are drawn so that strides often leave rows/columns unread. */
static ftte_layer random_pool_layer(int32_t op, int round) {
    static const int32_t windows[][4] = {
        {2, 2, 2, 2}, {3, 3, 1, 1}, {3, 3, 2, 2}, {1, 3, 1, 1}, {1, 4, 1, 2},
        {1, 2, 1, 2}, {2, 3, 1, 2}, {3, 1, 2, 1}, {1, 1, 1, 1}, {4, 4, 4, 4}};
    const int families = (int)(sizeof windows / sizeof windows[0]);
    const int32_t *k = windows[round % families];
    /* Every other pass over the families, the 1xk windows get real 1-D signals (h == 1). */
    int one_d = k[0] == 1 && (round / families) % 2 == 1;
    int32_t h = one_d ? 1 : k[0] + rand_int(0, 6);
    int32_t w = k[1] + rand_int(0, 9);
    return pool_layer(op, h, w, rand_int(1, 5), k[0], k[1], k[2], k[3]);
}

#define ROUNDS 200

/* Tied inputs on half the rounds of every window family (the family is round % 10). */
static int tied_round(int round) { return round % 4 >= 2; }

static void test_max_pool_forward_random(void) {
    for (int round = 0; round < ROUNDS; round++) {
        ftte_layer l = random_pool_layer(FTTE_OP_MAX_POOL2D, round);
        int32_t n = rand_int(1, 3);
        int32_t in_count = n * ftte_shape_size(l.in), out_count = n * ftte_shape_size(l.out);
        float *in = tied_round(round) ? tied_buffer(in_count) : ftte_test_random_buffer(in_count);
        float *out = ftte_test_random_buffer(out_count);
        float *want = ftte_test_zero_buffer(out_count);
        ref_max_forward(&l, n, in, want);
        FTTE_CHECK(ftte_max_pool2d_forward(&l, n, in, out) == FTTE_OK);
        FTTE_CHECK(memcmp(out, want, (size_t)out_count * sizeof(float)) == 0); /* max is exact */
        free(in);
        free(out);
        free(want);
    }
}

static void test_max_pool_backward_random(void) {
    for (int round = 0; round < ROUNDS; round++) {
        ftte_layer l = random_pool_layer(FTTE_OP_MAX_POOL2D, round);
        int32_t n = rand_int(1, 3);
        int32_t in_count = n * ftte_shape_size(l.in), out_count = n * ftte_shape_size(l.out);
        float *in = tied_round(round) ? tied_buffer(in_count) : ftte_test_random_buffer(in_count);
        float *gout = ftte_test_random_buffer(out_count);
        float *gin = ftte_test_random_buffer(in_count); /* non-zero: the kernel accumulates */
        float *want = copy_buffer(gin, in_count);
        ref_max_backward(&l, n, in, gout, want);
        FTTE_CHECK(ftte_max_pool2d_backward(&l, n, in, gout, gin) == FTTE_OK);
        check_buffers_close(gin, want, in_count);
        free(in);
        free(gout);
        free(gin);
        free(want);
    }
}

static void test_avg_pool_forward_random(void) {
    for (int round = 0; round < ROUNDS; round++) {
        ftte_layer l = random_pool_layer(FTTE_OP_AVG_POOL2D, round);
        int32_t n = rand_int(1, 3);
        int32_t in_count = n * ftte_shape_size(l.in), out_count = n * ftte_shape_size(l.out);
        float *in = ftte_test_random_buffer(in_count);
        float *out = ftte_test_random_buffer(out_count);
        float *want = ftte_test_zero_buffer(out_count);
        ref_avg_forward(&l, n, in, want);
        FTTE_CHECK(ftte_avg_pool2d_forward(&l, n, in, out) == FTTE_OK);
        check_buffers_close(out, want, out_count);
        free(in);
        free(out);
        free(want);
    }
}

static void test_avg_pool_backward_random(void) {
    for (int round = 0; round < ROUNDS; round++) {
        ftte_layer l = random_pool_layer(FTTE_OP_AVG_POOL2D, round);
        int32_t n = rand_int(1, 3);
        int32_t in_count = n * ftte_shape_size(l.in), out_count = n * ftte_shape_size(l.out);
        float *gout = ftte_test_random_buffer(out_count);
        float *gin = ftte_test_random_buffer(in_count); /* non-zero: the kernel accumulates */
        float *want = copy_buffer(gin, in_count);
        ref_avg_backward(&l, n, gout, want);
        FTTE_CHECK(ftte_avg_pool2d_backward(&l, n, gout, gin) == FTTE_OK);
        check_buffers_close(gin, want, in_count);
        free(gout);
        free(gin);
        free(want);
    }
}

static ftte_layer random_gap_layer(int round) {
    int one_d = round % 3 == 0;
    return gap_layer(one_d ? 1 : rand_int(1, 9), rand_int(1, 12), rand_int(1, 6));
}

static void test_global_avg_pool_forward_random(void) {
    for (int round = 0; round < ROUNDS; round++) {
        ftte_layer l = random_gap_layer(round);
        int32_t n = rand_int(1, 3);
        int32_t in_count = n * ftte_shape_size(l.in), out_count = n * ftte_shape_size(l.out);
        float *in = ftte_test_random_buffer(in_count);
        float *out = ftte_test_random_buffer(out_count);
        float *want = ftte_test_zero_buffer(out_count);
        ref_gap_forward(&l, n, in, want);
        FTTE_CHECK(ftte_global_avg_pool_forward(&l, n, in, out) == FTTE_OK);
        check_buffers_close(out, want, out_count);
        free(in);
        free(out);
        free(want);
    }
}

static void test_global_avg_pool_backward_random(void) {
    for (int round = 0; round < ROUNDS; round++) {
        ftte_layer l = random_gap_layer(round);
        int32_t n = rand_int(1, 3);
        int32_t in_count = n * ftte_shape_size(l.in), out_count = n * ftte_shape_size(l.out);
        float *gout = ftte_test_random_buffer(out_count);
        float *gin = ftte_test_random_buffer(in_count); /* non-zero: the kernel accumulates */
        float *want = copy_buffer(gin, in_count);
        ref_gap_backward(&l, n, gout, want);
        FTTE_CHECK(ftte_global_avg_pool_backward(&l, n, gout, gin) == FTTE_OK);
        check_buffers_close(gin, want, in_count);
        free(gout);
        free(gin);
        free(want);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Hand-computed cases                                                                       */
/* ---------------------------------------------------------------------------------------- */

/* 4x4x1, 2x2 stride 2; ties go to the first maximum in row-major order. */
static void test_max_pool_known_values(void) {
    static const float input[16] = {1, 5, 2, 2,  /* window (0,0): max 5 at (0,1) */
                                    3, 4, 2, 2,  /* window (0,1): four 2s, first at (0,2) */
                                    -1, -3, 7, 0, /* window (1,0): max -1 at (2,0) */
                                    -2, -1, 0, 7}; /* window (1,1): 7 twice, first at (2,2) */
    ftte_layer l = pool_layer(FTTE_OP_MAX_POOL2D, 4, 4, 1, 2, 2, 2, 2);
    float *in = copy_buffer(input, 16);
    float *out = ftte_test_zero_buffer(4);
    float *gout = ftte_test_zero_buffer(4);
    float *gin = ftte_test_zero_buffer(16);
    FTTE_CHECK(ftte_max_pool2d_forward(&l, 1, in, out) == FTTE_OK);
    FTTE_CHECK(out[0] == 5.0f && out[1] == 2.0f && out[2] == -1.0f && out[3] == 7.0f);
    for (int i = 0; i < 4; i++) gout[i] = (float)(10 * (i + 1));
    gin[1] = 0.5f; /* accumulates on top */
    FTTE_CHECK(ftte_max_pool2d_backward(&l, 1, in, gout, gin) == FTTE_OK);
    for (int i = 0; i < 16; i++) {
        float want = i == 1 ? 10.5f : i == 2 ? 20.0f : i == 8 ? 30.0f : i == 10 ? 40.0f : 0.0f;
        FTTE_CHECK(gin[i] == want);
    }
    free(in);
    free(out);
    free(gout);
    free(gin);
}

/* 1-D signal [1, 1, 5, 2], window 1x3 stride 1: overlapping windows accumulate. */
static void test_max_pool_overlapping_1d(void) {
    static const float input[10] = {0, 9, 4, 1, 1, 1, 3, 1, 2, 8}; /* channel 0: 0 4 1 3 2 */
    ftte_layer l = pool_layer(FTTE_OP_MAX_POOL2D, 1, 5, 2, 1, 3, 1, 1);
    float *in = copy_buffer(input, 10);
    float *out = ftte_test_zero_buffer(6);
    float *gout = ftte_test_zero_buffer(6);
    float *gin = ftte_test_zero_buffer(10);
    FTTE_CHECK(ftte_max_pool2d_forward(&l, 1, in, out) == FTTE_OK);
    /* channel 0 windows: {0,4,1} {4,1,3} {1,3,2}; channel 1: {9,1,1} {1,1,1} {1,1,8} */
    static const float want_out[6] = {4, 9, 4, 1, 3, 8};
    for (int i = 0; i < 6; i++) FTTE_CHECK(out[i] == want_out[i]);
    for (int i = 0; i < 6; i++) gout[i] = 1.0f;
    FTTE_CHECK(ftte_max_pool2d_backward(&l, 1, in, gout, gin) == FTTE_OK);
    /* channel 0: x=1 twice, x=3 once; channel 1: x=0 once, x=1 once (first of three 1s), x=4 */
    static const float want_gin[10] = {0, 1, 2, 1, 0, 0, 1, 0, 0, 1};
    for (int i = 0; i < 10; i++) FTTE_CHECK(gin[i] == want_gin[i]);
    free(in);
    free(out);
    free(gout);
    free(gin);
}

/* 3x3x1 input, 2x2 stride 1 average pool, then its backward with grad 4 everywhere. */
static void test_avg_pool_known_values(void) {
    static const float input[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    ftte_layer l = pool_layer(FTTE_OP_AVG_POOL2D, 3, 3, 1, 2, 2, 1, 1);
    float *in = copy_buffer(input, 9);
    float *out = ftte_test_zero_buffer(4);
    float *gout = ftte_test_zero_buffer(4);
    float *gin = ftte_test_zero_buffer(9);
    FTTE_CHECK(ftte_avg_pool2d_forward(&l, 1, in, out) == FTTE_OK);
    FTTE_CHECK(out[0] == 3.0f && out[1] == 4.0f && out[2] == 6.0f && out[3] == 7.0f);
    for (int i = 0; i < 4; i++) gout[i] = 4.0f;
    FTTE_CHECK(ftte_avg_pool2d_backward(&l, 1, gout, gin) == FTTE_OK);
    static const float want[9] = {1, 2, 1, 2, 4, 2, 1, 2, 1}; /* windows covering each pixel */
    for (int i = 0; i < 9; i++) FTTE_CHECK(gin[i] == want[i]);
    free(in);
    free(out);
    free(gout);
    free(gin);
}

/* 2x2x2 input: channel means, and the gradient split over the four pixels. */
static void test_global_avg_pool_known_values(void) {
    static const float input[8] = {1, 10, 2, 20, 3, 30, 6, 60};
    ftte_layer l = gap_layer(2, 2, 2);
    float *in = copy_buffer(input, 8);
    float *out = ftte_test_zero_buffer(2);
    float *gout = ftte_test_zero_buffer(2);
    float *gin = ftte_test_zero_buffer(8);
    FTTE_CHECK(ftte_global_avg_pool_forward(&l, 1, in, out) == FTTE_OK);
    FTTE_CHECK(out[0] == 3.0f && out[1] == 30.0f);
    gout[0] = 8.0f;
    gout[1] = -4.0f;
    for (int i = 0; i < 8; i++) gin[i] = 1.0f;
    FTTE_CHECK(ftte_global_avg_pool_backward(&l, 1, gout, gin) == FTTE_OK);
    for (int i = 0; i < 8; i++) FTTE_CHECK(gin[i] == (i % 2 == 0 ? 3.0f : 0.0f));
    free(in);
    free(out);
    free(gout);
    free(gin);
}

/* ---------------------------------------------------------------------------------------- */
/* Adjoint identity: <forward(x), g> == <x, backward(g)>                                     */
/* ---------------------------------------------------------------------------------------- */

/* Pooling is linear (max pool: piecewise, fixed by x), so the backward must be the transpose
 * of the forward. This ties each backward to its forward independently of the references. */
typedef ftte_status (*forward_fn)(const ftte_layer *, int32_t, const float *, float *);

static double dot(const float *a, const float *b, int32_t count) {
    double sum = 0.0;
    for (int32_t i = 0; i < count; i++) sum += (double)a[i] * (double)b[i];
    return sum;
}

static void check_adjoint(const ftte_layer *l, int32_t n, forward_fn forward, int is_max) {
    int32_t in_count = n * ftte_shape_size(l->in), out_count = n * ftte_shape_size(l->out);
    float *x = ftte_test_random_buffer(in_count);
    float *y = ftte_test_zero_buffer(out_count);
    float *g = ftte_test_random_buffer(out_count);
    float *gx = ftte_test_zero_buffer(in_count);
    FTTE_CHECK(forward(l, n, x, y) == FTTE_OK);
    ftte_status status = is_max ? ftte_max_pool2d_backward(l, n, x, g, gx)
                         : l->op == FTTE_OP_AVG_POOL2D ? ftte_avg_pool2d_backward(l, n, g, gx)
                                                       : ftte_global_avg_pool_backward(l, n, g, gx);
    FTTE_CHECK(status == FTTE_OK);
    FTTE_CHECK_CLOSE(dot(y, g, out_count), dot(x, gx, in_count), 1e-4);
    free(x);
    free(y);
    free(g);
    free(gx);
}

static void test_adjoint_identity(void) {
    for (int round = 0; round < 60; round++) {
        ftte_layer max_l = random_pool_layer(FTTE_OP_MAX_POOL2D, round);
        ftte_layer avg_l = random_pool_layer(FTTE_OP_AVG_POOL2D, round);
        ftte_layer gap_l = random_gap_layer(round);
        int32_t n = rand_int(1, 3);
        check_adjoint(&max_l, n, ftte_max_pool2d_forward, 1);
        check_adjoint(&avg_l, n, ftte_avg_pool2d_forward, 0);
        check_adjoint(&gap_l, n, ftte_global_avg_pool_forward, 0);
    }
}

/* A larger feature map, as after a first conv: 32x32x8, 2x2 stride 2, batch 2. */
static void test_large_feature_map(void) {
    ftte_layer l = pool_layer(FTTE_OP_MAX_POOL2D, 32, 32, 8, 2, 2, 2, 2);
    int32_t in_count = 2 * ftte_shape_size(l.in), out_count = 2 * ftte_shape_size(l.out);
    float *in = ftte_test_random_buffer(in_count);
    float *out = ftte_test_zero_buffer(out_count);
    float *want = ftte_test_zero_buffer(out_count);
    ref_max_forward(&l, 2, in, want);
    FTTE_CHECK(ftte_max_pool2d_forward(&l, 2, in, out) == FTTE_OK);
    FTTE_CHECK(memcmp(out, want, (size_t)out_count * sizeof(float)) == 0);
    l.op = FTTE_OP_AVG_POOL2D;
    ref_avg_forward(&l, 2, in, want);
    FTTE_CHECK(ftte_avg_pool2d_forward(&l, 2, in, out) == FTTE_OK);
    check_buffers_close(out, want, out_count);
    free(in);
    free(out);
    free(want);
}

/* ---------------------------------------------------------------------------------------- */
/* Errors: the status, and no buffer touched                                                 */
/* ---------------------------------------------------------------------------------------- */

#define SENTINEL 12345.0f
#define ERR_BUF 64 /* larger than any tensor of the error cases below */

typedef struct {
    float *a, *b, *c; /* whichever of input / output / grads a kernel takes */
} err_bufs;

static err_bufs sentinel_bufs(void) {
    err_bufs e;
    e.a = (float *)malloc(ERR_BUF * sizeof(float));
    e.b = (float *)malloc(ERR_BUF * sizeof(float));
    e.c = (float *)malloc(ERR_BUF * sizeof(float));
    for (int i = 0; i < ERR_BUF; i++) e.a[i] = e.b[i] = e.c[i] = SENTINEL;
    return e;
}

static int untouched(const err_bufs *e) {
    for (int i = 0; i < ERR_BUF; i++)
        if (e->a[i] != SENTINEL || e->b[i] != SENTINEL || e->c[i] != SENTINEL) return 0;
    return 1;
}

static void free_bufs(err_bufs *e) {
    free(e->a);
    free(e->b);
    free(e->c);
}

/* Calls the forward and backward kernel of `kernel_op` with the given arguments; each must
 * return `want` and, unless it succeeds, leave every buffer as it was. null_at passes NULL in
 * place of one buffer argument (0, 1 or 2; -1 for none); 2 exists only for the max pool
 * backward, so the forward is then skipped. */
static void expect_status(const ftte_layer *l, int32_t kernel_op, int32_t n, int null_at,
                          ftte_status want) {
    err_bufs e = sentinel_bufs();
    float *a = null_at == 0 ? NULL : e.a, *b = null_at == 1 ? NULL : e.b;
    float *c = null_at == 2 ? NULL : e.c;
    if (kernel_op == FTTE_OP_MAX_POOL2D) {
        if (null_at != 2) FTTE_CHECK(ftte_max_pool2d_forward(l, n, a, b) == want);
        FTTE_CHECK(ftte_max_pool2d_backward(l, n, a, b, c) == want);
    } else if (kernel_op == FTTE_OP_AVG_POOL2D) {
        FTTE_CHECK(ftte_avg_pool2d_forward(l, n, a, b) == want);
        FTTE_CHECK(ftte_avg_pool2d_backward(l, n, a, b) == want);
    } else {
        FTTE_CHECK(ftte_global_avg_pool_forward(l, n, a, b) == want);
        FTTE_CHECK(ftte_global_avg_pool_backward(l, n, a, b) == want);
    }
    if (want != FTTE_OK) FTTE_CHECK(untouched(&e));
    free_bufs(&e);
}

static void test_pool_errors(void) {
    static const int32_t ops[2] = {FTTE_OP_MAX_POOL2D, FTTE_OP_AVG_POOL2D};
    for (int i = 0; i < 2; i++) {
        const int32_t op = ops[i];
        ftte_layer good = pool_layer(op, 4, 4, 2, 2, 2, 2, 2), bad;
        expect_status(&good, op, 1, -1, FTTE_OK); /* control: 4x4x2 fits ERR_BUF */
        expect_status(NULL, op, 1, -1, FTTE_ERR_ARG);
        expect_status(&good, op, 0, -1, FTTE_ERR_ARG);
        expect_status(&good, op, -2, -1, FTTE_ERR_ARG);
        int buffers = op == FTTE_OP_MAX_POOL2D ? 3 : 2;
        for (int k = 0; k < buffers; k++) expect_status(&good, op, 1, k, FTTE_ERR_ARG);
        bad = good;
        bad.out.h = 3; /* a window past the input's end */
        expect_status(&bad, op, 1, -1, FTTE_ERR_SHAPE);
        bad = good;
        bad.out.c = 1; /* pooling keeps the channels */
        expect_status(&bad, op, 1, -1, FTTE_ERR_SHAPE);
        bad = good;
        bad.pad_top = 1; /* pooling has no padding */
        expect_status(&bad, op, 1, -1, FTTE_ERR_SHAPE);
        bad = good;
        bad.stride_w = 0;
        expect_status(&bad, op, 1, -1, FTTE_ERR_SHAPE);
        bad = good;
        bad.kernel_h = 0;
        expect_status(&bad, op, 1, -1, FTTE_ERR_SHAPE);
        bad = good;
        bad.in.w = -4;
        expect_status(&bad, op, 1, -1, FTTE_ERR_SHAPE);
        /* Geometry checked before the batch and pointers. */
        bad = good;
        bad.out.w = 5;
        expect_status(&bad, op, 0, 0, FTTE_ERR_SHAPE);
        bad = good;
        bad.op = op == FTTE_OP_MAX_POOL2D ? FTTE_OP_AVG_POOL2D : FTTE_OP_MAX_POOL2D;
        expect_status(&bad, op, 1, -1, FTTE_ERR_UNSUPPORTED); /* valid, but the other pool */
        bad.op = FTTE_OP_DEPTHWISE_CONV2D; /* valid depthwise geometry */
        expect_status(&bad, op, 1, -1, FTTE_ERR_UNSUPPORTED);
        bad.op = 99;
        expect_status(&bad, op, 1, -1, FTTE_ERR_UNSUPPORTED);
    }
}

static void test_global_avg_pool_errors(void) {
    const int32_t op = FTTE_OP_GLOBAL_AVG_POOL;
    ftte_layer good = gap_layer(3, 4, 2), bad;
    expect_status(&good, op, 1, -1, FTTE_OK);
    expect_status(NULL, op, 1, -1, FTTE_ERR_ARG);
    expect_status(&good, op, 0, -1, FTTE_ERR_ARG);
    expect_status(&good, op, -1, -1, FTTE_ERR_ARG);
    expect_status(&good, op, 1, 0, FTTE_ERR_ARG);
    expect_status(&good, op, 1, 1, FTTE_ERR_ARG);
    bad = good;
    bad.out.w = 2;
    expect_status(&bad, op, 1, -1, FTTE_ERR_SHAPE);
    bad = good;
    bad.out.c = 3;
    expect_status(&bad, op, 1, -1, FTTE_ERR_SHAPE);
    bad = good;
    bad.in.h = 0;
    expect_status(&bad, op, 1, -1, FTTE_ERR_SHAPE);
    /* A max pool whose single window covers the whole input: valid, but not this operator. */
    bad = pool_layer(FTTE_OP_MAX_POOL2D, 3, 4, 2, 3, 4, 1, 1);
    expect_status(&bad, op, 1, -1, FTTE_ERR_UNSUPPORTED);
    /* And the other way round: a global pool record given to the windowed kernels. */
    expect_status(&good, FTTE_OP_MAX_POOL2D, 1, -1, FTTE_ERR_UNSUPPORTED);
    expect_status(&good, FTTE_OP_AVG_POOL2D, 1, -1, FTTE_ERR_UNSUPPORTED);
}

static void test_buffer_sizes_are_zero(void) {
    ftte_layer l = pool_layer(FTTE_OP_MAX_POOL2D, 8, 8, 3, 2, 2, 2, 2);
    FTTE_CHECK(ftte_max_pool2d_forward_get_buffer_size(&l, 4) == 0);
    FTTE_CHECK(ftte_max_pool2d_backward_get_buffer_size(&l, 4) == 0);
    l.op = FTTE_OP_AVG_POOL2D;
    FTTE_CHECK(ftte_avg_pool2d_forward_get_buffer_size(&l, 4) == 0);
    FTTE_CHECK(ftte_avg_pool2d_backward_get_buffer_size(&l, 4) == 0);
    l = gap_layer(8, 8, 3);
    FTTE_CHECK(ftte_global_avg_pool_forward_get_buffer_size(&l, 4) == 0);
    FTTE_CHECK(ftte_global_avg_pool_backward_get_buffer_size(&l, 4) == 0);
}

FTTE_TEST_MAIN(test_max_pool_forward_random, test_max_pool_backward_random,
               test_avg_pool_forward_random, test_avg_pool_backward_random,
               test_global_avg_pool_forward_random, test_global_avg_pool_backward_random,
               test_max_pool_known_values, test_max_pool_overlapping_1d,
               test_avg_pool_known_values, test_global_avg_pool_known_values,
               test_adjoint_identity, test_large_feature_map, test_pool_errors,
               test_global_avg_pool_errors, test_buffer_sizes_are_zero)
