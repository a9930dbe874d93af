/*
 * Depthwise conv2d on a vector host (depthwise_host.h): NHWC keeps a pixel's channels
 * contiguous, so 8 channels go in one vector and every tap is one vector multiply-add. Each
 * element is summed in the order of the board's general loops (tap by tap, skipping taps over
 * the padding): the forward from the bias by ascending tap, the backward to the input from the
 * value in memory by ascending tap. The backward to the weights sums each output row from 0,
 * adds the rows in order to a sum from 0, and that to the gradient in memory.
 */
#include "depthwise_host.h"

#if FTTE_HOST_TILES
#include <stddef.h>

#include "conv_core.h"

/* Floats of the turned weights: 8 KB of stack, as the row matmul's panel. */
#define PANEL_FLOATS 2048

/* panel[t * stride + j] = weights[j * k + t] for the slice's channels j, zero up to whole
 * vectors. Returns the stride (channels rounded up to 8), or 0 when it would not fit. */
static int32_t turn(const ftte_layer *l, ftte_slice s, const float *weights, float *panel) {
    const int32_t k = l->kernel_h * l->kernel_w, stride = (s.count + 7) & ~7;
    if ((int64_t)k * stride > PANEL_FLOATS) return 0;
    for (int32_t t = 0; t < k; t++)
        for (int32_t j = 0; j < stride; j++)
            panel[t * stride + j] = j < s.count ? weights[(ptrdiff_t)j * k + t] : 0.0f;
    return stride;
}

/* The offset of the slice's first channel at pixel (b, y, x) of a tensor of shape t. */
static ptrdiff_t at(ftte_shape t, int32_t b, int32_t y, int32_t x, ftte_slice s) {
    return (((ptrdiff_t)b * t.h + y) * t.w + x) * t.c + s.begin;
}

/* acc[j] op= a[j] * b[j] over the slice's channels: whole vectors, then the last partial one. */
FTTE_INLINE void mac_row(int32_t count, float *acc, const float *a, const float *b) {
    int32_t j = 0;
    for (; j + 8 <= count; j += 8) {
        vec8 cv, av, bv;
        load8(&cv, acc + j), load8(&av, a + j), load8(&bv, b + j);
        FTTE_MAC(cv, av, bv);
        store8(acc + j, &cv);
    }
    if (j < count) {
        vec8 cv, av, bv;
        load_lanes(&cv, acc + j, count - j), load_lanes(&av, a + j, count - j);
        load_lanes(&bv, b + j, count - j);
        FTTE_MAC(cv, av, bv);
        store_lanes(acc + j, &cv, count - j);
    }
}

/* Layer geometry in locals: the vector stores go through memcpy, which may alias *l. */
typedef struct {
    ftte_shape in, out;
    int32_t kh, kw, sh, sw, top, left;
} geometry;

static geometry geometry_of(const ftte_layer *l) {
    geometry g = {l->in, l->out, l->kernel_h, l->kernel_w, l->stride_h, l->stride_w,
                  l->pad_top, l->pad_left};
    return g;
}

/* P output pixels' `lanes` channels (pixel p's input window p * sw pixels after the first's,
 * its output one pixel after): each the bias, then a tap at a time over the window's taps
 * [ky_lo, ky_hi) x [kx_lo, kx_hi), in a register. P sums side by side hide the adds' latency. */
FTTE_INLINE void forward_pixels(const geometry *g, const float *x, ptrdiff_t corner,
                                const float *panel, int32_t stride, const float *bias,
                                int32_t lanes, const int32_t k[4], float *o, ptrdiff_t o_step,
                                const int32_t P) {
    const ptrdiff_t x_step = (ptrdiff_t)g->sw * g->in.c;
    vec8 acc[4];
    for (int32_t p = 0; p < P; p++) {
        const vec8 zero = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        acc[p] = zero;
        if (bias) load_lanes(&acc[p], bias, lanes);
    }
    for (int32_t ky = k[0]; ky < k[1]; ky++)
        for (int32_t kx = k[2]; kx < k[3]; kx++) {
            const float *xt = x + corner + ((ptrdiff_t)ky * g->in.w + kx) * g->in.c;
            vec8 wv;
            load8(&wv, panel + (ky * g->kw + kx) * stride);
            for (int32_t p = 0; p < P; p++) {
                vec8 xv;
                load_lanes(&xv, xt + p * x_step, lanes);
                FTTE_MAC(acc[p], xv, wv);
            }
        }
    for (int32_t p = 0; p < P; p++) store_lanes(o + p * o_step, &acc[p], lanes);
}

#define FORWARD_PIXELS(P)                                                                      \
    FTTE_NOINLINE static void forward_##P(const geometry *g, const float *x, ptrdiff_t corner,  \
                                          const float *panel, int32_t stride,                  \
                                          const float *bias, int32_t count, const int32_t k[4], \
                                          float *o) {                                          \
        int32_t j = 0;                                                                         \
        for (; j + 8 <= count; j += 8)                                                         \
            forward_pixels(g, x + j, corner, panel + j, stride, bias ? bias + j : 0, 8, k,     \
                           o + j, g->out.c, P);                                                \
        if (j < count)                                                                         \
            forward_pixels(g, x + j, corner, panel + j, stride, bias ? bias + j : 0,           \
                           count - j, k, o + j, g->out.c, P);                                  \
    }
FORWARD_PIXELS(4) FORWARD_PIXELS(1)
#undef FORWARD_PIXELS

int ftte_dw_host_forward(const ftte_layer *l, int32_t n, ftte_slice s, const float *input,
                         const float *weights, const float *bias, float *output) {
    float panel[PANEL_FLOATS];
    const int32_t stride = turn(l, s, weights, panel);
    if (!stride) return 0;
    const geometry g = geometry_of(l);
    for (int32_t b = 0; b < n; b++)
        for (int32_t oy = 0; oy < g.out.h; oy++) {
            const int32_t y = oy * g.sh - g.top;
            int32_t k[4];
            ftte_conv_taps(y, g.kh, g.in.h, &k[0], &k[1]);
            for (int32_t ox = 0; ox < g.out.w;) {
                const int32_t x = ox * g.sw - g.left;
                /* 4 pixels whose windows are all inside along x, or one */
                const int P = ox + 4 <= g.out.w && x >= 0 && x + 3 * g.sw + g.kw <= g.in.w ? 4 : 1;
                ftte_conv_taps(x, g.kw, g.in.w, &k[2], &k[3]);
                /* the window's corner, maybe in the padding: only taps inside are read */
                const ptrdiff_t corner = at(g.in, b, y, x, s);
                (P == 4 ? forward_4 : forward_1)(&g, input, corner, panel, stride, bias, s.count,
                                                 k, output + at(g.out, b, oy, ox, s));
                ox += P;
            }
        }
    return 1;
}

/* Stride 1: P input pixels' `lanes` channels, each from its value in memory plus its taps
 * [k[0], k[1]) x [k[2], k[3]) ascending (the order of the tap-by-tap loop below), whose
 * gradient pixel is (iy + top - ky, ix + p + left - kx), in registers. */
FTTE_INLINE void backward_pixels(const geometry *g, const float *go, ptrdiff_t sample,
                                 int32_t iy, int32_t ix, const float *panel, int32_t stride,
                                 int32_t lanes, const int32_t k[4], float *gi, const int32_t P) {
    vec8 acc[4];
    for (int32_t p = 0; p < P; p++) load_lanes(&acc[p], gi + (ptrdiff_t)p * g->in.c, lanes);
    for (int32_t ky = k[0]; ky < k[1]; ky++)
        for (int32_t kx = k[2]; kx < k[3]; kx++) {
            const float *gp = go + sample +
                              ((ptrdiff_t)(iy + g->top - ky) * g->out.w + ix + g->left - kx) *
                                  g->out.c;
            vec8 wv;
            load8(&wv, panel + (ky * g->kw + kx) * stride);
            for (int32_t p = 0; p < P; p++) {
                vec8 gv;
                load_lanes(&gv, gp + (ptrdiff_t)p * g->out.c, lanes);
                FTTE_MAC(acc[p], gv, wv);
            }
        }
    for (int32_t p = 0; p < P; p++) store_lanes(gi + (ptrdiff_t)p * g->in.c, &acc[p], lanes);
}

#define BACKWARD_PIXELS(P)                                                                     \
    FTTE_NOINLINE static void backward_##P(const geometry *g, const float *go, ptrdiff_t sample, \
                                           int32_t iy, int32_t ix, const float *panel,         \
                                           int32_t stride, int32_t count, const int32_t k[4],  \
                                           float *gi) {                                        \
        int32_t j = 0;                                                                         \
        for (; j + 8 <= count; j += 8)                                                         \
            backward_pixels(g, go + j, sample, iy, ix, panel + j, stride, 8, k, gi + j, P);    \
        if (j < count)                                                                         \
            backward_pixels(g, go + j, sample, iy, ix, panel + j, stride, count - j, k, gi + j, \
                            P);                                                                \
    }
BACKWARD_PIXELS(4) BACKWARD_PIXELS(1)
#undef BACKWARD_PIXELS

/* Stride 1, input pixel by input pixel (4 side by side where all their taps along x land
 * inside grad_output). */
static void backward_input_s1(const ftte_layer *l, int32_t n, ftte_slice s,
                              const float *grad_output, const float *panel, int32_t stride,
                              float *grad_input) {
    const geometry g = geometry_of(l);
    const ftte_slice none = {0, 0};
    for (int32_t b = 0; b < n; b++)
        for (int32_t iy = 0; iy < g.in.h; iy++) {
            int32_t k[4]; /* taps with 0 <= iy + top - ky < out.h, and so along x */
            k[0] = iy + g.top - g.out.h + 1 > 0 ? iy + g.top - g.out.h + 1 : 0;
            k[1] = iy + g.top + 1 < g.kh ? iy + g.top + 1 : g.kh;
            for (int32_t ix = 0; ix < g.in.w;) {
                const int32_t x = ix + g.left; /* the gradient column of tap kx: x - kx */
                const int P = ix + 4 <= g.in.w && x - (g.kw - 1) >= 0 && x + 3 < g.out.w ? 4 : 1;
                k[2] = x - g.out.w + 1 > 0 ? x - g.out.w + 1 : 0;
                k[3] = x + 1 < g.kw ? x + 1 : g.kw;
                (P == 4 ? backward_4 : backward_1)(&g, grad_output + s.begin,
                                                   at(g.out, b, 0, 0, none), iy, ix, panel,
                                                   stride, s.count, k,
                                                   grad_input + at(g.in, b, iy, ix, s));
                ix += P;
            }
        }
}

int ftte_dw_host_backward_input(const ftte_layer *l, int32_t n, ftte_slice s,
                                const float *grad_output, const float *weights,
                                float *grad_input) {
    float panel[PANEL_FLOATS];
    const int32_t stride = turn(l, s, weights, panel);
    if (!stride) return 0;
    if (l->stride_h == 1 && l->stride_w == 1) {
        backward_input_s1(l, n, s, grad_output, panel, stride, grad_input);
        return 1;
    }
    const ftte_shape in = l->in, out = l->out;
    const int32_t kh = l->kernel_h, kw = l->kernel_w, sh = l->stride_h, sw = l->stride_w;
    const int32_t top = l->pad_top, left = l->pad_left, count = s.count;
    const ptrdiff_t in_step = (ptrdiff_t)sw * in.c;
    for (int32_t ky = 0; ky < kh; ky++)
        for (int32_t kx = 0; kx < kw; kx++) {
            ftte_conv_rect t;
            if (!ftte_conv_tap_rect(l, ky, kx, &t)) continue; /* only ever in the padding */
            const float *w = panel + (ky * kw + kx) * stride;
            const int32_t x = t.x_lo * sw - left + kx;
            for (int32_t b = 0; b < n; b++)
                for (int32_t oy = t.y_lo; oy < t.y_hi; oy++) {
                    const float *g = grad_output + at(out, b, oy, t.x_lo, s);
                    float *gi = grad_input + at(in, b, oy * sh - top + ky, x, s);
                    for (int32_t ox = t.x_lo; ox < t.x_hi; ox++, g += out.c, gi += in_step)
                        mac_row(count, gi, g, w);
                }
        }
    return 1;
}

/* sum_{b, y, x in the tap's rectangle} g * x for `lanes` channels, from 0, in registers: each
 * output row's terms from 0, then the rows' sums in order (over long rows of the batch one
 * running sum drifts further from the exact sum than the board's code does). */
FTTE_INLINE void weight_sums(const geometry *g, int32_t n, const ftte_conv_rect *t,
                             const float *grad_output, const float *input, int32_t lanes,
                             float *sums) {
    vec8 acc = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    const ptrdiff_t in_step = (ptrdiff_t)g->sw * g->in.c;
    const int32_t x = t->x_lo * g->sw - g->left + t->kx;
    for (int32_t b = 0; b < n; b++)
        for (int32_t oy = t->y_lo; oy < t->y_hi; oy++) {
            const ftte_slice none = {0, 0};
            const float *gp = grad_output + at(g->out, b, oy, t->x_lo, none);
            const float *xp = input + at(g->in, b, oy * g->sh - g->top + t->ky, x, none);
            vec8 row = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
            for (int32_t ox = t->x_lo; ox < t->x_hi; ox++, gp += g->out.c, xp += in_step) {
                vec8 gv, xv;
                load_lanes(&gv, gp, lanes), load_lanes(&xv, xp, lanes);
                FTTE_MAC(row, gv, xv);
            }
            acc += row;
        }
    store8(sums, &acc);
}

int ftte_dw_host_backward_weight(const ftte_layer *l, int32_t n, ftte_slice s,
                                 const float *input, const float *grad_output,
                                 float *grad_weights) {
    /* A tap's sums over the batch, from 0, in sums; then added to the gradient in memory. */
    float sums[PANEL_FLOATS];
    const int32_t count = s.count, stride = (count + 7) & ~7;
    if (stride > PANEL_FLOATS) return 0;
    const geometry g = geometry_of(l);
    const int32_t k = g.kh * g.kw;
    for (int32_t ky = 0; ky < g.kh; ky++)
        for (int32_t kx = 0; kx < g.kw; kx++) {
            ftte_conv_rect t;
            if (!ftte_conv_tap_rect(l, ky, kx, &t)) continue; /* only ever in the padding */
            int32_t j = 0;
            for (; j + 8 <= count; j += 8)
                weight_sums(&g, n, &t, grad_output + s.begin + j, input + s.begin + j, 8,
                            sums + j);
            if (j < count)
                weight_sums(&g, n, &t, grad_output + s.begin + j, input + s.begin + j,
                            count - j, sums + j);
            for (j = 0; j < count; j++)
                grad_weights[(ptrdiff_t)j * k + ky * g.kw + kx] += sums[j];
        }
    return 1;
}

#endif /* FTTE_HOST_TILES */
