/*
 * Tests of the depthwise conv2d kernels against a direct reference in double, over random
 * geometries (kernel 1..5, stride 1..3, padding up to 2, windows hanging past the end, inputs
 * smaller than the kernel, channel counts around multiples of 4, batch 1..3, channel slices),
 * plus finite differences, a hand-computed case and the error statuses.
 */
#include "ftte_kernels.h"
#include "ftte_test.h"
#include "window_cases.h"

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static ftte_layer random_layer(void) {
    ftte_layer l;
    memset(&l, 0, sizeof l);
    l.op = FTTE_OP_DEPTHWISE_CONV2D;
    random_axis(&l.in.h, &l.out.h, &l.kernel_h, &l.stride_h, &l.pad_top);
    random_axis(&l.in.w, &l.out.w, &l.kernel_w, &l.stride_w, &l.pad_left);
    l.in.c = l.out.c = rnd(1, 4) == 4 ? rnd(12, 19) : rnd(1, 11);
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

static int32_t taps_of(const ftte_layer *l) { return l->kernel_h * l->kernel_w; }

/* Input element (b, y, x, c), zero outside the input. */
static double in_at(const ftte_layer *l, const float *input, int32_t b, int32_t y, int32_t x,
                    int32_t c) {
    if (y < 0 || y >= l->in.h || x < 0 || x >= l->in.w) return 0.0;
    return input[((b * l->in.h + y) * l->in.w + x) * l->in.c + c];
}

/* Calls f(b, oy, ox, j, ky, kx) for every term of the slice's depthwise convolution. */
#define FOR_EACH_TERM(l, n, s)                                                                 \
    for (int32_t b = 0; b < (n); b++)                                                          \
        for (int32_t oy = 0; oy < (l)->out.h; oy++)                                            \
            for (int32_t ox = 0; ox < (l)->out.w; ox++)                                        \
                for (int32_t j = 0; j < (s).count; j++)                                        \
                    for (int32_t ky = 0; ky < (l)->kernel_h; ky++)                             \
                        for (int32_t kx = 0; kx < (l)->kernel_w; kx++)

#define IY (oy * l->stride_h - l->pad_top + ky)
#define IX (ox * l->stride_w - l->pad_left + kx)
#define OUT_AT (((b * l->out.h + oy) * l->out.w + ox) * l->out.c + s.begin + j)
#define W_AT (j * taps_of(l) + ky * l->kernel_w + kx)

/* want = output with the slice's channels replaced by the convolution. */
static void ref_forward(const ftte_layer *l, int32_t n, ftte_slice s, const float *input,
                        const float *weights, const float *bias, const float *output,
                        double *want) {
    for (int32_t i = 0; i < n * ftte_shape_size(l->out); i++) want[i] = output[i];
    for (int32_t b = 0; b < n; b++)
        for (int32_t oy = 0; oy < l->out.h; oy++)
            for (int32_t ox = 0; ox < l->out.w; ox++)
                for (int32_t j = 0; j < s.count; j++) want[OUT_AT] = bias ? (double)bias[j] : 0.0;
    FOR_EACH_TERM(l, n, s) {
        want[OUT_AT] += in_at(l, input, b, IY, IX, s.begin + j) * (double)weights[W_AT];
    }
}

/* want = grad_input + the slice channels' transposed convolution. */
static void ref_backward_input(const ftte_layer *l, int32_t n, ftte_slice s,
                               const float *grad_output, const float *weights,
                               const float *grad_input, double *want) {
    for (int32_t i = 0; i < n * ftte_shape_size(l->in); i++) want[i] = grad_input[i];
    FOR_EACH_TERM(l, n, s) {
        if (IY < 0 || IY >= l->in.h || IX < 0 || IX >= l->in.w) continue;
        want[((b * l->in.h + IY) * l->in.w + IX) * l->in.c + s.begin + j] +=
            (double)grad_output[OUT_AT] * (double)weights[W_AT];
    }
}

/* want = grad_weights + sum over batch and positions of grad_output * input under the tap. */
static void ref_backward_weight(const ftte_layer *l, int32_t n, ftte_slice s,
                                const float *input, const float *grad_output,
                                const float *grad_weights, double *want) {
    for (int32_t i = 0; i < s.count * taps_of(l); i++) want[i] = grad_weights[i];
    FOR_EACH_TERM(l, n, s) {
        want[W_AT] += (double)grad_output[OUT_AT] * in_at(l, input, b, IY, IX, s.begin + j);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Random cases against the reference                                                        */
/* ---------------------------------------------------------------------------------------- */

/* Runs the three kernels on one layer, n and slice, and compares with the reference. */
static void check_case(const ftte_layer *l, int32_t n, ftte_slice s, int with_bias) {
    char desc[256];
    describe(desc, sizeof desc, l, n, s);
    const int32_t k = taps_of(l);
    const int32_t in_count = n * ftte_shape_size(l->in), out_count = n * ftte_shape_size(l->out);
    float *input = ftte_test_random_buffer(in_count);
    float *weights = ftte_test_random_buffer(s.count * k); /* the slice's rows only */
    float *bias = with_bias ? ftte_test_random_buffer(s.count) : NULL;
    float *output = filled(out_count, 1234.5f); /* channels outside the slice must stay */
    float *grad_output = ftte_test_random_buffer(out_count);
    float *grad_input = ftte_test_random_buffer(in_count); /* accumulated into */
    float *grad_weights = ftte_test_random_buffer(s.count * k);
    const int32_t most = in_count > out_count ? in_count : out_count;
    double *want = (double *)malloc(sizeof(double) * (size_t)(most + s.count * k));

    FTTE_CHECK(ftte_depthwise_conv2d_forward_get_buffer_size(l, n) == 0);
    FTTE_CHECK(ftte_depthwise_conv2d_backward_input_get_buffer_size(l, n) == 0);
    FTTE_CHECK(ftte_depthwise_conv2d_backward_weight_get_buffer_size(l, n) == 0);

    FTTE_CHECK(ftte_depthwise_conv2d_forward(l, n, s, input, weights, bias, output) == FTTE_OK);
    ref_forward(l, n, s, input, weights, bias, output, want);
    check_array(output, want, out_count, 1e-5, "forward", desc);

    /* grad_input changes only in the slice's channels (ref starts from its old values). */
    ref_backward_input(l, n, s, grad_output, weights, grad_input, want);
    FTTE_CHECK(ftte_depthwise_conv2d_backward_input(l, n, s, grad_output, weights, grad_input) ==
               FTTE_OK);
    check_array(grad_input, want, in_count, 1e-5, "backward_input", desc);

    ref_backward_weight(l, n, s, input, grad_output, grad_weights, want);
    FTTE_CHECK(ftte_depthwise_conv2d_backward_weight(l, n, s, input, grad_output,
                                                     grad_weights) == FTTE_OK);
    check_array(grad_weights, want, s.count * k, 1e-5, "backward_weight", desc);

    free(input); free(weights); free(bias); free(output); free(grad_output);
    free(grad_input); free(grad_weights); free(want);
}

static void test_depthwise_random(void) {
    for (int32_t i = 0; i < 600; i++) {
        ftte_layer l = random_layer();
        FTTE_CHECK(ftte_layer_validate(&l) == FTTE_OK);
        check_case(&l, rnd(1, 3), random_slice(l.out.c), rnd(0, 3) != 0);
    }
}

/* Every slice of one layer, including each single channel and each 4-block boundary. */
static void test_depthwise_all_slices(void) {
    ftte_layer l;
    memset(&l, 0, sizeof l);
    l.op = FTTE_OP_DEPTHWISE_CONV2D;
    l.in = (ftte_shape){6, 5, 9};
    l.out = (ftte_shape){3, 3, 9};
    l.kernel_h = l.kernel_w = 3;
    l.stride_h = l.stride_w = 2;
    l.pad_top = l.pad_left = 1;
    for (int32_t begin = 0; begin < l.out.c; begin++)
        for (int32_t count = 1; begin + count <= l.out.c; count++)
            check_case(&l, 2, (ftte_slice){begin, count}, (begin + count) % 2);
}

/* A few MobileNet-like layers. */
static void test_depthwise_larger(void) {
    static const int32_t shapes[][7] = {
        /* in.h in.w c kernel stride pad n */
        {16, 16, 32, 3, 1, 1, 2}, {15, 13, 24, 3, 2, 1, 1}, {11, 11, 13, 5, 2, 2, 3}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int32_t *g = shapes[i];
        ftte_layer l;
        memset(&l, 0, sizeof l);
        l.op = FTTE_OP_DEPTHWISE_CONV2D;
        l.in = (ftte_shape){g[0], g[1], g[2]};
        l.kernel_h = l.kernel_w = g[3];
        l.stride_h = l.stride_w = g[4];
        l.pad_top = l.pad_left = g[5];
        l.out = (ftte_shape){(g[0] + 2 * g[5] - g[3]) / g[4] + 1,
                             (g[1] + 2 * g[5] - g[3]) / g[4] + 1, g[2]};
        FTTE_CHECK(ftte_layer_validate(&l) == FTTE_OK);
        check_case(&l, g[6], (ftte_slice){0, l.out.c}, 1);
        check_case(&l, g[6], (ftte_slice){3, l.out.c - 5}, 0);
    }
}

/* The 3x3 stride-1 fast path (internal/depthwise3x3.c): every padding, heights and widths
 * from 1 up (single last rows, rows entirely under the padding, row pairs all inside and at
 * the edges, rows shorter than the unrolled loop and of every length mod 3), outputs smaller
 * than the padding allows (input rows and columns no window reaches, which the backward pass
 * must leave alone), several samples, channel slices. */
static void test_depthwise_3x3_stride1(void) {
    for (int32_t t = 0; t < 500; t++) {
        ftte_layer l;
        memset(&l, 0, sizeof l);
        l.op = FTTE_OP_DEPTHWISE_CONV2D;
        l.kernel_h = l.kernel_w = 3;
        l.stride_h = l.stride_w = 1;
        l.pad_top = rnd(0, 2);
        l.pad_left = rnd(0, 2);
        l.in.h = rnd(1, 4) == 4 ? rnd(10, 17) : rnd(1, 9);
        l.in.w = rnd(1, 4) == 4 ? rnd(10, 17) : rnd(1, 9);
        /* (out - 1) - pad < in and at least one row: from 1 to in + pad outputs, the "same"
         * output (in + 2 pad - 2) most of the time when it is valid. */
        const int32_t most_h = l.in.h + l.pad_top, most_w = l.in.w + l.pad_left;
        const int32_t same_h = l.in.h + 2 * l.pad_top - 2, same_w = l.in.w + 2 * l.pad_left - 2;
        l.out.h = rnd(0, 2) && same_h >= 1 && same_h <= most_h ? same_h : rnd(1, most_h);
        l.out.w = rnd(0, 2) && same_w >= 1 && same_w <= most_w ? same_w : rnd(1, most_w);
        l.in.c = l.out.c = rnd(1, 9);
        if (ftte_layer_validate(&l) != FTTE_OK) continue; /* windows that miss the input */
        check_case(&l, rnd(1, 3), random_slice(l.out.c), rnd(0, 3) != 0);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Hand-computed case and finite differences                                                 */
/* ---------------------------------------------------------------------------------------- */

/* Two channels; channel 1 is the 3x3 input 1..9 with the 2x2 kernel {1, 2; 3, 4}, stride 2,
 * padding 1 (channel 0 is outside the slice and must stay as it was). */
static void test_depthwise_by_hand(void) {
    ftte_layer l;
    memset(&l, 0, sizeof l);
    l.op = FTTE_OP_DEPTHWISE_CONV2D;
    l.in = (ftte_shape){3, 3, 2};
    l.out = (ftte_shape){2, 2, 2};
    l.kernel_h = l.kernel_w = 2;
    l.stride_h = l.stride_w = 2;
    l.pad_top = l.pad_left = 1;
    float input[18];
    for (int i = 0; i < 9; i++) {
        input[2 * i] = -100.0f;
        input[2 * i + 1] = (float)(i + 1);
    }
    const float weights[4] = {1, 2, 3, 4}, bias = 0.5f;
    const ftte_slice s = {1, 1};
    float output[8] = {7, 7, 7, 7, 7, 7, 7, 7};
    FTTE_CHECK(ftte_depthwise_conv2d_forward(&l, 1, s, input, weights, &bias, output) ==
               FTTE_OK);
    const float want_out[8] = {7, 4.5f, 7, 18.5f, 7, 36.5f, 7, 77.5f};
    for (int i = 0; i < 8; i++) FTTE_CHECK_CLOSE(output[i], want_out[i], 1e-6f);

    const float ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    float grad_input[18], grad_weights[4] = {1, 1, 1, 1};
    for (int i = 0; i < 18; i++) grad_input[i] = 0.25f;
    FTTE_CHECK(ftte_depthwise_conv2d_backward_input(&l, 1, s, ones, weights, grad_input) ==
               FTTE_OK);
    const float want_gi[9] = {4, 3, 4, 2, 1, 2, 4, 3, 4};
    for (int i = 0; i < 9; i++) {
        FTTE_CHECK_CLOSE(grad_input[2 * i], 0.25f, 1e-6f);
        FTTE_CHECK_CLOSE(grad_input[2 * i + 1], 0.25f + want_gi[i], 1e-6f);
    }
    FTTE_CHECK(ftte_depthwise_conv2d_backward_weight(&l, 1, s, input, ones, grad_weights) ==
               FTTE_OK);
    const float want_gw[4] = {1 + 5, 1 + 4 + 6, 1 + 2 + 8, 1 + 1 + 3 + 7 + 9};
    for (int i = 0; i < 4; i++) FTTE_CHECK_CLOSE(grad_weights[i], want_gw[i], 1e-6f);
}

/* loss = sum over the slice's outputs of r * output, in double. */
static double loss_of(const ftte_layer *l, int32_t n, ftte_slice s, const float *input,
                      const float *weights, const float *r, float *output) {
    FTTE_CHECK(ftte_depthwise_conv2d_forward(l, n, s, input, weights, NULL, output) == FTTE_OK);
    double loss = 0.0;
    for (int32_t i = 0; i < n * ftte_shape_size(l->out); i++) {
        int32_t c = i % l->out.c;
        if (c >= s.begin && c < s.begin + s.count) loss += (double)r[i] * (double)output[i];
    }
    return loss;
}

/* Central differences of loss_of against both backward kernels, at random elements. */
static void test_depthwise_finite_differences(void) {
    const float h = 0.25f; /* the loss is linear: a large step only lowers rounding noise */
    for (int32_t t = 0; t < 60; t++) {
        ftte_layer l = random_layer();
        const int32_t n = rnd(1, 2), k = taps_of(&l);
        const int32_t in_count = n * ftte_shape_size(l.in), out_count = n * ftte_shape_size(l.out);
        ftte_slice s = random_slice(l.out.c);
        float *input = ftte_test_random_buffer(in_count);
        float *weights = ftte_test_random_buffer(s.count * k);
        float *r = ftte_test_random_buffer(out_count);
        float *output = filled(out_count, 0.0f);
        float *grad_input = filled(in_count, 0.0f), *grad_weights = filled(s.count * k, 0.0f);
        FTTE_CHECK(ftte_depthwise_conv2d_backward_input(&l, n, s, r, weights, grad_input) ==
                   FTTE_OK);
        FTTE_CHECK(ftte_depthwise_conv2d_backward_weight(&l, n, s, input, r, grad_weights) ==
                   FTTE_OK);
        for (int32_t m = 0; m < 3; m++) {
            float *params[2] = {input, weights};
            const float *grads[2] = {grad_input, grad_weights};
            const int32_t counts[2] = {in_count, s.count * k};
            for (int32_t which = 0; which < 2; which++) {
                int32_t i = rnd(0, counts[which] - 1);
                float saved = params[which][i];
                params[which][i] = saved + h;
                double up = loss_of(&l, n, s, input, weights, r, output);
                params[which][i] = saved - h;
                double down = loss_of(&l, n, s, input, weights, r, output);
                params[which][i] = saved;
                FTTE_CHECK_CLOSE(grads[which][i], (up - down) / (2.0 * (double)h), 1e-3);
            }
        }
        free(input); free(weights); free(r); free(output); free(grad_input); free(grad_weights);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Errors: each returns its status and leaves every buffer as it was                         */
/* ---------------------------------------------------------------------------------------- */

enum { BUFFERS = 7, BUFFER_FLOATS = 4096 };

typedef struct {
    float *p[BUFFERS]; /* input, weights, bias, output, grad_output, grad_input, grad_weights */
    float *saved[BUFFERS];
} buffers;

static void buffers_alloc(buffers *b) {
    for (int i = 0; i < BUFFERS; i++) {
        b->p[i] = ftte_test_random_buffer(BUFFER_FLOATS);
        b->saved[i] = copy_of(b->p[i], BUFFER_FLOATS);
    }
}

static int buffers_unchanged(const buffers *b) {
    for (int i = 0; i < BUFFERS; i++)
        if (memcmp(b->p[i], b->saved[i], BUFFER_FLOATS * sizeof(float)) != 0) return 0;
    return 1;
}

static void buffers_free(buffers *b) {
    for (int i = 0; i < BUFFERS; i++) {
        free(b->p[i]);
        free(b->saved[i]);
    }
}

/* Calls the three kernels with these arguments and expects `want` from each, buffers intact. */
static void expect(const ftte_layer *l, int32_t n, ftte_slice s, ftte_status want, int line) {
    buffers b;
    buffers_alloc(&b);
    float **p = b.p;
    const ftte_status got[3] = {
        ftte_depthwise_conv2d_forward(l, n, s, p[0], p[1], p[2], p[3]),
        ftte_depthwise_conv2d_backward_input(l, n, s, p[4], p[1], p[5]),
        ftte_depthwise_conv2d_backward_weight(l, n, s, p[0], p[4], p[6])};
    for (int k = 0; k < 3; k++) {
        if (got[k] != want) {
            printf("  line %d: kernel %d returned %d, want %d\n", line, k, (int)got[k], (int)want);
            FTTE_CHECK(got[k] == want);
        }
    }
    if (want != FTTE_OK && !buffers_unchanged(&b)) {
        printf("  line %d: a buffer changed\n", line);
        FTTE_CHECK(buffers_unchanged(&b));
    }
    buffers_free(&b);
}

#define EXPECT(l, n, s, want) expect(l, n, s, want, __LINE__)

static void test_depthwise_errors(void) {
    ftte_layer good, l;
    memset(&good, 0, sizeof good);
    good.op = FTTE_OP_DEPTHWISE_CONV2D;
    good.in = (ftte_shape){5, 7, 6};
    good.out = (ftte_shape){5, 7, 6};
    good.kernel_h = good.kernel_w = 3;
    good.stride_h = good.stride_w = 1;
    good.pad_top = good.pad_left = 1;
    const ftte_slice all = {0, 6};

    EXPECT(&good, 2, all, FTTE_OK); /* the buffers are large enough for every variant */

    EXPECT(NULL, 2, all, FTTE_ERR_ARG);
    l = good; l.op = FTTE_OP_CONV2D;
    EXPECT(&l, 2, all, FTTE_ERR_UNSUPPORTED);
    l = good; l.op = FTTE_OP_POINTWISE_CONV2D;
    EXPECT(&l, 2, all, FTTE_ERR_UNSUPPORTED);

    EXPECT(&good, 0, all, FTTE_ERR_ARG);
    EXPECT(&good, -3, all, FTTE_ERR_ARG);
    EXPECT(&good, 2, ((ftte_slice){-1, 2}), FTTE_ERR_ARG);
    EXPECT(&good, 2, ((ftte_slice){0, 0}), FTTE_ERR_ARG);
    EXPECT(&good, 2, ((ftte_slice){2, -1}), FTTE_ERR_ARG);
    EXPECT(&good, 2, ((ftte_slice){6, 1}), FTTE_ERR_ARG);
    EXPECT(&good, 2, ((ftte_slice){3, 4}), FTTE_ERR_ARG);
    EXPECT(&good, 2, ((ftte_slice){1, INT32_MAX}), FTTE_ERR_ARG);

    /* Each required pointer NULL in turn; bias may be NULL. */
    {
        buffers b;
        buffers_alloc(&b);
        float **p = b.p;
        FTTE_CHECK(ftte_depthwise_conv2d_forward(&good, 2, all, NULL, p[1], p[2], p[3]) ==
                   FTTE_ERR_ARG);
        FTTE_CHECK(ftte_depthwise_conv2d_forward(&good, 2, all, p[0], NULL, p[2], p[3]) ==
                   FTTE_ERR_ARG);
        FTTE_CHECK(ftte_depthwise_conv2d_forward(&good, 2, all, p[0], p[1], p[2], NULL) ==
                   FTTE_ERR_ARG);
        FTTE_CHECK(ftte_depthwise_conv2d_backward_input(&good, 2, all, NULL, p[1], p[5]) ==
                   FTTE_ERR_ARG);
        FTTE_CHECK(ftte_depthwise_conv2d_backward_input(&good, 2, all, p[4], NULL, p[5]) ==
                   FTTE_ERR_ARG);
        FTTE_CHECK(ftte_depthwise_conv2d_backward_input(&good, 2, all, p[4], p[1], NULL) ==
                   FTTE_ERR_ARG);
        FTTE_CHECK(ftte_depthwise_conv2d_backward_weight(&good, 2, all, NULL, p[4], p[6]) ==
                   FTTE_ERR_ARG);
        FTTE_CHECK(ftte_depthwise_conv2d_backward_weight(&good, 2, all, p[0], NULL, p[6]) ==
                   FTTE_ERR_ARG);
        FTTE_CHECK(ftte_depthwise_conv2d_backward_weight(&good, 2, all, p[0], p[4], NULL) ==
                   FTTE_ERR_ARG);
        FTTE_CHECK(buffers_unchanged(&b));
        FTTE_CHECK(ftte_depthwise_conv2d_forward(&good, 2, all, p[0], p[1], NULL, p[3]) ==
                   FTTE_OK);
        buffers_free(&b);
    }

    /* Inconsistent geometry. */
    l = good; l.out.c = 5; /* channel multiplier 1 only */
    EXPECT(&l, 2, ((ftte_slice){0, 5}), FTTE_ERR_SHAPE);
    l = good; l.out.w = 9; /* last window starts past the input */
    EXPECT(&l, 2, all, FTTE_ERR_SHAPE);
    l = good; l.out.h = 7;
    EXPECT(&l, 2, all, FTTE_ERR_SHAPE);
    l = good; l.pad_top = 3;
    EXPECT(&l, 2, all, FTTE_ERR_SHAPE);
    l = good; l.stride_h = 0;
    EXPECT(&l, 2, all, FTTE_ERR_SHAPE);
    l = good; l.kernel_w = -1;
    EXPECT(&l, 2, all, FTTE_ERR_SHAPE);
    l = good; l.in.h = 0;
    EXPECT(&l, 2, all, FTTE_ERR_SHAPE);
    /* A kernel no board could hold, otherwise valid: refused before any index overflows. */
    l = good; l.in.w = 1; l.out.w = 1; l.pad_left = 0; l.kernel_w = 1 << 30;
    FTTE_CHECK(ftte_layer_validate(&l) == FTTE_OK);
    EXPECT(&l, 2, all, FTTE_ERR_SHAPE);
    /* A huge stride is fine when there is one output column. */
    l = good; l.out.w = 1; l.stride_w = INT32_MAX;
    FTTE_CHECK(ftte_layer_validate(&l) == FTTE_OK);
    check_case(&l, 2, all, 1);
}

FTTE_TEST_MAIN(test_depthwise_by_hand, test_depthwise_random, test_depthwise_3x3_stride1,
               test_depthwise_all_slices, test_depthwise_larger,
               test_depthwise_finite_differences, test_depthwise_errors)
