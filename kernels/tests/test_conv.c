/*
 * Tests of the conv2d and conv1d kernels against a direct 7-loop reference in double, over
 * random geometries (kernel 1..5, stride 1..3, padding up to 2, windows hanging past the end,
 * inputs smaller than the kernel, channel counts around multiples of 4, batch 1..3, output
 * channel slices), plus finite differences, a hand-computed case and the error statuses.
 */
#include "ftte_kernels.h"
#include "ftte_test.h"
#include "window_cases.h"

/* ---------------------------------------------------------------------------------------- */
/* The two operators share one signature set                                                */
/* ---------------------------------------------------------------------------------------- */

typedef struct {
    int32_t op;
    ftte_status (*forward)(const ftte_layer *, int32_t, ftte_slice, const float *, const float *,
                           const float *, float *, float *);
    int32_t (*forward_size)(const ftte_layer *, int32_t);
    ftte_status (*backward_input)(const ftte_layer *, int32_t, ftte_slice, const float *,
                                  const float *, float *, float *);
    int32_t (*backward_input_size)(const ftte_layer *, int32_t);
    ftte_status (*backward_weight)(const ftte_layer *, int32_t, ftte_slice, const float *,
                                   const float *, float *, float *);
    int32_t (*backward_weight_size)(const ftte_layer *, int32_t);
} conv_api;

static const conv_api conv2d = {FTTE_OP_CONV2D,
                                ftte_conv2d_forward,
                                ftte_conv2d_forward_get_buffer_size,
                                ftte_conv2d_backward_input,
                                ftte_conv2d_backward_input_get_buffer_size,
                                ftte_conv2d_backward_weight,
                                ftte_conv2d_backward_weight_get_buffer_size};
static const conv_api conv1d = {FTTE_OP_CONV1D,
                                ftte_conv1d_forward,
                                ftte_conv1d_forward_get_buffer_size,
                                ftte_conv1d_backward_input,
                                ftte_conv1d_backward_input_get_buffer_size,
                                ftte_conv1d_backward_weight,
                                ftte_conv1d_backward_weight_get_buffer_size};

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* Scratch of exactly `bytes`, poisoned with NaN so that a kernel relying on its contents shows. */
static float *scratch_of(int32_t bytes) {
    float *p = (float *)malloc(bytes > 0 ? (size_t)bytes : 1);
    for (int32_t i = 0; i < bytes / (int32_t)sizeof(float); i++) p[i] = NAN;
    return p;
}

static ftte_layer random_layer(int32_t op) {
    ftte_layer l;
    memset(&l, 0, sizeof l);
    l.op = op;
    if (op == FTTE_OP_CONV1D) {
        l.in.h = l.out.h = l.kernel_h = l.stride_h = 1;
    } else {
        random_axis(&l.in.h, &l.out.h, &l.kernel_h, &l.stride_h, &l.pad_top);
    }
    random_axis(&l.in.w, &l.out.w, &l.kernel_w, &l.stride_w, &l.pad_left);
    l.in.c = rnd(1, 4) == 4 ? rnd(8, 17) : rnd(1, 7);
    l.out.c = rnd(1, 4) == 4 ? rnd(12, 19) : rnd(1, 11);
    return l;
}

static ftte_slice random_slice(int32_t channels) {
    ftte_slice s;
    if (rnd(0, 3) == 0) {
        s.begin = 0;
        s.count = channels;
    } else {
        s.begin = rnd(0, channels - 1);
        s.count = rnd(1, channels - s.begin);
    }
    return s;
}

/* ---------------------------------------------------------------------------------------- */
/* Reference: direct loops with bounds checks, in double                                     */
/* ---------------------------------------------------------------------------------------- */

static int32_t row_len(const ftte_layer *l) { return l->kernel_h * l->kernel_w * l->in.c; }

/* The scratch each kernel documents (direction 0 forward, 1 backward_input, 2 backward_weight):
 * four zero-padded input windows for the forward; four grad_output windows for the stride-1
 * backward to the input (none at other strides, which go tap by tap); none for the weights. */
static int32_t scratch_floats(const ftte_layer *l, int direction) {
    if (direction == 0) return 4 * row_len(l);
    if (direction == 1 && l->stride_h == 1 && l->stride_w == 1)
        return 4 * l->kernel_h * l->kernel_w * l->out.c;
    return 0;
}

/* Input element (b, y, x, c), zero outside the input. */
static double in_at(const ftte_layer *l, const float *input, int32_t b, int32_t y, int32_t x,
                    int32_t c) {
    if (y < 0 || y >= l->in.h || x < 0 || x >= l->in.w) return 0.0;
    return input[((b * l->in.h + y) * l->in.w + x) * l->in.c + c];
}

/* Weight (ky, kx, c) of the slice's row o. */
static double w_at(const ftte_layer *l, const float *weights, int32_t o, int32_t ky, int32_t kx,
                   int32_t c) {
    return weights[o * row_len(l) + (ky * l->kernel_w + kx) * l->in.c + c];
}

/* want = output with the slice's channels replaced by the convolution. */
static void ref_forward(const ftte_layer *l, int32_t n, ftte_slice s, const float *input,
                        const float *weights, const float *bias, const float *output,
                        double *want) {
    for (int32_t i = 0; i < n * ftte_shape_size(l->out); i++) want[i] = output[i];
    for (int32_t b = 0; b < n; b++)
        for (int32_t oy = 0; oy < l->out.h; oy++)
            for (int32_t ox = 0; ox < l->out.w; ox++)
                for (int32_t o = 0; o < s.count; o++) {
                    double sum = bias ? (double)bias[o] : 0.0;
                    for (int32_t ky = 0; ky < l->kernel_h; ky++)
                        for (int32_t kx = 0; kx < l->kernel_w; kx++)
                            for (int32_t c = 0; c < l->in.c; c++)
                                sum += in_at(l, input, b, oy * l->stride_h - l->pad_top + ky,
                                             ox * l->stride_w - l->pad_left + kx, c) *
                                       w_at(l, weights, o, ky, kx, c);
                    want[((b * l->out.h + oy) * l->out.w + ox) * l->out.c + s.begin + o] = sum;
                }
}

/* want = grad_input + the transposed convolution of the slice's channels. */
static void ref_backward_input(const ftte_layer *l, int32_t n, ftte_slice s,
                               const float *grad_output, const float *weights,
                               const float *grad_input, double *want) {
    for (int32_t i = 0; i < n * ftte_shape_size(l->in); i++) want[i] = grad_input[i];
    for (int32_t b = 0; b < n; b++)
        for (int32_t oy = 0; oy < l->out.h; oy++)
            for (int32_t ox = 0; ox < l->out.w; ox++)
                for (int32_t o = 0; o < s.count; o++) {
                    double g = grad_output[((b * l->out.h + oy) * l->out.w + ox) * l->out.c +
                                           s.begin + o];
                    for (int32_t ky = 0; ky < l->kernel_h; ky++)
                        for (int32_t kx = 0; kx < l->kernel_w; kx++)
                            for (int32_t c = 0; c < l->in.c; c++) {
                                int32_t y = oy * l->stride_h - l->pad_top + ky;
                                int32_t x = ox * l->stride_w - l->pad_left + kx;
                                if (y < 0 || y >= l->in.h || x < 0 || x >= l->in.w) continue;
                                want[((b * l->in.h + y) * l->in.w + x) * l->in.c + c] +=
                                    g * w_at(l, weights, o, ky, kx, c);
                            }
                }
}

/* want = grad_weights + sum over batch and positions of grad_output * input patch. */
static void ref_backward_weight(const ftte_layer *l, int32_t n, ftte_slice s,
                                const float *input, const float *grad_output,
                                const float *grad_weights, double *want) {
    const int32_t len = row_len(l);
    for (int32_t i = 0; i < s.count * len; i++) want[i] = grad_weights[i];
    for (int32_t b = 0; b < n; b++)
        for (int32_t oy = 0; oy < l->out.h; oy++)
            for (int32_t ox = 0; ox < l->out.w; ox++)
                for (int32_t o = 0; o < s.count; o++) {
                    double g = grad_output[((b * l->out.h + oy) * l->out.w + ox) * l->out.c +
                                           s.begin + o];
                    for (int32_t ky = 0; ky < l->kernel_h; ky++)
                        for (int32_t kx = 0; kx < l->kernel_w; kx++)
                            for (int32_t c = 0; c < l->in.c; c++)
                                want[o * len + (ky * l->kernel_w + kx) * l->in.c + c] +=
                                    g * in_at(l, input, b, oy * l->stride_h - l->pad_top + ky,
                                              ox * l->stride_w - l->pad_left + kx, c);
                }
}

/* ---------------------------------------------------------------------------------------- */
/* Random cases against the reference                                                        */
/* ---------------------------------------------------------------------------------------- */

/* Runs the three kernels on one layer, n and slice, and compares with the reference. */
static void check_case(const conv_api *api, const ftte_layer *l, int32_t n, ftte_slice s,
                       int with_bias) {
    char desc[256];
    describe(desc, sizeof desc, l, n, s);
    const int32_t len = row_len(l);
    const int32_t in_count = n * ftte_shape_size(l->in), out_count = n * ftte_shape_size(l->out);
    float *input = ftte_test_random_buffer(in_count);
    float *weights = ftte_test_random_buffer(s.count * len); /* the slice's rows only */
    float *bias = with_bias ? ftte_test_random_buffer(s.count) : NULL;
    float *output = filled(out_count, 1234.5f); /* channels outside the slice must stay */
    float *grad_output = ftte_test_random_buffer(out_count);
    float *grad_input = ftte_test_random_buffer(in_count);   /* accumulated into */
    float *grad_weights = ftte_test_random_buffer(s.count * len);
    double *want = (double *)malloc(sizeof(double) *
                                    (size_t)(in_count > out_count ? in_count : out_count) +
                                    sizeof(double) * (size_t)(s.count * len));

    int32_t bytes = api->forward_size(l, n);
    FTTE_CHECK(bytes == scratch_floats(l, 0) * (int32_t)sizeof(float));
    float *scratch = scratch_of(bytes);
    FTTE_CHECK(api->forward(l, n, s, input, weights, bias, output, scratch) == FTTE_OK);
    ref_forward(l, n, s, input, weights, bias, output, want);
    /* ref_forward copies `output` as the base: compare untouched channels against 1234.5. */
    for (int32_t i = 0; i < out_count; i++) {
        int32_t c = i % l->out.c;
        if (c < s.begin || c >= s.begin + s.count) want[i] = 1234.5;
    }
    check_array(output, want, out_count, 1e-5, "forward", desc);
    free(scratch);

    bytes = api->backward_input_size(l, n);
    FTTE_CHECK(bytes == scratch_floats(l, 1) * (int32_t)sizeof(float));
    scratch = scratch_of(bytes);
    ref_backward_input(l, n, s, grad_output, weights, grad_input, want);
    FTTE_CHECK(api->backward_input(l, n, s, grad_output, weights, grad_input, scratch) ==
               FTTE_OK);
    check_array(grad_input, want, in_count, 1e-5, "backward_input", desc);
    free(scratch);

    bytes = api->backward_weight_size(l, n);
    FTTE_CHECK(bytes == scratch_floats(l, 2) * (int32_t)sizeof(float));
    scratch = scratch_of(bytes);
    ref_backward_weight(l, n, s, input, grad_output, grad_weights, want);
    FTTE_CHECK(api->backward_weight(l, n, s, input, grad_output, grad_weights, scratch) ==
               FTTE_OK);
    check_array(grad_weights, want, s.count * len, 1e-5, "backward_weight", desc);
    free(scratch);

    free(input); free(weights); free(bias); free(output); free(grad_output);
    free(grad_input); free(grad_weights); free(want);
}

static void random_cases(const conv_api *api, int32_t cases) {
    for (int32_t i = 0; i < cases; i++) {
        ftte_layer l = random_layer(api->op);
        FTTE_CHECK(ftte_layer_validate(&l) == FTTE_OK);
        check_case(api, &l, rnd(1, 3), random_slice(l.out.c), rnd(0, 3) != 0);
    }
}

static void test_conv2d_random(void) { random_cases(&conv2d, 400); }
static void test_conv1d_random(void) { random_cases(&conv1d, 200); }

/* Every slice of one layer, including each single channel and each 4-block boundary. */
static void test_conv2d_all_slices(void) {
    ftte_layer l;
    memset(&l, 0, sizeof l);
    l.op = FTTE_OP_CONV2D;
    l.in = (ftte_shape){5, 6, 3};
    l.out = (ftte_shape){3, 3, 9};
    l.kernel_h = l.kernel_w = 3;
    l.stride_h = l.stride_w = 2;
    l.pad_top = l.pad_left = 1;
    for (int32_t begin = 0; begin < l.out.c; begin++)
        for (int32_t count = 1; begin + count <= l.out.c; count++)
            check_case(&conv2d, &l, 2, (ftte_slice){begin, count}, (begin + count) % 2);
}

/* A few larger layers, where blocks of 4 positions and channels repeat many times. */
static void test_conv2d_larger(void) {
    static const int32_t shapes[][8] = {
        /* in.h in.w in.c out.c kernel stride pad n */
        {12, 12, 16, 24, 3, 1, 1, 2}, {15, 11, 8, 13, 5, 2, 2, 1}, {8, 8, 32, 6, 1, 1, 0, 3}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int32_t *g = shapes[i];
        ftte_layer l;
        memset(&l, 0, sizeof l);
        l.op = FTTE_OP_CONV2D;
        l.in = (ftte_shape){g[0], g[1], g[2]};
        l.kernel_h = l.kernel_w = g[4];
        l.stride_h = l.stride_w = g[5];
        l.pad_top = l.pad_left = g[6];
        l.out = (ftte_shape){(g[0] + 2 * g[6] - g[4]) / g[5] + 1,
                             (g[1] + 2 * g[6] - g[4]) / g[5] + 1, g[3]};
        FTTE_CHECK(ftte_layer_validate(&l) == FTTE_OK);
        check_case(&conv2d, &l, g[7], (ftte_slice){0, l.out.c}, 1);
        check_case(&conv2d, &l, g[7], (ftte_slice){1, l.out.c - 2}, 1);
    }
}

/* Long rows at stride 1, where the kernels go a run of 4-position passes at a time along an
 * output row (windows in place) between the edges (windows copied): the forward's 6- and
 * 4-channel tiles, the backward's gather of grad_output windows two taps at a time
 * (adjacent windows) and one at a time, for every input channel count mod 4, and the weight
 * gradient's 4x4, 8xN and 1xN tiles. Also stride 2 along x with stride 1 along y. */
static void test_conv_long_rows(void) {
    for (int32_t t = 0; t < 150; t++) {
        const conv_api *api = rnd(0, 1) ? &conv1d : &conv2d;
        ftte_layer l;
        memset(&l, 0, sizeof l);
        l.op = api->op;
        l.kernel_w = rnd(1, 5);
        l.stride_w = rnd(0, 5) ? 1 : 2;
        l.pad_left = rnd(0, l.kernel_w - 1 < 2 ? l.kernel_w - 1 : 2);
        l.in.w = rnd(8, 40);
        if (api->op == FTTE_OP_CONV1D) {
            l.in.h = l.out.h = l.kernel_h = l.stride_h = 1;
        } else {
            l.kernel_h = rnd(1, 3);
            l.stride_h = 1;
            l.pad_top = rnd(0, l.kernel_h - 1);
            l.in.h = rnd(1, 6);
            l.out.h = l.in.h + 2 * l.pad_top - l.kernel_h + 1;
            if (l.out.h < 1) l.out.h = 1;
        }
        l.out.w = (l.in.w + 2 * l.pad_left - l.kernel_w) / l.stride_w + 1;
        l.in.c = rnd(1, 9);
        l.out.c = rnd(1, 4) == 4 ? rnd(12, 20) : rnd(1, 11);
        if (ftte_layer_validate(&l) != FTTE_OK) continue;
        check_case(api, &l, rnd(1, 2), random_slice(l.out.c), rnd(0, 3) != 0);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Hand-computed case, conv1d == conv2d, finite differences                                  */
/* ---------------------------------------------------------------------------------------- */

/* 3x3 input 1..9, 2x2 kernel {1, 2; 3, 4}, stride 2, padding 1: the four windows take 1, 2,
 * 2 and 4 taps of the input. */
static void test_conv2d_by_hand(void) {
    ftte_layer l;
    memset(&l, 0, sizeof l);
    l.op = FTTE_OP_CONV2D;
    l.in = (ftte_shape){3, 3, 1};
    l.out = (ftte_shape){2, 2, 1};
    l.kernel_h = l.kernel_w = 2;
    l.stride_h = l.stride_w = 2;
    l.pad_top = l.pad_left = 1;
    const float input[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, weights[4] = {1, 2, 3, 4}, bias = 0.5f;
    float output[4], *scratch = scratch_of(ftte_conv2d_forward_get_buffer_size(&l, 1));
    FTTE_CHECK(ftte_conv2d_forward(&l, 1, (ftte_slice){0, 1}, input, weights, &bias, output,
                                   scratch) == FTTE_OK);
    FTTE_CHECK_CLOSE(output[0], 4.5f, 1e-6f);  /* 4*1 */
    FTTE_CHECK_CLOSE(output[1], 18.5f, 1e-6f); /* 3*2 + 4*3 */
    FTTE_CHECK_CLOSE(output[2], 36.5f, 1e-6f); /* 2*4 + 4*7 */
    FTTE_CHECK_CLOSE(output[3], 77.5f, 1e-6f); /* 1*5 + 2*6 + 3*8 + 4*9 */

    /* grad_output all ones: each input gets the sum of the weights it met. */
    const float ones[4] = {1, 1, 1, 1};
    float grad_input[9] = {0}, grad_weights[4] = {0};
    FTTE_CHECK(ftte_conv2d_backward_input(&l, 1, (ftte_slice){0, 1}, ones, weights, grad_input,
                                          scratch) == FTTE_OK);
    const float want_gi[9] = {4, 3, 4, 2, 1, 2, 4, 3, 4};
    for (int i = 0; i < 9; i++) FTTE_CHECK_CLOSE(grad_input[i], want_gi[i], 1e-6f);
    FTTE_CHECK(ftte_conv2d_backward_weight(&l, 1, (ftte_slice){0, 1}, input, ones, grad_weights,
                                           scratch) == FTTE_OK);
    const float want_gw[4] = {5, 4 + 6, 2 + 8, 1 + 3 + 7 + 9};
    for (int i = 0; i < 4; i++) FTTE_CHECK_CLOSE(grad_weights[i], want_gw[i], 1e-6f);
    free(scratch);
}

/* A conv1d layer and the same layer run as a conv2d give identical bits. */
static void test_conv1d_matches_conv2d(void) {
    for (int32_t i = 0; i < 50; i++) {
        ftte_layer l1 = random_layer(FTTE_OP_CONV1D), l2 = l1;
        l2.op = FTTE_OP_CONV2D;
        const int32_t n = rnd(1, 3), out_count = n * ftte_shape_size(l1.out);
        ftte_slice s = random_slice(l1.out.c);
        float *input = ftte_test_random_buffer(n * ftte_shape_size(l1.in));
        float *weights = ftte_test_random_buffer(s.count * row_len(&l1));
        float *bias = ftte_test_random_buffer(s.count);
        float *out1 = filled(out_count, 0.0f), *out2 = filled(out_count, 0.0f);
        FTTE_CHECK(ftte_conv1d_forward_get_buffer_size(&l1, n) ==
                   ftte_conv2d_forward_get_buffer_size(&l2, n));
        float *scratch = scratch_of(ftte_conv1d_forward_get_buffer_size(&l1, n));
        FTTE_CHECK(ftte_conv1d_forward(&l1, n, s, input, weights, bias, out1, scratch) == FTTE_OK);
        FTTE_CHECK(ftte_conv2d_forward(&l2, n, s, input, weights, bias, out2, scratch) == FTTE_OK);
        FTTE_CHECK(memcmp(out1, out2, (size_t)out_count * sizeof(float)) == 0);
        free(input); free(weights); free(bias); free(out1); free(out2); free(scratch);
    }
}

/* loss = sum over the slice's outputs of r * output, in double. */
static double loss_of(const conv_api *api, const ftte_layer *l, int32_t n, ftte_slice s,
                      const float *input, const float *weights, const float *r, float *output,
                      float *scratch) {
    FTTE_CHECK(api->forward(l, n, s, input, weights, NULL, output, scratch) == FTTE_OK);
    double loss = 0.0;
    for (int32_t i = 0; i < n * ftte_shape_size(l->out); i++) {
        int32_t c = i % l->out.c;
        if (c >= s.begin && c < s.begin + s.count) loss += (double)r[i] * (double)output[i];
    }
    return loss;
}

/* Central differences of loss_of against both backward kernels, at random elements. */
static void finite_differences(const conv_api *api, int32_t cases) {
    const float h = 0.25f; /* the loss is linear: a large step only lowers rounding noise */
    for (int32_t t = 0; t < cases; t++) {
        ftte_layer l = random_layer(api->op);
        const int32_t n = rnd(1, 2), len = row_len(&l);
        const int32_t in_count = n * ftte_shape_size(l.in), out_count = n * ftte_shape_size(l.out);
        ftte_slice s = random_slice(l.out.c);
        float *input = ftte_test_random_buffer(in_count);
        float *weights = ftte_test_random_buffer(s.count * len);
        float *r = ftte_test_random_buffer(out_count);
        float *output = filled(out_count, 0.0f);
        float *grad_input = filled(in_count, 0.0f), *grad_weights = filled(s.count * len, 0.0f);
        /* One scratch for all three kernels: the largest of their sizes. */
        int32_t bytes = api->forward_size(&l, n);
        if (api->backward_input_size(&l, n) > bytes) bytes = api->backward_input_size(&l, n);
        float *scratch = scratch_of(bytes);
        FTTE_CHECK(api->backward_input(&l, n, s, r, weights, grad_input, scratch) == FTTE_OK);
        FTTE_CHECK(api->backward_weight(&l, n, s, input, r, grad_weights, scratch) == FTTE_OK);
        for (int32_t k = 0; k < 3; k++) {
            float *params[2] = {input, weights};
            const float *grads[2] = {grad_input, grad_weights};
            const int32_t counts[2] = {in_count, s.count * len};
            for (int32_t which = 0; which < 2; which++) {
                int32_t i = rnd(0, counts[which] - 1);
                float saved = params[which][i];
                params[which][i] = saved + h;
                double up = loss_of(api, &l, n, s, input, weights, r, output, scratch);
                params[which][i] = saved - h;
                double down = loss_of(api, &l, n, s, input, weights, r, output, scratch);
                params[which][i] = saved;
                FTTE_CHECK_CLOSE(grads[which][i], (up - down) / (2.0 * (double)h), 1e-3);
            }
        }
        free(input); free(weights); free(r); free(output); free(grad_input);
        free(grad_weights); free(scratch);
    }
}

static void test_conv2d_finite_differences(void) { finite_differences(&conv2d, 40); }
static void test_conv1d_finite_differences(void) { finite_differences(&conv1d, 20); }

/* ---------------------------------------------------------------------------------------- */
/* Errors: each returns its status and leaves every buffer as it was                         */
/* ---------------------------------------------------------------------------------------- */

typedef struct {
    float *input, *weights, *bias, *output, *grad_output, *grad_input, *grad_weights, *scratch;
    int32_t counts[8];
    float *saved[8];
} buffers;

/* Big enough for every variant of the base layer used below. */
static void buffers_alloc(buffers *b) {
    float **all[8] = {&b->input, &b->weights, &b->bias, &b->output, &b->grad_output,
                      &b->grad_input, &b->grad_weights, &b->scratch};
    for (int i = 0; i < 8; i++) {
        b->counts[i] = 4096;
        *all[i] = ftte_test_random_buffer(b->counts[i]);
        b->saved[i] = copy_of(*all[i], b->counts[i]);
    }
}

static int buffers_unchanged(const buffers *b) {
    const float *all[8] = {b->input, b->weights, b->bias, b->output, b->grad_output,
                           b->grad_input, b->grad_weights, b->scratch};
    for (int i = 0; i < 8; i++)
        if (memcmp(all[i], b->saved[i], (size_t)b->counts[i] * sizeof(float)) != 0) return 0;
    return 1;
}

static void buffers_free(buffers *b) {
    float *all[8] = {b->input, b->weights, b->bias, b->output, b->grad_output,
                     b->grad_input, b->grad_weights, b->scratch};
    for (int i = 0; i < 8; i++) {
        free(all[i]);
        free(b->saved[i]);
    }
}

/* Calls the three kernels with these arguments and expects `want` from each, buffers intact. */
static void expect(const conv_api *api, const ftte_layer *l, int32_t n, ftte_slice s,
                   ftte_status want, int line) {
    buffers b;
    buffers_alloc(&b);
    const ftte_status got[3] = {
        api->forward(l, n, s, b.input, b.weights, b.bias, b.output, b.scratch),
        api->backward_input(l, n, s, b.grad_output, b.weights, b.grad_input, b.scratch),
        api->backward_weight(l, n, s, b.input, b.grad_output, b.grad_weights, b.scratch)};
    for (int k = 0; k < 3; k++) {
        if (got[k] != want) {
            printf("  line %d: kernel %d returned %d, want %d\n", line, k, (int)got[k], (int)want);
            FTTE_CHECK(got[k] == want);
        }
    }
    if (!buffers_unchanged(&b)) {
        printf("  line %d: a buffer changed\n", line);
        FTTE_CHECK(buffers_unchanged(&b));
    }
    buffers_free(&b);
}

#define EXPECT(api, l, n, s, want) expect(api, l, n, s, want, __LINE__)

static ftte_layer base_layer(int32_t op) {
    ftte_layer l;
    memset(&l, 0, sizeof l);
    l.op = op;
    l.in = (ftte_shape){op == FTTE_OP_CONV1D ? 1 : 5, 7, 3};
    l.out = (ftte_shape){op == FTTE_OP_CONV1D ? 1 : 5, 7, 6};
    l.kernel_h = op == FTTE_OP_CONV1D ? 1 : 3;
    l.kernel_w = 3;
    l.stride_h = l.stride_w = 1;
    l.pad_top = op == FTTE_OP_CONV1D ? 0 : 1;
    l.pad_left = 1;
    return l;
}

static void errors(const conv_api *api) {
    const ftte_layer good = base_layer(api->op);
    const ftte_slice all = {0, 6};
    ftte_layer l;

    /* The base case is valid (these buffers are large enough for every variant below). */
    {
        buffers b;
        buffers_alloc(&b);
        FTTE_CHECK(api->forward(&good, 2, all, b.input, b.weights, b.bias, b.output, b.scratch) ==
                   FTTE_OK);
        FTTE_CHECK(api->backward_input(&good, 2, all, b.grad_output, b.weights, b.grad_input,
                                       b.scratch) == FTTE_OK);
        FTTE_CHECK(api->backward_weight(&good, 2, all, b.input, b.grad_output, b.grad_weights,
                                        b.scratch) == FTTE_OK);
        buffers_free(&b);
    }

    EXPECT(api, NULL, 2, all, FTTE_ERR_ARG);
    l = good; l.op = FTTE_OP_DENSE;
    EXPECT(api, &l, 2, all, FTTE_ERR_UNSUPPORTED);
    l = good; l.op = FTTE_OP_DEPTHWISE_CONV2D;
    EXPECT(api, &l, 2, all, FTTE_ERR_UNSUPPORTED);
    l = good; l.op = api->op == FTTE_OP_CONV2D ? FTTE_OP_CONV1D : FTTE_OP_CONV2D;
    EXPECT(api, &l, 2, all, FTTE_ERR_UNSUPPORTED);

    EXPECT(api, &good, 0, all, FTTE_ERR_ARG);
    EXPECT(api, &good, -1, all, FTTE_ERR_ARG);
    EXPECT(api, &good, 2, ((ftte_slice){-1, 2}), FTTE_ERR_ARG);
    EXPECT(api, &good, 2, ((ftte_slice){0, 0}), FTTE_ERR_ARG);
    EXPECT(api, &good, 2, ((ftte_slice){2, -1}), FTTE_ERR_ARG);
    EXPECT(api, &good, 2, ((ftte_slice){6, 1}), FTTE_ERR_ARG);
    EXPECT(api, &good, 2, ((ftte_slice){3, 4}), FTTE_ERR_ARG);
    EXPECT(api, &good, 2, ((ftte_slice){1, INT32_MAX}), FTTE_ERR_ARG);

    /* Each required pointer NULL in turn; bias may be NULL. */
    {
        buffers b;
        buffers_alloc(&b);
        float *const in = b.input, *const w = b.weights, *const out = b.output;
        float *const go = b.grad_output, *const gi = b.grad_input, *const gw = b.grad_weights;
        float *const sc = b.scratch;
        FTTE_CHECK(api->forward(&good, 2, all, NULL, w, b.bias, out, sc) == FTTE_ERR_ARG);
        FTTE_CHECK(api->forward(&good, 2, all, in, NULL, b.bias, out, sc) == FTTE_ERR_ARG);
        FTTE_CHECK(api->forward(&good, 2, all, in, w, b.bias, NULL, sc) == FTTE_ERR_ARG);
        FTTE_CHECK(api->forward(&good, 2, all, in, w, b.bias, out, NULL) == FTTE_ERR_ARG);
        FTTE_CHECK(api->backward_input(&good, 2, all, NULL, w, gi, sc) == FTTE_ERR_ARG);
        FTTE_CHECK(api->backward_input(&good, 2, all, go, NULL, gi, sc) == FTTE_ERR_ARG);
        FTTE_CHECK(api->backward_input(&good, 2, all, go, w, NULL, sc) == FTTE_ERR_ARG);
        FTTE_CHECK(api->backward_input(&good, 2, all, go, w, gi, NULL) == FTTE_ERR_ARG);
        FTTE_CHECK(api->backward_weight(&good, 2, all, NULL, go, gw, sc) == FTTE_ERR_ARG);
        FTTE_CHECK(api->backward_weight(&good, 2, all, in, NULL, gw, sc) == FTTE_ERR_ARG);
        FTTE_CHECK(api->backward_weight(&good, 2, all, in, go, NULL, sc) == FTTE_ERR_ARG);
        FTTE_CHECK(api->backward_weight(&good, 2, all, in, go, gw, NULL) == FTTE_ERR_ARG);
        FTTE_CHECK(buffers_unchanged(&b));
        FTTE_CHECK(api->forward(&good, 2, all, in, w, NULL, out, sc) == FTTE_OK);
        buffers_free(&b);
    }

    /* Inconsistent geometry. */
    l = good; l.out.w = 10; /* last window starts past the input */
    EXPECT(api, &l, 2, all, FTTE_ERR_SHAPE);
    l = good; l.pad_left = 3; /* padding as wide as the kernel */
    EXPECT(api, &l, 2, all, FTTE_ERR_SHAPE);
    l = good; l.stride_w = 0;
    EXPECT(api, &l, 2, all, FTTE_ERR_SHAPE);
    l = good; l.kernel_w = 0;
    EXPECT(api, &l, 2, all, FTTE_ERR_SHAPE);
    l = good; l.in.c = 0;
    EXPECT(api, &l, 2, all, FTTE_ERR_SHAPE);
    l = good; l.out.c = -6;
    EXPECT(api, &l, 2, all, FTTE_ERR_SHAPE);
    l = good; l.pad_left = -1;
    EXPECT(api, &l, 2, all, FTTE_ERR_SHAPE);
    if (api->op == FTTE_OP_CONV1D) {
        l = good; l.in.h = 2;
        EXPECT(api, &l, 2, all, FTTE_ERR_SHAPE);
        l = good; l.kernel_h = 2; l.in.h = 2;
        EXPECT(api, &l, 2, all, FTTE_ERR_SHAPE);
        l = good; l.stride_h = 2;
        EXPECT(api, &l, 2, all, FTTE_ERR_SHAPE);
    } else {
        l = good; l.out.h = 7; /* 6 is valid: its last window hangs 2 rows past the end */
        EXPECT(api, &l, 2, all, FTTE_ERR_SHAPE);
    }
    /* A kernel whose patches would not fit the int32 scratch size: valid geometry otherwise. */
    l = good; l.in.w = 1; l.out.w = 1; l.pad_left = 0; l.kernel_w = 200000000;
    FTTE_CHECK(ftte_layer_validate(&l) == FTTE_OK);
    EXPECT(api, &l, 2, all, FTTE_ERR_SHAPE);
    FTTE_CHECK(api->forward_size(&l, 2) == 0);
    l = good; l.in.c = 1 << 26; l.in.w = 1; l.out.w = 1;
    FTTE_CHECK(ftte_layer_validate(&l) == FTTE_OK);
    EXPECT(api, &l, 1, all, FTTE_ERR_SHAPE); /* n = 2 would not be addressable on 32 bits */
    FTTE_CHECK(api->backward_input_size(&l, 2) == 0);

    /* Buffer sizes: a fixed number of windows whatever the batch, 0 for a layer the kernels
     * refuse. */
    FTTE_CHECK(api->forward_size(&good, 1) == api->forward_size(&good, 3));
    FTTE_CHECK(api->backward_input_size(&good, 1) == api->backward_input_size(&good, 3));
    FTTE_CHECK(api->forward_size(&good, 1) == 4 * row_len(&good) * (int32_t)sizeof(float));
    FTTE_CHECK(api->backward_input_size(&good, 1) ==
               4 * good.kernel_h * good.kernel_w * good.out.c * (int32_t)sizeof(float));
    FTTE_CHECK(api->backward_weight_size(&good, 1) == 0);
    l = good; l.stride_w = 2; l.out.w = 4; /* other strides go tap by tap: no windows */
    FTTE_CHECK(ftte_layer_validate(&l) == FTTE_OK);
    FTTE_CHECK(api->backward_input_size(&l, 1) == 0);
    FTTE_CHECK(api->forward_size(NULL, 1) == 0);
    l = good; l.op = FTTE_OP_DENSE;
    FTTE_CHECK(api->backward_weight_size(&l, 1) == 0);
}

static void test_conv2d_errors(void) { errors(&conv2d); }
static void test_conv1d_errors(void) { errors(&conv1d); }

FTTE_TEST_MAIN(test_conv2d_by_hand, test_conv2d_random, test_conv2d_all_slices,
               test_conv2d_larger, test_conv_long_rows, test_conv1d_random,
               test_conv1d_matches_conv2d,
               test_conv2d_finite_differences, test_conv1d_finite_differences,
               test_conv2d_errors, test_conv1d_errors)
