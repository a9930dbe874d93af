/*
 * Row matmul of dense and pointwise conv2d: the argument check, and the board tiles,
 * register-tiled for a Cortex-M4F (vector hosts: rows_matmul_host.c).
 *
 * Costs below are instructions per multiply-accumulate (MAC) on the M4F, where each float
 * load, store and VFMA is one instruction, a loop step costs a compare and a branch, and GCC
 * folds the pointer step of a sequential load into the load (post-increment).
 *
 *  - Four rows or more: 4x4 tiles of the result in 16 accumulators. Each reduction step loads
 *    4 + 4 floats for 16 MACs (26 instructions, 1.6 per MAC). The weight gradient, reduced
 *    over the rows (often just the batch), uses 4x6 tiles: its accumulators start from and go
 *    back to memory, and a wider tile loads fewer operands per MAC to pay for that.
 *  - A single row (batch-1 dense) is a matrix-vector product in which every weight is used
 *    once: with one load per weight, a load and a VFMA per MAC is the floor (2), and the
 *    outer product of the weight gradient adds a store (3). Sixteen floats of the vector (or
 *    of the result) stay in registers while the weight rows stream past them, about 2.3 per
 *    MAC in C; on a Cortex-M4F (FTTE_ARM_VLDM) the loops are inline asm whose VLDM/VSTM move
 *    4 to 16 floats per instruction: 1.4 to 1.5 per MAC in the loop.
 *  - Edges (fewer than 4 rows, outputs or inputs left) use 1x4 / 4x1 strips, then plain dots.
 *
 * ftte_rows_check() bounds every tensor (weights included) by INT32_MAX elements, so the
 * int32 offsets below (row * stride) cannot overflow.
 */
#include "rows_matmul.h"

#include "ftte_mac.h"

ftte_status ftte_rows_check(const ftte_layer *layer, int32_t op, int32_t n, ftte_slice slice,
                            int32_t *rows) {
    ftte_status status = ftte_layer_validate(layer);
    if (status != FTTE_OK) return status;
    if (layer->op != op) return FTTE_ERR_UNSUPPORTED;
    const int32_t in_c = layer->in.c, out_c = layer->out.c;
    if ((int64_t)in_c * out_c > INT32_MAX) return FTTE_ERR_SHAPE; /* weights */
    if (n <= 0 || slice.begin < 0 || slice.count < 1 || slice.begin > out_c - slice.count)
        return FTTE_ERR_ARG;
    const int64_t pixels = (int64_t)n * layer->in.h * layer->in.w;
    if (pixels > INT32_MAX / (in_c > out_c ? in_c : out_c)) return FTTE_ERR_ARG; /* batch */
    *rows = (int32_t)pixels;
    return FTTE_OK;
}

/* acc + sum_t a[t * as] * b[t * bs]: the corner case of all three products. */
static float dot(int32_t k, const float *a, int32_t as, const float *b, int32_t bs, float acc) {
    for (int32_t t = 0; t < k; t++) FTTE_MAC(acc, a[t * as], b[t * bs]);
    return acc;
}

/* out[j * os] += sum_t a[t * as + j * aj] * b[t * bs] for j < 4: one result column of 4 rows,
 * the 4 rows of `a` being aj apart. */
static void strip_4x1(int32_t k, const float *a, int32_t as, int32_t aj, const float *b,
                      int32_t bs, float *out, int32_t os) {
    const float *a0 = a, *a1 = a0 + aj, *a2 = a1 + aj, *a3 = a2 + aj;
    float s0 = out[0], s1 = out[os], s2 = out[2 * os], s3 = out[3 * os];
    for (int32_t t = 0; t < k; t++) {
        const float v = b[t * bs];
        FTTE_MAC(s0, a0[t * as], v); FTTE_MAC(s1, a1[t * as], v);
        FTTE_MAC(s2, a2[t * as], v); FTTE_MAC(s3, a3[t * as], v);
    }
    out[0] = s0, out[os] = s1, out[2 * os] = s2, out[3 * os] = s3;
}

/* ---------------------------------------------------------------------------------------- */
/* The single-row forward (a matrix-vector product), the board's and the host's              */
/* ---------------------------------------------------------------------------------------- */

/* Passed and returned by value: GCC keeps the members in 16 FPU registers, where an array
 * indexed in a loop would live on the stack. */
typedef struct {
    float v[16];
} block16;

#define BLOCK16 16

FTTE_INLINE block16 load16(const float *p) {
    const block16 b = {{p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11],
                        p[12], p[13], p[14], p[15]}};
    return b;
}

/* acc + x . w. */
FTTE_INLINE float dot16(float acc, block16 w, block16 x) {
    FTTE_MAC(acc, x.v[0], w.v[0]); FTTE_MAC(acc, x.v[1], w.v[1]);
    FTTE_MAC(acc, x.v[2], w.v[2]); FTTE_MAC(acc, x.v[3], w.v[3]);
    FTTE_MAC(acc, x.v[4], w.v[4]); FTTE_MAC(acc, x.v[5], w.v[5]);
    FTTE_MAC(acc, x.v[6], w.v[6]); FTTE_MAC(acc, x.v[7], w.v[7]);
    FTTE_MAC(acc, x.v[8], w.v[8]); FTTE_MAC(acc, x.v[9], w.v[9]);
    FTTE_MAC(acc, x.v[10], w.v[10]); FTTE_MAC(acc, x.v[11], w.v[11]);
    FTTE_MAC(acc, x.v[12], w.v[12]); FTTE_MAC(acc, x.v[13], w.v[13]);
    FTTE_MAC(acc, x.v[14], w.v[14]); FTTE_MAC(acc, x.v[15], w.v[15]);
    return acc;
}

#if FTTE_ARM_VLDM
/* a[j] += x . w_j for 4 weight rows w_j over the first k4 inputs, k4 a positive
 * multiple of 4: per 4 inputs, 5 VLDM and 16 VFMA (23 instructions with the loop for 16
 * MACs, where one load per MAC is 2). Each a[j] sums by ascending input. */
FTTE_INLINE void forward_4rows_vldm_body(int32_t k4, const float *x, const float *w0,
                                         const float *w1, const float *w2, const float *w3,
                                         float a[4]) {
    const float *end = x + k4;
    float a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
    __asm__("1:\n\t"
            "vldmia %[x]!, {s0-s3}\n\t"
            "vldmia %[w0]!, {s4-s7}\n\t"
            "vldmia %[w1]!, {s8-s11}\n\t"
            "vldmia %[w2]!, {s12-s15}\n\t"
            "vldmia %[w3]!, {s16-s19}\n\t"
            "vfma.f32 %[a0], s0, s4\n\t"
            "vfma.f32 %[a1], s0, s8\n\t"
            "vfma.f32 %[a2], s0, s12\n\t"
            "vfma.f32 %[a3], s0, s16\n\t"
            "vfma.f32 %[a0], s1, s5\n\t"
            "vfma.f32 %[a1], s1, s9\n\t"
            "vfma.f32 %[a2], s1, s13\n\t"
            "vfma.f32 %[a3], s1, s17\n\t"
            "vfma.f32 %[a0], s2, s6\n\t"
            "vfma.f32 %[a1], s2, s10\n\t"
            "vfma.f32 %[a2], s2, s14\n\t"
            "vfma.f32 %[a3], s2, s18\n\t"
            "vfma.f32 %[a0], s3, s7\n\t"
            "vfma.f32 %[a1], s3, s11\n\t"
            "vfma.f32 %[a2], s3, s15\n\t"
            "vfma.f32 %[a3], s3, s19\n\t"
            "cmp %[x], %[end]\n\t"
            "bne 1b"
            : [x] "+r"(x), [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3),
              [a0] "+t"(a0), [a1] "+t"(a1), [a2] "+t"(a2), [a3] "+t"(a3)
            : [end] "r"(end)
            : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12",
              "s13", "s14", "s15", "s16", "s17", "s18", "s19", "cc", "memory");
    a[0] = a0, a[1] = a1, a[2] = a2, a[3] = a3;
}

static void forward_4rows_vldm(int32_t k, int32_t k4, const float *x, const float *w,
                               float a[4]) {
    forward_4rows_vldm_body(k4, x, w, w + k, w + 2 * k, w + 3 * k, a);
}

/* The same with the 4 rows at w[0..3]. */
static void forward_4rows_vldm_ptrs(int32_t k4, const float *x, const float *const *w,
                                    float a[4]) {
    forward_4rows_vldm_body(k4, x, w[0], w[1], w[2], w[3], a);
}

/* One row: 4 outputs at a time, their inputs 4 by 4 through VLDM, the last k % 4 in C. */
void ftte_rows_forward_row(int32_t k, int32_t count, const float *x, const float *w,
                           const float *bias, float *y) {
    const int32_t k4 = k & ~3;
    int32_t o = 0;
    for (; o + 4 <= count; o += 4) {
        const float *wo = w + o * k;
        float a[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        if (bias) a[0] = bias[o], a[1] = bias[o + 1], a[2] = bias[o + 2], a[3] = bias[o + 3];
        if (k4 > 0) forward_4rows_vldm(k, k4, x, wo, a);
        if (k4 < k)
            for (int32_t j = 0; j < 4; j++) a[j] = dot(k - k4, x + k4, 1, wo + j * k + k4, 1, a[j]);
        y[o] = a[0], y[o + 1] = a[1], y[o + 2] = a[2], y[o + 3] = a[3];
    }
    for (; o < count; o++) y[o] = dot(k, x, 1, w + o * k, 1, bias ? bias[o] : 0.0f);
}

void ftte_rows_forward_row_ptrs(int32_t k, int32_t count, const float *x,
                                const float *const *wp, const float *bias, float *y) {
    const int32_t k4 = k & ~3;
    int32_t o = 0;
    for (; o + 4 <= count; o += 4) {
        float a[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        if (bias) a[0] = bias[o], a[1] = bias[o + 1], a[2] = bias[o + 2], a[3] = bias[o + 3];
        if (k4 > 0) forward_4rows_vldm_ptrs(k4, x, wp + o, a);
        if (k4 < k)
            for (int32_t j = 0; j < 4; j++) a[j] = dot(k - k4, x + k4, 1, wp[o + j] + k4, 1, a[j]);
        y[o] = a[0], y[o + 1] = a[1], y[o + 2] = a[2], y[o + 3] = a[3];
    }
    for (; o < count; o++) y[o] = dot(k, x, 1, wp[o], 1, bias ? bias[o] : 0.0f);
}
#else
/* y[o] = init[o * init_step] + xs . w[o][0..15] for o < count (weight rows k apart). One
 * output per step: with two, the 16 x, 2 sums and the loads in flight no longer fit the FPU's
 * 32 registers and GCC spills. */
static void forward_block16(int32_t count, int32_t k, block16 xs, const float *w,
                            const float *init, int32_t init_step, float *y) {
    for (int32_t o = 0; o < count; o++, w += k) y[o] = dot16(init[o * init_step], load16(w), xs);
}

/* One row: y[o] = b[o] + x . w[o] for o < count, the x in registers 16 at a time. The first
 * block starts from the bias (a zero read with step 0 without one), the next ones from y. */
void ftte_rows_forward_row(int32_t k, int32_t count, const float *x, const float *w,
                           const float *bias, float *y) {
    static const float zero = 0.0f;
    const float *init = bias ? bias : &zero;
    int32_t step = bias ? 1 : 0, i = 0;
    for (; i + BLOCK16 <= k; i += BLOCK16, init = y, step = 1)
        forward_block16(count, k, load16(x + i), w + i, init, step, y);
    if (i == k) return;
    if (i == 0)
        for (int32_t o = 0; o < count; o++) y[o] = init[o * step];
    /* The last k % 16 inputs: 4 outputs per loaded input, then single dots. */
    int32_t o = 0;
    for (; o + 4 <= count; o += 4) strip_4x1(k - i, w + o * k + i, 1, k, x + i, 1, y + o, 1);
    for (; o < count; o++) y[o] = dot(k - i, x + i, 1, w + o * k + i, 1, y[o]);
}

/* The same with row o at wp[o]. */
void ftte_rows_forward_row_ptrs(int32_t k, int32_t count, const float *x,
                                const float *const *wp, const float *bias, float *y) {
    int32_t i = 0;
    for (; i + BLOCK16 <= k; i += BLOCK16) {
        const block16 xs = load16(x + i);
        for (int32_t o = 0; o < count; o++) {
            const float init = i > 0 ? y[o] : bias ? bias[o] : 0.0f;
            y[o] = dot16(init, load16(wp[o] + i), xs);
        }
    }
    if (i == 0)
        for (int32_t o = 0; o < count; o++) y[o] = bias ? bias[o] : 0.0f;
    for (int32_t o = 0; o < count; o++) y[o] = dot(k - i, x + i, 1, wp[o] + i, 1, y[o]);
}

#endif /* FTTE_ARM_VLDM */

#if !FTTE_HOST_TILES

/* ---------------------------------------------------------------------------------------- */
/* The board tiles                                                                           */
/* ---------------------------------------------------------------------------------------- */

static void store4(float *p, float a, float b, float c, float d) {
    p[0] = a;
    p[1] = b;
    p[2] = c;
    p[3] = d;
}

/* out[0..3] += sum_t a[t * as] * b[t * bs + 0..3]: one result row of 4 columns. */
static void strip_1x4(int32_t k, const float *a, int32_t as, const float *b, int32_t bs,
                      float *out) {
    float a0 = out[0], a1 = out[1], a2 = out[2], a3 = out[3];
    for (int32_t t = 0; t < k; t++) {
        const float u = a[t * as], *v = b + t * bs;
        FTTE_MAC(a0, u, v[0]); FTTE_MAC(a1, u, v[1]); FTTE_MAC(a2, u, v[2]); FTTE_MAC(a3, u, v[3]);
    }
    store4(out, a0, a1, a2, a3);
}

FTTE_INLINE void store16(float *p, block16 b) {
    p[0] = b.v[0], p[1] = b.v[1], p[2] = b.v[2], p[3] = b.v[3];
    p[4] = b.v[4], p[5] = b.v[5], p[6] = b.v[6], p[7] = b.v[7];
    p[8] = b.v[8], p[9] = b.v[9], p[10] = b.v[10], p[11] = b.v[11];
    p[12] = b.v[12], p[13] = b.v[13], p[14] = b.v[14], p[15] = b.v[15];
}

/* acc + g * x. */
FTTE_INLINE block16 fma16(block16 acc, float g, block16 x) {
    FTTE_MAC(acc.v[0], g, x.v[0]); FTTE_MAC(acc.v[1], g, x.v[1]);
    FTTE_MAC(acc.v[2], g, x.v[2]); FTTE_MAC(acc.v[3], g, x.v[3]);
    FTTE_MAC(acc.v[4], g, x.v[4]); FTTE_MAC(acc.v[5], g, x.v[5]);
    FTTE_MAC(acc.v[6], g, x.v[6]); FTTE_MAC(acc.v[7], g, x.v[7]);
    FTTE_MAC(acc.v[8], g, x.v[8]); FTTE_MAC(acc.v[9], g, x.v[9]);
    FTTE_MAC(acc.v[10], g, x.v[10]); FTTE_MAC(acc.v[11], g, x.v[11]);
    FTTE_MAC(acc.v[12], g, x.v[12]); FTTE_MAC(acc.v[13], g, x.v[13]);
    FTTE_MAC(acc.v[14], g, x.v[14]); FTTE_MAC(acc.v[15], g, x.v[15]);
    return acc;
}

/* ---------------------------------------------------------------------------------------- */
/* Forward: y[r][o] = b[o] + x[r] . w[o].                                                     */
/* ---------------------------------------------------------------------------------------- */

/* Rows x0..x3 against weight rows w0..w3 (both of k floats), into y (rows ys apart): each
 * loaded input feeds 4 MACs, and so does each loaded weight. */
FTTE_INLINE void forward_4x4_body(int32_t k, const float *x, const float *w0, const float *w1,
                                  const float *w2, const float *w3, const float *bias, float *y,
                                  int32_t ys) {
    const float *x0 = x, *x1 = x0 + k, *x2 = x1 + k, *x3 = x2 + k;
    float b0 = 0.0f, b1 = 0.0f, b2 = 0.0f, b3 = 0.0f;
    if (bias) {
        b0 = bias[0], b1 = bias[1], b2 = bias[2], b3 = bias[3];
    }
    float a00 = b0, a01 = b1, a02 = b2, a03 = b3, a10 = b0, a11 = b1, a12 = b2, a13 = b3;
    float a20 = b0, a21 = b1, a22 = b2, a23 = b3, a30 = b0, a31 = b1, a32 = b2, a33 = b3;
    /* Pointer increments and an end pointer, not an index: so written, GCC keeps 8 pointers
     * that its loads post-increment, where from x0[i] it derives some from others (+1 add). */
    for (const float *end = x1; x0 != end;) {
        const float v0 = *w0++, v1 = *w1++, v2 = *w2++, v3 = *w3++;
        float u = *x0++;
        FTTE_MAC(a00, u, v0); FTTE_MAC(a01, u, v1); FTTE_MAC(a02, u, v2); FTTE_MAC(a03, u, v3);
        u = *x1++;
        FTTE_MAC(a10, u, v0); FTTE_MAC(a11, u, v1); FTTE_MAC(a12, u, v2); FTTE_MAC(a13, u, v3);
        u = *x2++;
        FTTE_MAC(a20, u, v0); FTTE_MAC(a21, u, v1); FTTE_MAC(a22, u, v2); FTTE_MAC(a23, u, v3);
        u = *x3++;
        FTTE_MAC(a30, u, v0); FTTE_MAC(a31, u, v1); FTTE_MAC(a32, u, v2); FTTE_MAC(a33, u, v3);
    }
    store4(y, a00, a01, a02, a03);
    store4(y + ys, a10, a11, a12, a13);
    store4(y + 2 * ys, a20, a21, a22, a23);
    store4(y + 3 * ys, a30, a31, a32, a33);
}

static void forward_4x4(int32_t k, const float *x, const float *w, const float *bias, float *y,
                        int32_t ys) {
    forward_4x4_body(k, x, w, w + k, w + 2 * k, w + 3 * k, bias, y, ys);
}

/* The same with the 4 weight rows at w[0..3]. */
static void forward_4x4_ptrs(int32_t k, const float *x, const float *const *w, const float *bias,
                             float *y, int32_t ys) {
    forward_4x4_body(k, x, w[0], w[1], w[2], w[3], bias, y, ys);
}

/* Four rows of x (k floats each) into y: 4x4 tiles, then one output column at a time. */
static void forward_rows4(int32_t k, int32_t count, const float *x, const float *w,
                          const float *bias, float *y, int32_t ys) {
    int32_t o = 0;
    for (; o + 4 <= count; o += 4) forward_4x4(k, x, w + o * k, bias ? bias + o : 0, y + o, ys);
    for (; o < count; o++) {
        float *yo = y + o;
        yo[0] = yo[ys] = yo[2 * ys] = yo[3 * ys] = bias ? bias[o] : 0.0f;
        strip_4x1(k, x, 1, k, w + o * k, 1, yo, ys);
    }
}

void ftte_rows_forward(int32_t rows, int32_t in_c, int32_t out_c, ftte_slice slice,
                       const float *input, const float *weights, const float *bias,
                       float *output) {
    const int32_t k = in_c;
    float *y = output + slice.begin;
    int32_t r = 0;
    for (; r + 4 <= rows; r += 4)
        forward_rows4(k, slice.count, input + r * k, weights, bias, y + r * out_c, out_c);
    for (; r < rows; r++)
        ftte_rows_forward_row(k, slice.count, input + r * k, weights, bias, y + r * out_c);
}

/* The forward of count <= FTTE_ROWS_CHUNK outputs, row o at wp[o], into y (rows out_c apart):
 * the tiles above, 4 consecutive outputs whatever their runs. */
static void forward_ptrs(int32_t rows, int32_t k, int32_t out_c, int32_t count,
                         const float *const *wp, const float *input, const float *bias,
                         float *y) {
    int32_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *x = input + r * k;
        float *yr = y + r * out_c;
        int32_t o = 0;
        for (; o + 4 <= count; o += 4)
            forward_4x4_ptrs(k, x, wp + o, bias ? bias + o : 0, yr + o, out_c);
        for (; o < count; o++) {
            float *yo = yr + o;
            yo[0] = yo[out_c] = yo[2 * out_c] = yo[3 * out_c] = bias ? bias[o] : 0.0f;
            strip_4x1(k, x, 1, k, wp[o], 1, yo, out_c);
        }
    }
    for (; r < rows; r++)
        ftte_rows_forward_row_ptrs(k, count, input + r * k, wp, bias, y + r * out_c);
}

void ftte_rows_forward_rows(int32_t rows, int32_t in_c, int32_t out_c, ftte_weight_rows w,
                            const float *input, const float *bias, float *output) {
    const float *wp[FTTE_ROWS_CHUNK];
    w.len = in_c;
    ftte_row_cursor cursor = {&w, 0, 0};
    for (int32_t o = 0; o < out_c; o += FTTE_ROWS_CHUNK) {
        const int32_t count = ftte_rows_take(&cursor, out_c - o, wp);
        forward_ptrs(rows, in_c, out_c, count, wp, input, bias ? bias + o : 0, output + o);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Backward input: gx[r][i] += sum_o gy[r][o] * w[o][i].                                      */
/* ---------------------------------------------------------------------------------------- */

/* Rows j < 4 of gy (stride gys, count floats) against w (count rows of stride k) into 4
 * columns of gx (stride k): per o, 4 gradient and 4 weight loads feed 16 MACs. */
static void backward_input_4x4(int32_t count, const float *gy, int32_t gys, const float *w,
                               int32_t k, float *gx) {
    const float *g0 = gy, *g1 = g0 + gys, *g2 = g1 + gys, *g3 = g2 + gys;
    float *x0 = gx, *x1 = x0 + k, *x2 = x1 + k, *x3 = x2 + k;
    float a00 = x0[0], a01 = x0[1], a02 = x0[2], a03 = x0[3];
    float a10 = x1[0], a11 = x1[1], a12 = x1[2], a13 = x1[3];
    float a20 = x2[0], a21 = x2[1], a22 = x2[2], a23 = x2[3];
    float a30 = x3[0], a31 = x3[1], a32 = x3[2], a33 = x3[3];
    for (const float *end = g0 + count; g0 != end; w += k) {
        const float v0 = w[0], v1 = w[1], v2 = w[2], v3 = w[3];
        float u = *g0++;
        FTTE_MAC(a00, u, v0); FTTE_MAC(a01, u, v1); FTTE_MAC(a02, u, v2); FTTE_MAC(a03, u, v3);
        u = *g1++;
        FTTE_MAC(a10, u, v0); FTTE_MAC(a11, u, v1); FTTE_MAC(a12, u, v2); FTTE_MAC(a13, u, v3);
        u = *g2++;
        FTTE_MAC(a20, u, v0); FTTE_MAC(a21, u, v1); FTTE_MAC(a22, u, v2); FTTE_MAC(a23, u, v3);
        u = *g3++;
        FTTE_MAC(a30, u, v0); FTTE_MAC(a31, u, v1); FTTE_MAC(a32, u, v2); FTTE_MAC(a33, u, v3);
    }
    store4(x0, a00, a01, a02, a03);
    store4(x1, a10, a11, a12, a13);
    store4(x2, a20, a21, a22, a23);
    store4(x3, a30, a31, a32, a33);
}

#if FTTE_ARM_VLDM
/* gx[0..16) += sum_o g[o] * w[o][0..16) over count >= 1 weight rows k apart, the 16 sums in
 * s16-s31: per o, 3 VLDM and 16 VFMA (22 instructions with the row step and the loop). */
static void backward_input_16_vldm(int32_t k, int32_t count, const float *g, const float *w,
                                   float *gx) {
    const float *end = g + count;
    const int32_t stride = (k - 8) * (int32_t)sizeof(float); /* after the first 8 */
    __asm__ volatile("vldm %[gx], {s16-s31}\n\t"
            "1:\n\t"
            "vldmia %[g]!, {s0}\n\t"
            "vldmia %[w]!, {s1-s8}\n\t"
            "vfma.f32 s16, s0, s1\n\t"
            "vfma.f32 s17, s0, s2\n\t"
            "vfma.f32 s18, s0, s3\n\t"
            "vfma.f32 s19, s0, s4\n\t"
            "vfma.f32 s20, s0, s5\n\t"
            "vfma.f32 s21, s0, s6\n\t"
            "vfma.f32 s22, s0, s7\n\t"
            "vfma.f32 s23, s0, s8\n\t"
            "vldm %[w], {s1-s8}\n\t"
            "vfma.f32 s24, s0, s1\n\t"
            "vfma.f32 s25, s0, s2\n\t"
            "vfma.f32 s26, s0, s3\n\t"
            "vfma.f32 s27, s0, s4\n\t"
            "vfma.f32 s28, s0, s5\n\t"
            "vfma.f32 s29, s0, s6\n\t"
            "vfma.f32 s30, s0, s7\n\t"
            "vfma.f32 s31, s0, s8\n\t"
            "add %[w], %[w], %[stride]\n\t"
            "cmp %[g], %[end]\n\t"
            "bne 1b\n\t"
            "vstm %[gx], {s16-s31}"
            : [g] "+r"(g), [w] "+r"(w)
            : [gx] "r"(gx), [end] "r"(end), [stride] "r"(stride)
            : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s16", "s17", "s18", "s19",
              "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s28", "s29", "s30", "s31",
              "cc", "memory");
}
#endif

/* One row: gx[i] += sum_o g[o] * w[o][i], 16 gradient sums at a time in registers. */
static void backward_input_row(int32_t k, int32_t count, const float *g, const float *w,
                               float *gx) {
    int32_t i = 0;
    for (; i + BLOCK16 <= k; i += BLOCK16) {
#if FTTE_ARM_VLDM
        backward_input_16_vldm(k, count, g, w + i, gx + i);
        continue;
#endif
        block16 acc = load16(gx + i);
        const float *wo = w + i;
        for (int32_t o = 0; o < count; o++, wo += k) acc = fma16(acc, g[o], load16(wo));
        store16(gx + i, acc);
    }
    for (; i + 4 <= k; i += 4) strip_1x4(count, g, 1, w + i, k, gx + i);
    for (; i < k; i++) gx[i] = dot(count, g, 1, w + i, k, gx[i]);
}

void ftte_rows_backward_input(int32_t rows, int32_t in_c, int32_t out_c, ftte_slice slice,
                              const float *grad_output, const float *weights,
                              float *grad_input) {
    const int32_t k = in_c, count = slice.count;
    const float *gy = grad_output + slice.begin;
    int32_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *g = gy + r * out_c;
        float *gx = grad_input + r * k;
        int32_t i = 0;
        for (; i + 4 <= k; i += 4) backward_input_4x4(count, g, out_c, weights + i, k, gx + i);
        for (; i < k; i++) strip_4x1(count, g, 1, out_c, weights + i, k, gx + i, k);
    }
    for (; r < rows; r++) backward_input_row(k, count, gy + r * out_c, weights, grad_input + r * k);
}

/* The same with weight row o at wp[o] (+ i): backward_input_4x4. */
static void backward_input_4x4_ptrs(int32_t count, const float *gy, int32_t gys,
                                    const float *const *wp, int32_t i, int32_t k, float *gx) {
    const float *g0 = gy, *g1 = g0 + gys, *g2 = g1 + gys, *g3 = g2 + gys;
    float *x0 = gx, *x1 = x0 + k, *x2 = x1 + k, *x3 = x2 + k;
    float a00 = x0[0], a01 = x0[1], a02 = x0[2], a03 = x0[3];
    float a10 = x1[0], a11 = x1[1], a12 = x1[2], a13 = x1[3];
    float a20 = x2[0], a21 = x2[1], a22 = x2[2], a23 = x2[3];
    float a30 = x3[0], a31 = x3[1], a32 = x3[2], a33 = x3[3];
    for (const float *end = g0 + count; g0 != end; wp++) {
        const float *w = *wp + i;
        const float v0 = w[0], v1 = w[1], v2 = w[2], v3 = w[3];
        float u = *g0++;
        FTTE_MAC(a00, u, v0); FTTE_MAC(a01, u, v1); FTTE_MAC(a02, u, v2); FTTE_MAC(a03, u, v3);
        u = *g1++;
        FTTE_MAC(a10, u, v0); FTTE_MAC(a11, u, v1); FTTE_MAC(a12, u, v2); FTTE_MAC(a13, u, v3);
        u = *g2++;
        FTTE_MAC(a20, u, v0); FTTE_MAC(a21, u, v1); FTTE_MAC(a22, u, v2); FTTE_MAC(a23, u, v3);
        u = *g3++;
        FTTE_MAC(a30, u, v0); FTTE_MAC(a31, u, v1); FTTE_MAC(a32, u, v2); FTTE_MAC(a33, u, v3);
    }
    store4(x0, a00, a01, a02, a03);
    store4(x1, a10, a11, a12, a13);
    store4(x2, a20, a21, a22, a23);
    store4(x3, a30, a31, a32, a33);
}

#if FTTE_ARM_VLDM
/* backward_input_16_vldm with weight row o at wp[o] + i: one LDR and one ADD per row where the
 * contiguous rows take one ADD. */
static void backward_input_16_vldm_ptrs(int32_t i, int32_t count, const float *g,
                                        const float *const *wp, float *gx) {
    const float *end = g + count, *w;
    const int32_t offset = i * (int32_t)sizeof(float);
    __asm__ volatile("vldm %[gx], {s16-s31}\n\t"
            "1:\n\t"
            "ldr %[w], [%[wp]], #4\n\t"
            "vldmia %[g]!, {s0}\n\t"
            "add %[w], %[w], %[offset]\n\t"
            "vldmia %[w]!, {s1-s8}\n\t"
            "vfma.f32 s16, s0, s1\n\t"
            "vfma.f32 s17, s0, s2\n\t"
            "vfma.f32 s18, s0, s3\n\t"
            "vfma.f32 s19, s0, s4\n\t"
            "vfma.f32 s20, s0, s5\n\t"
            "vfma.f32 s21, s0, s6\n\t"
            "vfma.f32 s22, s0, s7\n\t"
            "vfma.f32 s23, s0, s8\n\t"
            "vldm %[w], {s1-s8}\n\t"
            "vfma.f32 s24, s0, s1\n\t"
            "vfma.f32 s25, s0, s2\n\t"
            "vfma.f32 s26, s0, s3\n\t"
            "vfma.f32 s27, s0, s4\n\t"
            "vfma.f32 s28, s0, s5\n\t"
            "vfma.f32 s29, s0, s6\n\t"
            "vfma.f32 s30, s0, s7\n\t"
            "vfma.f32 s31, s0, s8\n\t"
            "cmp %[g], %[end]\n\t"
            "bne 1b\n\t"
            "vstm %[gx], {s16-s31}"
            : [g] "+r"(g), [wp] "+r"(wp), [w] "=&r"(w)
            : [gx] "r"(gx), [end] "r"(end), [offset] "r"(offset)
            : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s16", "s17", "s18", "s19",
              "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s28", "s29", "s30", "s31",
              "cc", "memory");
}
#endif

/* backward_input_row with weight row o at wp[o]. */
static void backward_input_row_ptrs(int32_t k, int32_t count, const float *g,
                                    const float *const *wp, float *gx) {
    int32_t i = 0;
    for (; i + BLOCK16 <= k; i += BLOCK16) {
#if FTTE_ARM_VLDM
        backward_input_16_vldm_ptrs(i, count, g, wp, gx + i);
        continue;
#endif
        block16 acc = load16(gx + i);
        for (int32_t o = 0; o < count; o++) acc = fma16(acc, g[o], load16(wp[o] + i));
        store16(gx + i, acc);
    }
    for (; i + 4 <= k; i += 4) {
        float a0 = gx[i], a1 = gx[i + 1], a2 = gx[i + 2], a3 = gx[i + 3];
        for (int32_t o = 0; o < count; o++) {
            const float u = g[o], *v = wp[o] + i;
            FTTE_MAC(a0, u, v[0]); FTTE_MAC(a1, u, v[1]); FTTE_MAC(a2, u, v[2]);
            FTTE_MAC(a3, u, v[3]);
        }
        store4(gx + i, a0, a1, a2, a3);
    }
    for (; i < k; i++)
        for (int32_t o = 0; o < count; o++) FTTE_MAC(gx[i], g[o], wp[o][i]);
}

/* count <= FTTE_ROWS_CHUNK outputs from gy (rows out_c apart), row o at wp[o]. */
static void backward_input_ptrs(int32_t rows, int32_t k, int32_t out_c, int32_t count,
                                const float *const *wp, const float *gy, float *grad_input) {
    int32_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *g = gy + r * out_c;
        float *gx = grad_input + r * k;
        int32_t i = 0;
        for (; i + 4 <= k; i += 4) backward_input_4x4_ptrs(count, g, out_c, wp, i, k, gx + i);
        for (; i < k; i++)
            for (int32_t j = 0; j < 4; j++) {
                float a = gx[j * k + i];
                for (int32_t o = 0; o < count; o++) FTTE_MAC(a, g[j * out_c + o], wp[o][i]);
                gx[j * k + i] = a;
            }
    }
    for (; r < rows; r++)
        backward_input_row_ptrs(k, count, gy + r * out_c, wp, grad_input + r * k);
}

void ftte_rows_backward_input_rows(int32_t rows, int32_t in_c, int32_t out_c,
                                   ftte_weight_rows w, const float *grad_output,
                                   float *grad_input) {
    const float *wp[FTTE_ROWS_CHUNK];
    w.len = in_c;
    ftte_row_cursor cursor = {&w, 0, 0};
    for (int32_t o = 0; o < out_c; o += FTTE_ROWS_CHUNK) {
        const int32_t count = ftte_rows_take(&cursor, out_c - o, wp);
        backward_input_ptrs(rows, in_c, out_c, count, wp, grad_output + o, grad_input);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Backward weight: gw[o][i] += sum_r gy[r][o] * x[r][i].                                     */
/* ---------------------------------------------------------------------------------------- */

/* Columns o < 4 of gy (row stride gys) against 6 columns of x (row stride k) over all rows,
 * into 4 rows of gw (stride k). 24 accumulators + 4 gradients + a streamed input fill the
 * FPU's 32 registers; per row, 4 + 6 loads feed 24 MACs, and each accumulator's load and
 * store is shared by `rows` MACs. */
static void backward_weight_4x6(int32_t rows, const float *gy, int32_t gys, const float *x,
                                int32_t k, float *gw) {
    float *w0 = gw, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
    float a00 = w0[0], a01 = w0[1], a02 = w0[2], a03 = w0[3], a04 = w0[4], a05 = w0[5];
    float a10 = w1[0], a11 = w1[1], a12 = w1[2], a13 = w1[3], a14 = w1[4], a15 = w1[5];
    float a20 = w2[0], a21 = w2[1], a22 = w2[2], a23 = w2[3], a24 = w2[4], a25 = w2[5];
    float a30 = w3[0], a31 = w3[1], a32 = w3[2], a33 = w3[3], a34 = w3[4], a35 = w3[5];
    for (const float *end = x + rows * k; x != end; gy += gys, x += k) { /* no row counter */
        const float g0 = gy[0], g1 = gy[1], g2 = gy[2], g3 = gy[3];
        float v = x[0];
        FTTE_MAC(a00, g0, v); FTTE_MAC(a10, g1, v); FTTE_MAC(a20, g2, v); FTTE_MAC(a30, g3, v);
        v = x[1];
        FTTE_MAC(a01, g0, v); FTTE_MAC(a11, g1, v); FTTE_MAC(a21, g2, v); FTTE_MAC(a31, g3, v);
        v = x[2];
        FTTE_MAC(a02, g0, v); FTTE_MAC(a12, g1, v); FTTE_MAC(a22, g2, v); FTTE_MAC(a32, g3, v);
        v = x[3];
        FTTE_MAC(a03, g0, v); FTTE_MAC(a13, g1, v); FTTE_MAC(a23, g2, v); FTTE_MAC(a33, g3, v);
        v = x[4];
        FTTE_MAC(a04, g0, v); FTTE_MAC(a14, g1, v); FTTE_MAC(a24, g2, v); FTTE_MAC(a34, g3, v);
        v = x[5];
        FTTE_MAC(a05, g0, v); FTTE_MAC(a15, g1, v); FTTE_MAC(a25, g2, v); FTTE_MAC(a35, g3, v);
    }
    store4(w0, a00, a01, a02, a03), w0[4] = a04, w0[5] = a05;
    store4(w1, a10, a11, a12, a13), w1[4] = a14, w1[5] = a15;
    store4(w2, a20, a21, a22, a23), w2[4] = a24, w2[5] = a25;
    store4(w3, a30, a31, a32, a33), w3[4] = a34, w3[5] = a35;
}

/* The same for 4 columns of x (the last k % 6 inputs, when there are 4 or 5). */
static void backward_weight_4x4(int32_t rows, const float *gy, int32_t gys, const float *x,
                                int32_t k, float *gw) {
    float *w0 = gw, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;
    float a00 = w0[0], a01 = w0[1], a02 = w0[2], a03 = w0[3];
    float a10 = w1[0], a11 = w1[1], a12 = w1[2], a13 = w1[3];
    float a20 = w2[0], a21 = w2[1], a22 = w2[2], a23 = w2[3];
    float a30 = w3[0], a31 = w3[1], a32 = w3[2], a33 = w3[3];
    for (const float *end = x + rows * k; x != end; gy += gys, x += k) {
        const float v0 = x[0], v1 = x[1], v2 = x[2], v3 = x[3];
        float u = gy[0];
        FTTE_MAC(a00, u, v0); FTTE_MAC(a01, u, v1); FTTE_MAC(a02, u, v2); FTTE_MAC(a03, u, v3);
        u = gy[1];
        FTTE_MAC(a10, u, v0); FTTE_MAC(a11, u, v1); FTTE_MAC(a12, u, v2); FTTE_MAC(a13, u, v3);
        u = gy[2];
        FTTE_MAC(a20, u, v0); FTTE_MAC(a21, u, v1); FTTE_MAC(a22, u, v2); FTTE_MAC(a23, u, v3);
        u = gy[3];
        FTTE_MAC(a30, u, v0); FTTE_MAC(a31, u, v1); FTTE_MAC(a32, u, v2); FTTE_MAC(a33, u, v3);
    }
    store4(w0, a00, a01, a02, a03);
    store4(w1, a10, a11, a12, a13);
    store4(w2, a20, a21, a22, a23);
    store4(w3, a30, a31, a32, a33);
}

#if FTTE_ARM_VLDM
/* gw[o][0..16) += g[o] * x[0..16) for count >= 1 rows of gw k apart, the x in s16-s31: per
 * o, 1 + 2 VLDM, 16 VFMA and 2 VSTM (24 instructions with the row step and the loop). */
static void backward_weight_16_vldm(int32_t k, int32_t count, const float *x, const float *g,
                                    float *gw) {
    const float *end = g + count;
    const int32_t stride = (k - 16) * (int32_t)sizeof(float); /* after the 16 */
    __asm__ volatile("vldm %[x], {s16-s31}\n\t"
            "1:\n\t"
            "vldmia %[g]!, {s0}\n\t"
            "vldm %[gw], {s1-s8}\n\t"
            "vfma.f32 s1, s0, s16\n\t"
            "vfma.f32 s2, s0, s17\n\t"
            "vfma.f32 s3, s0, s18\n\t"
            "vfma.f32 s4, s0, s19\n\t"
            "vfma.f32 s5, s0, s20\n\t"
            "vfma.f32 s6, s0, s21\n\t"
            "vfma.f32 s7, s0, s22\n\t"
            "vfma.f32 s8, s0, s23\n\t"
            "vstmia %[gw]!, {s1-s8}\n\t"
            "vldm %[gw], {s1-s8}\n\t"
            "vfma.f32 s1, s0, s24\n\t"
            "vfma.f32 s2, s0, s25\n\t"
            "vfma.f32 s3, s0, s26\n\t"
            "vfma.f32 s4, s0, s27\n\t"
            "vfma.f32 s5, s0, s28\n\t"
            "vfma.f32 s6, s0, s29\n\t"
            "vfma.f32 s7, s0, s30\n\t"
            "vfma.f32 s8, s0, s31\n\t"
            "vstmia %[gw]!, {s1-s8}\n\t"
            "add %[gw], %[gw], %[stride]\n\t"
            "cmp %[g], %[end]\n\t"
            "bne 1b"
            : [g] "+r"(g), [gw] "+r"(gw)
            : [x] "r"(x), [end] "r"(end), [stride] "r"(stride)
            : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s16", "s17", "s18", "s19",
              "s20", "s21", "s22", "s23", "s24", "s25", "s26", "s27", "s28", "s29", "s30", "s31",
              "cc", "memory");
}
#endif

/* One row (the outer product gw[o] += g[o] * x): 16 inputs in registers at a time, each
 * gradient element loaded, updated and stored once. */
static void backward_weight_row(int32_t k, int32_t count, const float *x, const float *g,
                                float *gw) {
    int32_t i = 0;
    for (; i + BLOCK16 <= k; i += BLOCK16) {
#if FTTE_ARM_VLDM
        backward_weight_16_vldm(k, count, x + i, g, gw + i);
        continue;
#endif
        const block16 xs = load16(x + i);
        float *wo = gw + i;
        for (int32_t o = 0; o < count; o++, wo += k) store16(wo, fma16(load16(wo), g[o], xs));
    }
    if (i == k) return;
    for (int32_t o = 0; o < count; o++)
        for (int32_t t = i; t < k; t++) FTTE_MAC(gw[o * k + t], g[o], x[t]);
}

void ftte_rows_backward_weight(int32_t rows, int32_t in_c, int32_t out_c, ftte_slice slice,
                               const float *input, const float *grad_output,
                               float *grad_weights) {
    const int32_t k = in_c, count = slice.count;
    const float *gy = grad_output + slice.begin;
    if (rows == 1) {
        backward_weight_row(k, count, input, gy, grad_weights);
        return;
    }
    int32_t o = 0;
    for (; o + 4 <= count; o += 4) {
        float *gw = grad_weights + o * k;
        int32_t i = 0;
        for (; i + 6 <= k; i += 6) backward_weight_4x6(rows, gy + o, out_c, input + i, k, gw + i);
        for (; i + 4 <= k; i += 4) backward_weight_4x4(rows, gy + o, out_c, input + i, k, gw + i);
        for (; i < k; i++) strip_4x1(rows, gy + o, out_c, 1, input + i, k, gw + i, k);
    }
    for (; o < count; o++) {
        float *gw = grad_weights + o * k;
        int32_t i = 0;
        for (; i + 4 <= k; i += 4) strip_1x4(rows, gy + o, out_c, input + i, k, gw + i);
        for (; i < k; i++) gw[i] = dot(rows, gy + o, out_c, input + i, k, gw[i]);
    }
}

#endif /* !FTTE_HOST_TILES */
