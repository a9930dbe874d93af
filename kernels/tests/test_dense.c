/*
 * Tests of the dense and pointwise conv2d kernels (forward, backward input, backward weight)
 * and of the bias gradient, against naive double-precision references, over a sweep of small
 * geometries that hits every remainder of the kernels' 4x4 tiling (rows, output channels and
 * input channels mod 4), random slices, and random larger layers.
 *
 * Tolerances are doubles: FTTE_CHECK_CLOSE multiplies the tolerance by a double, and a float
 * literal there would be an implicit promotion, which -Wdouble-promotion rejects.
 */
#include "ftte_kernels.h"
#include "ftte_test.h"

#define TOL 1e-5

/* ---------------------------------------------------------------------------------------- */
/* Kernels under test: dense and pointwise share their signatures.                            */
/* ---------------------------------------------------------------------------------------- */

typedef ftte_status (*forward_fn)(const ftte_layer *, int32_t, ftte_slice, const float *,
                                  const float *, const float *, float *);
typedef ftte_status (*backward_input_fn)(const ftte_layer *, int32_t, ftte_slice, const float *,
                                         const float *, float *);
typedef ftte_status (*backward_weight_fn)(const ftte_layer *, int32_t, ftte_slice,
                                          const float *, const float *, float *);
typedef int32_t (*buffer_size_fn)(const ftte_layer *, int32_t);

typedef struct {
    const char *name;
    int32_t op;
    forward_fn forward;
    backward_input_fn backward_input;
    backward_weight_fn backward_weight;
    buffer_size_fn sizes[3];
} rows_kernels;

static const rows_kernels DENSE = {
    "dense", FTTE_OP_DENSE, ftte_dense_forward, ftte_dense_backward_input,
    ftte_dense_backward_weight,
    {ftte_dense_forward_get_buffer_size, ftte_dense_backward_input_get_buffer_size,
     ftte_dense_backward_weight_get_buffer_size}};

static const rows_kernels POINTWISE = {
    "pointwise", FTTE_OP_POINTWISE_CONV2D, ftte_pointwise_conv2d_forward,
    ftte_pointwise_conv2d_backward_input, ftte_pointwise_conv2d_backward_weight,
    {ftte_pointwise_conv2d_forward_get_buffer_size,
     ftte_pointwise_conv2d_backward_input_get_buffer_size,
     ftte_pointwise_conv2d_backward_weight_get_buffer_size}};

/* ---------------------------------------------------------------------------------------- */
/* Layers, cases and buffers                                                                  */
/* ---------------------------------------------------------------------------------------- */

static ftte_layer rows_layer(int32_t op, int32_t h, int32_t w, int32_t in_c, int32_t out_c) {
    ftte_layer l;
    memset(&l, 0, sizeof l);
    l.op = op;
    l.in.h = l.out.h = h;
    l.in.w = l.out.w = w;
    l.in.c = in_c;
    l.out.c = out_c;
    if (op == FTTE_OP_POINTWISE_CONV2D) {
        l.kernel_h = l.kernel_w = 1;
        l.stride_h = l.stride_w = 1;
    }
    return l;
}

static int32_t rand_int(int32_t lo, int32_t hi) { /* inclusive */
    uint32_t r = (uint32_t)((ftte_test_rand() + 1.0f) * 1000000.0f);
    return lo + (int32_t)(r % (uint32_t)(hi - lo + 1));
}

/* One call's geometry: the layer, the batch, the slice and whether there is a bias. */
typedef struct {
    ftte_layer layer;
    int32_t n;
    ftte_slice slice;
    int32_t rows; /* n * h * w */
    int bias;
} rows_case;

/* A quarter of the slices are the whole layer; the others start anywhere and end anywhere. */
static ftte_slice random_slice(int32_t out_c) {
    ftte_slice s = {0, out_c};
    if (rand_int(0, 3) != 0) {
        s.begin = rand_int(0, out_c - 1);
        s.count = rand_int(1, out_c - s.begin);
    }
    return s;
}

static rows_case make_case(const rows_kernels *k, int32_t n, int32_t in_c, int32_t out_c) {
    rows_case c;
    int32_t pointwise = k->op == FTTE_OP_POINTWISE_CONV2D;
    int32_t h = pointwise ? rand_int(1, 3) : 1, w = pointwise ? rand_int(1, 3) : 1;
    c.layer = rows_layer(k->op, h, w, in_c, out_c);
    c.n = n;
    c.slice = random_slice(out_c);
    c.rows = n * h * w;
    c.bias = rand_int(0, 3) != 0;
    return c;
}

/* Every remainder mod 4 of rows, input and output channels, then larger random layers. */
static const int32_t SWEEP_N[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const int32_t SWEEP_IN[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13};
static const int32_t SWEEP_OUT[] = {1, 2, 3, 4, 5, 7, 8, 9, 12};
#define COUNT(a) ((int32_t)(sizeof(a) / sizeof((a)[0])))
#define RANDOM_CASES 60

static int32_t case_count(void) {
    return COUNT(SWEEP_N) * COUNT(SWEEP_IN) * COUNT(SWEEP_OUT) + RANDOM_CASES;
}

static rows_case case_at(const rows_kernels *k, int32_t index) {
    int32_t sweep = COUNT(SWEEP_N) * COUNT(SWEEP_IN) * COUNT(SWEEP_OUT);
    if (index >= sweep) return make_case(k, rand_int(1, 12), rand_int(1, 70), rand_int(1, 40));
    int32_t n = SWEEP_N[index % COUNT(SWEEP_N)];
    index /= COUNT(SWEEP_N);
    int32_t in_c = SWEEP_IN[index % COUNT(SWEEP_IN)];
    index /= COUNT(SWEEP_IN);
    return make_case(k, n, in_c, SWEEP_OUT[index]);
}

static void describe(const rows_kernels *k, const rows_case *c) {
    printf("  in %s: n=%d h=%d w=%d in.c=%d out.c=%d slice=[%d,+%d) bias=%d\n", k->name, c->n,
           c->layer.in.h, c->layer.in.w, c->layer.in.c, c->layer.out.c, c->slice.begin,
           c->slice.count, c->bias);
}

static float *copy_buffer(const float *src, int32_t count) {
    float *p = (float *)malloc((size_t)count * sizeof(float));
    for (int32_t i = 0; i < count; i++) p[i] = src[i];
    return p;
}

/* At most a few failures per buffer, so that one bad case does not flood the output. */
static void check_buffers_close(const float *got, const float *want, int32_t count) {
    int mismatches = 0;
    for (int32_t i = 0; i < count && mismatches < 3; i++) {
        double scale = fmax(1.0, fmax(fabs((double)got[i]), fabs((double)want[i])));
        if (fabs((double)got[i] - (double)want[i]) > TOL * scale) {
            mismatches++;
            printf("  element %d:\n", i);
        }
        FTTE_CHECK_CLOSE(got[i], want[i], TOL);
    }
}

static int same_buffer(const float *a, const float *b, int32_t count) {
    return memcmp(a, b, (size_t)count * sizeof(float)) == 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Naive references, accumulated in double                                                   */
/* ---------------------------------------------------------------------------------------- */

static void ref_forward(const rows_case *c, const float *x, const float *w, const float *b,
                        float *y) {
    int32_t in_c = c->layer.in.c, out_c = c->layer.out.c;
    for (int32_t r = 0; r < c->rows; r++) {
        for (int32_t o = 0; o < c->slice.count; o++) {
            double acc = b ? (double)b[o] : 0.0;
            for (int32_t i = 0; i < in_c; i++)
                acc += (double)x[r * in_c + i] * (double)w[o * in_c + i];
            y[r * out_c + c->slice.begin + o] = (float)acc;
        }
    }
}

static void ref_backward_input(const rows_case *c, const float *gy, const float *w, float *gx) {
    int32_t in_c = c->layer.in.c, out_c = c->layer.out.c;
    for (int32_t r = 0; r < c->rows; r++) {
        for (int32_t i = 0; i < in_c; i++) {
            double acc = (double)gx[r * in_c + i];
            for (int32_t o = 0; o < c->slice.count; o++)
                acc += (double)gy[r * out_c + c->slice.begin + o] * (double)w[o * in_c + i];
            gx[r * in_c + i] = (float)acc;
        }
    }
}

static void ref_backward_weight(const rows_case *c, const float *x, const float *gy, float *gw) {
    int32_t in_c = c->layer.in.c, out_c = c->layer.out.c;
    for (int32_t o = 0; o < c->slice.count; o++) {
        for (int32_t i = 0; i < in_c; i++) {
            double acc = (double)gw[o * in_c + i];
            for (int32_t r = 0; r < c->rows; r++)
                acc += (double)gy[r * out_c + c->slice.begin + o] * (double)x[r * in_c + i];
            gw[o * in_c + i] = (float)acc;
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* One case of each kernel against its reference                                              */
/* ---------------------------------------------------------------------------------------- */

/* Only the slice's columns change; weights and bias are exactly the slice's rows (ASan). */
static void check_forward_case(const rows_kernels *k, const rows_case *c) {
    int32_t in_c = c->layer.in.c, out_c = c->layer.out.c, count = c->slice.count;
    int before = ftte_test_failed_checks;
    float *x = ftte_test_random_buffer(c->rows * in_c);
    float *w = ftte_test_random_buffer(count * in_c);
    float *b = c->bias ? ftte_test_random_buffer(count) : NULL;
    float *y = ftte_test_random_buffer(c->rows * out_c);
    float *want = copy_buffer(y, c->rows * out_c);
    ref_forward(c, x, w, b, want);
    FTTE_CHECK(k->forward(&c->layer, c->n, c->slice, x, w, b, y) == FTTE_OK);
    check_buffers_close(y, want, c->rows * out_c);
    for (int32_t r = 0; r < c->rows; r++) { /* columns outside the slice: bit for bit */
        FTTE_CHECK(same_buffer(y + r * out_c, want + r * out_c, c->slice.begin));
        int32_t end = c->slice.begin + count;
        FTTE_CHECK(same_buffer(y + r * out_c + end, want + r * out_c + end, out_c - end));
    }
    if (ftte_test_failed_checks != before) describe(k, c);
    free(x), free(w), free(b), free(y), free(want);
}

/* Starts from a nonzero grad_input: the kernel accumulates. */
static void check_backward_input_case(const rows_kernels *k, const rows_case *c) {
    int32_t in_c = c->layer.in.c, out_c = c->layer.out.c, count = c->slice.count;
    int before = ftte_test_failed_checks;
    float *gy = ftte_test_random_buffer(c->rows * out_c);
    float *w = ftte_test_random_buffer(count * in_c);
    float *gx = ftte_test_random_buffer(c->rows * in_c);
    float *want = copy_buffer(gx, c->rows * in_c);
    ref_backward_input(c, gy, w, want);
    FTTE_CHECK(k->backward_input(&c->layer, c->n, c->slice, gy, w, gx) == FTTE_OK);
    check_buffers_close(gx, want, c->rows * in_c);
    if (ftte_test_failed_checks != before) describe(k, c);
    free(gy), free(w), free(gx), free(want);
}

/* Starts from a nonzero grad_weights: the kernel accumulates. */
static void check_backward_weight_case(const rows_kernels *k, const rows_case *c) {
    int32_t in_c = c->layer.in.c, out_c = c->layer.out.c, count = c->slice.count;
    int before = ftte_test_failed_checks;
    float *x = ftte_test_random_buffer(c->rows * in_c);
    float *gy = ftte_test_random_buffer(c->rows * out_c);
    float *gw = ftte_test_random_buffer(count * in_c);
    float *want = copy_buffer(gw, count * in_c);
    ref_backward_weight(c, x, gy, want);
    FTTE_CHECK(k->backward_weight(&c->layer, c->n, c->slice, x, gy, gw) == FTTE_OK);
    check_buffers_close(gw, want, count * in_c);
    if (ftte_test_failed_checks != before) describe(k, c);
    free(x), free(gy), free(gw), free(want);
}

static void check_all_cases(const rows_kernels *k, void (*check)(const rows_kernels *,
                                                                 const rows_case *)) {
    for (int32_t i = 0; i < case_count(); i++) {
        rows_case c = case_at(k, i);
        check(k, &c);
    }
}

/* The register blocks of the row matmul at their edges: one row (the matrix-vector path, 16
 * inputs at a time and the k % 16 left), 2-3 rows, 4 and more (4x4 tiles; 4x6 for the weight
 * gradient, with in.c mod 6 left over), and output counts around 4. */
static void test_register_block_edges(void) {
    static const int32_t rows[] = {1, 2, 3, 4, 5, 8, 9};
    static const int32_t ins[] = {15, 16, 17, 22, 23, 24, 31, 32, 33, 64, 70};
    static const int32_t outs[] = {1, 3, 4, 5, 6, 7, 8, 10, 12, 13};
    for (int32_t a = 0; a < COUNT(rows); a++)
        for (int32_t b = 0; b < COUNT(ins); b++)
            for (int32_t c = 0; c < COUNT(outs); c++) {
                rows_case rc = make_case(&DENSE, rows[a], ins[b], outs[c]);
                check_forward_case(&DENSE, &rc);
                check_backward_input_case(&DENSE, &rc);
                check_backward_weight_case(&DENSE, &rc);
                rc = make_case(&POINTWISE, rows[a], ins[b], outs[c]);
                check_forward_case(&POINTWISE, &rc);
                check_backward_input_case(&POINTWISE, &rc);
                check_backward_weight_case(&POINTWISE, &rc);
            }
}

static void test_dense_forward(void) { check_all_cases(&DENSE, check_forward_case); }
static void test_dense_backward_input(void) {
    check_all_cases(&DENSE, check_backward_input_case);
}
static void test_dense_backward_weight(void) {
    check_all_cases(&DENSE, check_backward_weight_case);
}
static void test_pointwise_forward(void) { check_all_cases(&POINTWISE, check_forward_case); }
static void test_pointwise_backward_input(void) {
    check_all_cases(&POINTWISE, check_backward_input_case);
}
static void test_pointwise_backward_weight(void) {
    check_all_cases(&POINTWISE, check_backward_weight_case);
}

/* ---------------------------------------------------------------------------------------- */
/* Slices and batch chunks compose into the whole layer                                       */
/* ---------------------------------------------------------------------------------------- */

/* A layer cut into three slices, each with its weight rows in a separate buffer (as frozen
 * rows in flash and trainable rows in RAM would be), gives the whole layer's results. */
static void check_slices_compose(const rows_kernels *k, int32_t n, int32_t in_c, int32_t out_c) {
    rows_case whole = make_case(k, n, in_c, out_c);
    whole.slice.begin = 0;
    whole.slice.count = out_c;
    int32_t rows = whole.rows, cut1 = rand_int(1, out_c - 2);
    int32_t cut2 = rand_int(cut1 + 1, out_c - 1);
    ftte_slice parts[3] = {{0, cut1}, {cut1, cut2 - cut1}, {cut2, out_c - cut2}};
    float *x = ftte_test_random_buffer(rows * in_c), *w = ftte_test_random_buffer(out_c * in_c);
    float *gy = ftte_test_random_buffer(rows * out_c), *b = ftte_test_random_buffer(out_c);
    float *y = ftte_test_zero_buffer(rows * out_c);
    float *y_parts = ftte_test_zero_buffer(rows * out_c);
    float *gx = ftte_test_zero_buffer(rows * in_c);
    float *gx_parts = ftte_test_zero_buffer(rows * in_c);
    float *gw = ftte_test_zero_buffer(out_c * in_c);
    float *gw_parts = ftte_test_zero_buffer(out_c * in_c);
    const ftte_layer *l = &whole.layer;
    FTTE_CHECK(k->forward(l, n, whole.slice, x, w, b, y) == FTTE_OK);
    FTTE_CHECK(k->backward_input(l, n, whole.slice, gy, w, gx) == FTTE_OK);
    FTTE_CHECK(k->backward_weight(l, n, whole.slice, x, gy, gw) == FTTE_OK);
    for (int p = 0; p < 3; p++) {
        ftte_slice s = parts[p];
        float *wp = copy_buffer(w + s.begin * in_c, s.count * in_c);
        float *bp = copy_buffer(b + s.begin, s.count);
        FTTE_CHECK(k->forward(l, n, s, x, wp, bp, y_parts) == FTTE_OK);
        FTTE_CHECK(k->backward_input(l, n, s, gy, wp, gx_parts) == FTTE_OK);
        FTTE_CHECK(k->backward_weight(l, n, s, x, gy, gw_parts + s.begin * in_c) == FTTE_OK);
        free(wp), free(bp);
    }
    check_buffers_close(y_parts, y, rows * out_c);
    check_buffers_close(gx_parts, gx, rows * in_c);
    check_buffers_close(gw_parts, gw, out_c * in_c);
    free(x), free(gy), free(w), free(b), free(y), free(y_parts), free(gx), free(gx_parts);
    free(gw), free(gw_parts);
}

static void test_slices_compose(void) {
    for (int32_t t = 0; t < 40; t++) {
        int32_t n = rand_int(1, 9), in_c = rand_int(1, 20), out_c = rand_int(3, 20);
        check_slices_compose(&DENSE, n, in_c, out_c);
        check_slices_compose(&POINTWISE, n, in_c, out_c);
    }
}

/* The weight gradient of a batch equals the sum of its chunks' (the caller may split a batch). */
static void check_batch_chunks(const rows_kernels *k, int32_t n1, int32_t n2) {
    rows_case c = make_case(k, n1 + n2, rand_int(1, 20), rand_int(1, 20));
    int32_t in_c = c.layer.in.c, out_c = c.layer.out.c, pixels = c.rows / c.n;
    int32_t count = c.slice.count;
    float *x = ftte_test_random_buffer(c.rows * in_c);
    float *gy = ftte_test_random_buffer(c.rows * out_c);
    float *gw = ftte_test_zero_buffer(count * in_c);
    float *gw_chunks = ftte_test_zero_buffer(count * in_c);
    FTTE_CHECK(k->backward_weight(&c.layer, c.n, c.slice, x, gy, gw) == FTTE_OK);
    FTTE_CHECK(k->backward_weight(&c.layer, n1, c.slice, x, gy, gw_chunks) == FTTE_OK);
    FTTE_CHECK(k->backward_weight(&c.layer, n2, c.slice, x + n1 * pixels * in_c,
                                  gy + n1 * pixels * out_c, gw_chunks) == FTTE_OK);
    check_buffers_close(gw_chunks, gw, count * in_c);
    free(x), free(gy), free(gw), free(gw_chunks);
}

static void test_batch_chunks_accumulate(void) {
    for (int32_t t = 0; t < 30; t++) {
        int32_t n1 = rand_int(1, 6), n2 = rand_int(1, 6);
        check_batch_chunks(&DENSE, n1, n2);
        check_batch_chunks(&POINTWISE, n1, n2);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Errors: the right status, and no buffer touched                                            */
/* ---------------------------------------------------------------------------------------- */

/* Buffers sized for a valid 2x2-pixel layer with in.c 5, out.c 6, batch 3. */
enum { E_ROWS = 12, E_IN = 5, E_OUT = 6, E_SIZE = E_ROWS * 6 };

typedef struct {
    float *in, *w, *b, *out, *gy, *gx, *gw;
    float *snapshot[3];
} error_buffers;

static error_buffers error_buffers_new(void) {
    error_buffers e;
    e.in = ftte_test_random_buffer(E_SIZE);
    e.w = ftte_test_random_buffer(E_SIZE);
    e.b = ftte_test_random_buffer(E_OUT);
    e.out = ftte_test_random_buffer(E_SIZE);
    e.gy = ftte_test_random_buffer(E_SIZE);
    e.gx = ftte_test_random_buffer(E_SIZE);
    e.gw = ftte_test_random_buffer(E_SIZE);
    e.snapshot[0] = copy_buffer(e.out, E_SIZE);
    e.snapshot[1] = copy_buffer(e.gx, E_SIZE);
    e.snapshot[2] = copy_buffer(e.gw, E_SIZE);
    return e;
}

static void error_buffers_free(error_buffers *e) {
    free(e->in), free(e->w), free(e->b), free(e->out), free(e->gy), free(e->gx), free(e->gw);
    free(e->snapshot[0]), free(e->snapshot[1]), free(e->snapshot[2]);
}

/* `drop` (0-2) names the pointer argument passed as NULL, in argument order; -1: none. */
static const float *maybe(const float *p, int drop, int index) { return drop == index ? 0 : p; }
static float *maybe_out(float *p, int drop, int index) { return drop == index ? 0 : p; }

/* All three kernels of `k` return `want` for this call, and write nothing if it is an error. */
static void expect_status(const rows_kernels *k, const ftte_layer *l, int32_t n, ftte_slice s,
                          int drop, ftte_status want) {
    error_buffers e = error_buffers_new();
    ftte_status got[3];
    got[0] = k->forward(l, n, s, maybe(e.in, drop, 0), maybe(e.w, drop, 1), e.b,
                        maybe_out(e.out, drop, 2));
    got[1] = k->backward_input(l, n, s, maybe(e.gy, drop, 0), maybe(e.w, drop, 1),
                               maybe_out(e.gx, drop, 2));
    got[2] = k->backward_weight(l, n, s, maybe(e.in, drop, 0), maybe(e.gy, drop, 1),
                                maybe_out(e.gw, drop, 2));
    for (int i = 0; i < 3; i++) {
        if (got[i] != want)
            printf("  %s kernel %d: status %d, want %d\n", k->name, i, got[i], want);
        FTTE_CHECK(got[i] == want);
    }
    if (want != FTTE_OK) {
        FTTE_CHECK(same_buffer(e.out, e.snapshot[0], E_SIZE));
        FTTE_CHECK(same_buffer(e.gx, e.snapshot[1], E_SIZE));
        FTTE_CHECK(same_buffer(e.gw, e.snapshot[2], E_SIZE));
    }
    error_buffers_free(&e);
}

static void check_errors(const rows_kernels *k, int32_t h, int32_t w) {
    const int32_t n = E_ROWS / (h * w);
    const ftte_layer good = rows_layer(k->op, h, w, E_IN, E_OUT);
    const ftte_slice all = {0, E_OUT};
    ftte_layer l;
    /* The valid call itself succeeds (so the failures below are the arguments'). */
    expect_status(k, &good, n, all, -1, FTTE_OK);
    /* Operator: another valid layer, an unknown one, no layer. */
    l = rows_layer(k->op == FTTE_OP_DENSE ? FTTE_OP_POINTWISE_CONV2D : FTTE_OP_DENSE, 1, 1, E_IN,
                   E_OUT);
    expect_status(k, &l, n, all, -1, FTTE_ERR_UNSUPPORTED);
    l = good;
    l.op = FTTE_OP_CONV2D;
    l.kernel_h = l.kernel_w = l.stride_h = l.stride_w = 1;
    expect_status(k, &l, n, all, -1, FTTE_ERR_UNSUPPORTED);
    l = good;
    l.op = 99;
    expect_status(k, &l, n, all, -1, FTTE_ERR_UNSUPPORTED);
    expect_status(k, NULL, n, all, -1, FTTE_ERR_ARG);
    /* Shapes. */
    l = good;
    l.in.c = 0;
    expect_status(k, &l, n, all, -1, FTTE_ERR_SHAPE);
    l = good;
    l.out.c = -1;
    expect_status(k, &l, n, all, -1, FTTE_ERR_SHAPE);
    l = good;
    l.in.h = 2, l.out.h = 3; /* dense needs 1 x 1, pointwise the same h and w both sides */
    expect_status(k, &l, n, all, -1, FTTE_ERR_SHAPE);
    l = good;
    l.out.w = l.in.w + 1;
    expect_status(k, &l, n, all, -1, FTTE_ERR_SHAPE);
    l = rows_layer(k->op, 1, 1, 100000, 100000); /* weights past INT32_MAX elements */
    expect_status(k, &l, 1, all, -1, FTTE_ERR_SHAPE);
    /* Batch. */
    expect_status(k, &good, 0, all, -1, FTTE_ERR_ARG);
    expect_status(k, &good, -1, all, -1, FTTE_ERR_ARG);
    l = rows_layer(k->op, h == 1 ? 1 : 1000, h == 1 ? 1 : 1000, 100, 10);
    expect_status(k, &l, h == 1 ? 30000000 : 100, all, -1, FTTE_ERR_ARG); /* > INT32_MAX floats */
    /* Slices. */
    const ftte_slice bad[] = {{-1, 2}, {0, 0}, {2, -1}, {0, E_OUT + 1}, {E_OUT, 1},
                              {3, E_OUT - 2}, {INT32_MAX, 1}, {1, INT32_MAX}, {INT32_MIN, 1}};
    for (int32_t i = 0; i < COUNT(bad); i++) expect_status(k, &good, n, bad[i], -1, FTTE_ERR_ARG);
    /* Pointers (bias may be NULL: checked by the reference cases). */
    for (int drop = 0; drop < 3; drop++) expect_status(k, &good, n, all, drop, FTTE_ERR_ARG);
}

static void test_dense_errors(void) { check_errors(&DENSE, 1, 1); }
static void test_pointwise_errors(void) { check_errors(&POINTWISE, 2, 2); }

static void test_buffer_sizes_are_zero(void) {
    const ftte_layer d = rows_layer(FTTE_OP_DENSE, 1, 1, 7, 3);
    const ftte_layer p = rows_layer(FTTE_OP_POINTWISE_CONV2D, 4, 5, 7, 3);
    for (int i = 0; i < 3; i++) {
        FTTE_CHECK(DENSE.sizes[i](&d, 8) == 0);
        FTTE_CHECK(POINTWISE.sizes[i](&p, 8) == 0);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Bias gradient                                                                              */
/* ---------------------------------------------------------------------------------------- */

static void check_bias_case(int32_t rows, int32_t channels) {
    float *g = ftte_test_random_buffer(rows * channels);
    float *gb = ftte_test_random_buffer(channels);
    float *want = ftte_test_zero_buffer(channels);
    for (int32_t c = 0; c < channels; c++) {
        double acc = (double)gb[c];
        for (int32_t r = 0; r < rows; r++) acc += (double)g[r * channels + c];
        want[c] = (float)acc;
    }
    FTTE_CHECK(ftte_bias_backward(rows, channels, g, gb) == FTTE_OK);
    check_buffers_close(gb, want, channels);
    free(g), free(gb), free(want);
}

static void test_bias_backward(void) {
    for (int32_t rows = 1; rows <= 9; rows++)
        for (int32_t channels = 1; channels <= 13; channels++) check_bias_case(rows, channels);
    for (int32_t t = 0; t < 20; t++) check_bias_case(rand_int(1, 300), rand_int(1, 70));
}

static void expect_bias_status(int32_t rows, int32_t channels, int null_g, int null_gb,
                               ftte_status want) {
    float *g = ftte_test_random_buffer(12), *gb = ftte_test_random_buffer(4);
    float *snapshot = copy_buffer(gb, 4);
    FTTE_CHECK(ftte_bias_backward(rows, channels, null_g ? 0 : g, null_gb ? 0 : gb) == want);
    if (want != FTTE_OK) FTTE_CHECK(same_buffer(gb, snapshot, 4));
    free(g), free(gb), free(snapshot);
}

static void test_bias_backward_errors(void) {
    expect_bias_status(3, 4, 0, 0, FTTE_OK);
    expect_bias_status(0, 4, 0, 0, FTTE_ERR_ARG);
    expect_bias_status(-2, 4, 0, 0, FTTE_ERR_ARG);
    expect_bias_status(3, 0, 0, 0, FTTE_ERR_SHAPE);
    expect_bias_status(3, -4, 0, 0, FTTE_ERR_SHAPE);
    expect_bias_status(3, 4, 1, 0, FTTE_ERR_ARG);
    expect_bias_status(3, 4, 0, 1, FTTE_ERR_ARG);
    expect_bias_status(INT32_MAX / 2, 4, 0, 0, FTTE_ERR_ARG); /* past INT32_MAX elements */
}

FTTE_TEST_MAIN(test_dense_forward, test_dense_backward_input, test_dense_backward_weight,
               test_pointwise_forward, test_pointwise_backward_input,
               test_pointwise_backward_weight, test_slices_compose, test_batch_chunks_accumulate,
               test_register_block_edges, test_dense_errors, test_pointwise_errors,
               test_buffer_sizes_are_zero,
               test_bias_backward, test_bias_backward_errors)
