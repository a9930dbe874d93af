/*
 * The convolution behind the conv2d and conv1d kernels (a conv1d is a conv2d of height 1).
 *
 * Every direction is a register-tiled product: 16 to 24 accumulators, each step of the
 * reduction loading one operand per tile row and one per tile column (a 4 x 4 tile: 8 loads
 * for 16 multiply-accumulates, 26 instructions on a Cortex-M4F; 6 x 4: 10 for 24, 36). What
 * the tile holds and what it reduces over differ:
 *
 *  forward          y[p][o] = b[o] + window(p) . w[o]. Tiles of 4 output positions x 6 (or
 *                   4, or 1) output channels, reduced over the window: kernel_h runs of
 *                   kernel_w * in.c contiguous input floats, in place, or copied with zeros
 *                   where the windows hang over the input's edge.
 *  backward_input   stride 1: the forward turned around. An input position takes the window
 *                   of grad_output around it against the weights' taps in reverse order:
 *                   gx[p][c] += sum over taps t, outputs o of window(p)[t][o] * w[o][T-1-t][c].
 *                   Tiles of 4 input positions x 4 (3, 2, 1) input channels, each gradient
 *                   read and written once; where the 4 windows are one pixel apart, two taps
 *                   share their loads (sum_outputs2).
 *                   Other strides: tap by tap. The output positions whose window puts tap t
 *                   inside the input form a rectangle; 4 of them x 4 input channels at a time,
 *                   gx[pixel under t][c] += sum_o gy[p][o] * w[o][t][c].
 *  backward_weight  tap by tap: gw[o][t][c] += sum over the tap's rectangle of positions of
 *                   gy[p][o] * input[pixel under t][c]. Tiles of 4 output x 4 input channels
 *                   (8 x 1-3 for a pixel's last channels) stay in registers over every position
 *                   of the rectangle (in place; no scratch).
 *
 * On a vector host (FTTE_HOST_TILES) the forward takes 16 output channels at a time in vector
 * registers instead (panel_run below); the backward passes are the board's everywhere.
 *
 * The windows of 4 positions are read by passes. Along an output row, clear of its edges,
 * passes come in runs, one call for the run, each pass a few pointer steps after the last.
 *
 * Loops step pointers and stop at an end pointer (no index): so written, GCC folds each
 * sequential load's pointer step into the load (post-increment) and keeps one register per
 * pointer, where from p[i] it derives some pointers from others at an extra add per load.
 * Tile functions are compiled out of line (FTTE_NOINLINE), one per tile shape: within the
 * loops over tiles, GCC spills their pointers.
 */
#include "conv_core.h"

#include <string.h>

#include "ftte_kernels.h"

typedef char ftte_conv_positions_must_be_4[FTTE_CONV_POSITIONS == 4 ? 1 : -1];

/* ---------------------------------------------------------------------------------------- */
/* Checks and scratch                                                                        */
/* ---------------------------------------------------------------------------------------- */

ftte_status ftte_conv_check(const ftte_layer *layer, int32_t op, int32_t n, ftte_slice slice) {
    if (layer == NULL) return FTTE_ERR_ARG;
    if (layer->op != op) return FTTE_ERR_UNSUPPORTED;
    ftte_status status = ftte_layer_validate(layer);
    if (status != FTTE_OK) return status;
    /* No board holds a larger kernel; the bound keeps all index arithmetic far from overflow
     * (padding < kernel) and the conv scratch bytes inside an int32. */
    if ((int64_t)layer->kernel_h * layer->kernel_w > FTTE_CONV_MAX_ROW) return FTTE_ERR_SHAPE;
    if (n <= 0 || slice.begin < 0 || slice.count < 1 || slice.count > layer->out.c - slice.begin)
        return FTTE_ERR_ARG;
    /* Offsets into the batch are ptrdiff_t; refuse a batch too large to address. */
    int32_t size = ftte_shape_size(layer->in);
    if (ftte_shape_size(layer->out) > size) size = ftte_shape_size(layer->out);
    if ((int64_t)n * size > (int64_t)(PTRDIFF_MAX / (ptrdiff_t)sizeof(float))) return FTTE_ERR_ARG;
    return FTTE_OK;
}

/* Floats in a window of `channels` channels (kernel_h * kernel_w * channels); 0 when four of
 * them would not fit an int32 of bytes. */
static int32_t window_length(const ftte_layer *l, int32_t channels) {
    const int64_t len = (int64_t)l->kernel_h * l->kernel_w * channels;
    return len <= FTTE_CONV_MAX_ROW ? (int32_t)len : 0;
}

/* Floats in one weight row (and one input window) of a checked layer; 0 if too long. */
static int32_t row_length(const ftte_layer *l) { return window_length(l, l->in.c); }

static ftte_status check(const ftte_layer *layer, int32_t op, int32_t n, ftte_slice slice) {
    ftte_status status = ftte_conv_check(layer, op, n, slice);
    if (status != FTTE_OK) return status;
    return row_length(layer) > 0 ? FTTE_OK : FTTE_ERR_SHAPE;
}

/* Whether the backward pass to the input reads grad_output windows (stride 1, and four of
 * them fit an int32 of bytes), rather than going tap by tap. */
static int gathers(const ftte_layer *l) {
    return l->stride_h == 1 && l->stride_w == 1 && window_length(l, l->out.c) > 0;
}

int32_t ftte_conv_forward_scratch(const ftte_layer *layer, int32_t op) {
    const ftte_slice any = {0, 1};
    if (check(layer, op, 1, any) != FTTE_OK) return 0;
    return row_length(layer) * FTTE_CONV_POSITIONS * (int32_t)sizeof(float);
}

int32_t ftte_conv_backward_input_scratch(const ftte_layer *layer, int32_t op) {
    const ftte_slice any = {0, 1};
    if (check(layer, op, 1, any) != FTTE_OK || !gathers(layer)) return 0;
    return window_length(layer, layer->out.c) * FTTE_CONV_POSITIONS * (int32_t)sizeof(float);
}

int32_t ftte_conv_backward_weight_scratch(const ftte_layer *layer, int32_t op) {
    (void)layer;
    (void)op;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Register tiles                                                                            */
/* ---------------------------------------------------------------------------------------- */

/* 4 x 4 accumulators, a.v[k * 4 + j] for tile row k and column j; `width` (a constant at every
 * call) is how many columns are in use. Passed by value through always-inlined helpers, the
 * members live in FPU registers. */
typedef struct {
    float v[16];
} acc16;

/* One reduction step of a tile: a[k][j] += u_k * c_j for k < 4, j < width (c_j for j >=
 * width is not used). */
FTTE_INLINE acc16 outer(acc16 a, float u0, float u1, float u2, float u3, float c0, float c1,
                        float c2, float c3, const int32_t width) {
    FTTE_MAC(a.v[0], u0, c0); FTTE_MAC(a.v[4], u1, c0);
    FTTE_MAC(a.v[8], u2, c0); FTTE_MAC(a.v[12], u3, c0);
    if (width > 1) {
        FTTE_MAC(a.v[1], u0, c1); FTTE_MAC(a.v[5], u1, c1);
        FTTE_MAC(a.v[9], u2, c1); FTTE_MAC(a.v[13], u3, c1);
    }
    if (width > 2) {
        FTTE_MAC(a.v[2], u0, c2); FTTE_MAC(a.v[6], u1, c2);
        FTTE_MAC(a.v[10], u2, c2); FTTE_MAC(a.v[14], u3, c2);
    }
    if (width > 3) {
        FTTE_MAC(a.v[3], u0, c3); FTTE_MAC(a.v[7], u1, c3);
        FTTE_MAC(a.v[11], u2, c3); FTTE_MAC(a.v[15], u3, c3);
    }
    return a;
}

/* Tile row k from row[0 .. width) (zeros past width). No loops in these helpers: GCC does
 * not unroll them at -O2, and a tile indexed in a loop lives on the stack. */
FTTE_INLINE acc16 load_row(acc16 a, int32_t k, const float *row, const int32_t width) {
    a.v[4 * k] = row[0];
    a.v[4 * k + 1] = width > 1 ? row[1] : 0.0f;
    a.v[4 * k + 2] = width > 2 ? row[2] : 0.0f;
    a.v[4 * k + 3] = width > 3 ? row[3] : 0.0f;
    return a;
}

/* The tile from row[k][0 .. width). */
FTTE_INLINE acc16 load_tile(float *const row[4], const int32_t width) {
    acc16 a = {{0.0f}};
    a = load_row(a, 0, row[0], width);
    a = load_row(a, 1, row[1], width);
    a = load_row(a, 2, row[2], width);
    a = load_row(a, 3, row[3], width);
    return a;
}

/* row[0 .. width) = tile row k. */
FTTE_INLINE void store_row(float *row, acc16 a, int32_t k, const int32_t width) {
    row[0] = a.v[4 * k];
    if (width > 1) row[1] = a.v[4 * k + 1];
    if (width > 2) row[2] = a.v[4 * k + 2];
    if (width > 3) row[3] = a.v[4 * k + 3];
}

/* row[k][0 .. width) = the tile's row k. */
FTTE_INLINE void store_tile(float *const row[4], acc16 a, const int32_t width) {
    store_row(row[0], a, 0, width);
    store_row(row[1], a, 1, width);
    store_row(row[2], a, 2, width);
    store_row(row[3], a, 3, width);
}

/* Up to 8 x 4 accumulators, a.v[4 * i + j] for tile row i and column j: the weight gradient's
 * output channels x input channels, and the forward's 6 output channels x 4 positions. */
typedef struct {
    float v[32];
} acc32;

/* Row i of a reduction step: a[i][j] += g * x_j for j < width. */
FTTE_INLINE acc32 acc_row(acc32 a, int32_t i, float g, float x0, float x1, float x2,
                             float x3, const int32_t width) {
    FTTE_MAC(a.v[4 * i], g, x0);
    if (width > 1) FTTE_MAC(a.v[4 * i + 1], g, x1);
    if (width > 2) FTTE_MAC(a.v[4 * i + 2], g, x2);
    if (width > 3) FTTE_MAC(a.v[4 * i + 3], g, x3);
    return a;
}

/* ---------------------------------------------------------------------------------------- */
/* Windows                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* What a pass reads windows of: a tensor [n][h][w][c] and positions [n][out_h][out_w] whose
 * kh x kw window starts at pixel (oy * sh - pt, ox * sw - pl), `first` floats into it. The
 * forward reads the input around output positions; the stride-1 backward reads grad_output
 * around input positions (the slice's channels, padding kernel - 1 - pad). */
typedef struct {
    const float *data;
    int32_t h, w, c, out_h, out_w, kh, kw, sh, sw, pt, pl, first;
} source;

/* A position stepped through in batch order: its output row and column, its window's
 * top-left pixel (y, x) (negative in the padding), that pixel row's offset in pixels,
 * (b * h + y) * w, and the window rows [r_lo, r_hi) inside the tensor (its output row's). */
typedef struct {
    int32_t oy, ox, y, x, r_lo, r_hi;
    ptrdiff_t row;
} cursor;

/* Taps [*lo, *hi) of a kernel-long window at `start` inside an axis of `size`, as
 * ftte_conv_taps but empty (lo == hi, within [0, kernel]) when the window misses the axis:
 * a grad_output window around an input position may. */
static void taps_inside(int32_t start, int32_t kernel, int32_t size, int32_t *lo, int32_t *hi) {
    ftte_conv_taps(start, kernel, size, lo, hi);
    if (*lo > kernel) *lo = kernel;
    if (*hi < *lo) *hi = *lo;
}

static cursor first_position(const source *s) {
    cursor p = {0, 0, -s->pt, -s->pl, 0, 0, -(ptrdiff_t)s->pt * s->w};
    taps_inside(p.y, s->kh, s->h, &p.r_lo, &p.r_hi);
    return p;
}

static inline void next(const source *s, cursor *p) {
    p->x += s->sw;
    if (++p->ox < s->out_w) return;
    p->ox = 0, p->x = -s->pl;
    p->y += s->sh, p->row += (ptrdiff_t)s->sh * s->w;
    if (++p->oy == s->out_h) { /* the next sample's first row */
        p->oy = 0;
        p->row += (ptrdiff_t)(s->h - p->y - s->pt) * s->w;
        p->y = -s->pt;
    }
    taps_inside(p->y, s->kh, s->h, &p->r_lo, &p->r_hi);
}

/* memset: GCC emits it for such loops anyway, and the C library's is the fastest. */
static void zero(float *dst, int32_t count) {
    if (count > 0) memset(dst, 0, (size_t)count * sizeof(float)); /* all-zero bits are 0.0f */
}

/* patch [kh][kw][c] = the window of p, zeros where it hangs over the tensor. Within a window
 * row the pixels inside the tensor are one contiguous run. */
static void load_patch(const source *s, const cursor *p, float *patch) {
    const int32_t c = s->c, row = s->kw * c;
    int32_t y_lo, y_hi, x_lo, x_hi;
    taps_inside(p->y, s->kh, s->h, &y_lo, &y_hi);
    taps_inside(p->x, s->kw, s->w, &x_lo, &x_hi);
    zero(patch, y_lo * row);
    for (int32_t ky = y_lo; ky < y_hi; ky++) {
        float *dst = patch + ky * row;
        const float *src = s->data + (p->row + (ptrdiff_t)ky * s->w + p->x + x_lo) * c;
        zero(dst, x_lo * c);
        memcpy(dst + x_lo * c, src, (size_t)((x_hi - x_lo) * c) * sizeof(float));
        zero(dst + x_hi * c, (s->kw - x_hi) * c);
    }
    zero(patch + y_hi * row, (s->kh - y_hi) * row);
}

/* strip [r_hi - r_lo][cols][c] = pixels p->x .. p->x + cols - 1 of window rows [r_lo, r_hi)
 * of p's window, zeros outside the tensor. */
static void load_strip(const source *s, const cursor *p, int32_t r_lo, int32_t r_hi,
                       int32_t cols, float *strip) {
    const int32_t c = s->c;
    int32_t x_lo, x_hi; /* the columns inside the tensor */
    taps_inside(p->x, cols, s->w, &x_lo, &x_hi);
    for (int32_t r = r_lo; r < r_hi; r++, strip += cols * c) {
        const float *src = s->data + (p->row + (ptrdiff_t)r * s->w + p->x + x_lo) * c;
        zero(strip, x_lo * c);
        memcpy(strip + x_lo * c, src, (size_t)((x_hi - x_lo) * c) * sizeof(float));
        zero(strip + x_hi * c, (cols - x_hi) * c);
    }
}

/* The windows of a pass's 4 positions, all of them rows [r_lo, r_lo + rows) of the kh
 * window rows (those that any of the 4 has inside the tensor): window k's row r_lo starts at
 * at[k], and each row is kw * c floats, the next `skip[k]` floats past its end. The forward
 * reads them as `runs` runs of `run` floats: one run of all the rows when they are contiguous
 * (copies, or a single row). */
typedef struct {
    const float *at[4];
    ptrdiff_t skip[4];
    int32_t r_lo, rows, row, runs, run; /* row: kw * c */
    int adjacent; /* window k is window 0 moved k pixels (stride 1): see sum_outputs2 */
} views;

/* Window p in place (at its row r_lo) when it is inside the tensor over rows [r_lo, r_hi) and
 * has no row there outside it, else a zero-padded copy in `slot` (kh * kw * c floats). Returns
 * whether it copied. */
static int read_window(const source *s, const cursor *p, int32_t r_lo, int32_t r_hi, float *slot,
                       const float **at, ptrdiff_t *skip) {
    if (p->y + r_lo >= 0 && p->y + r_hi <= s->h && p->x >= 0 && p->x <= s->w - s->kw) {
        *at = s->data + (p->row + (ptrdiff_t)r_lo * s->w + p->x) * s->c + s->first;
        *skip = (ptrdiff_t)(s->w - s->kw) * s->c;
        return 0;
    }
    load_patch(s, p, slot);
    *at = slot + (ptrdiff_t)r_lo * s->kw * s->c + s->first;
    *skip = 0;
    return 1;
}

/* The rows [*lo, *hi) of the kh window rows that some of the windows of the `count`
 * positions from p on have inside the tensor (all of one output row's windows share them). */
static void rows_of(const source *s, const cursor *p, int32_t count, int32_t *lo, int32_t *hi) {
    *lo = p->r_lo, *hi = p->r_hi;
    if (p->ox + count <= s->out_w) return;
    cursor q = *p; /* the pass crosses into the next output row(s) */
    for (int32_t k = 1; k < count; k++) {
        next(s, &q);
        if (q.r_lo >= q.r_hi) continue;
        if (*lo >= *hi || q.r_lo < *lo) *lo = q.r_lo;
        if (q.r_hi > *hi) *hi = q.r_hi;
    }
}

/* Windows of the `count` positions from *p on (advancing *p past them), into *v. Window rows
 * that none of them has inside the tensor are left out (under the top and bottom padding); a
 * window that hangs over the left or right edge, or has a row outside the tensor that another
 * keeps, is copied into scratch slot k. Positions k >= count (past the batch) repeat the last. */
static void read_views(const source *s, cursor *p, int32_t count, float *scratch, views *v) {
    const int32_t len = s->kh * s->kw * s->c, cols = 3 * s->sw + s->kw;
    int32_t r_lo, r_hi, copies = 0;
    rows_of(s, p, count, &r_lo, &r_hi);
    v->adjacent = 0;
    if (count == 4 && p->ox + 3 < s->out_w && cols <= 4 * s->kw) {
        /* 4 windows along one output row, hanging over its left or right end: one
         * zero-padded strip of the pixels they cover (no larger than 4 windows while the
         * stride is below the kernel), in which they lie sw * c floats apart as in place. */
        const ptrdiff_t step = (ptrdiff_t)s->sw * s->c;
        load_strip(s, p, r_lo, r_hi, cols, scratch);
        v->at[0] = scratch + s->first;
        v->at[1] = v->at[0] + step, v->at[2] = v->at[1] + step, v->at[3] = v->at[2] + step;
        v->skip[0] = v->skip[1] = v->skip[2] = v->skip[3] = (ptrdiff_t)(cols - s->kw) * s->c;
        v->adjacent = s->sw == 1;
        for (int32_t k = 0; k < 4; k++) next(s, p);
    } else {
        for (int32_t k = 0; k < count; k++, next(s, p))
            copies += read_window(s, p, r_lo, r_hi, scratch + k * len, &v->at[k], &v->skip[k]);
        for (int32_t k = count; k < FTTE_CONV_POSITIONS; k++) {
            v->at[k] = v->at[count - 1];
            v->skip[k] = v->skip[count - 1];
        }
    }
    v->r_lo = r_lo;
    v->rows = r_hi - r_lo;
    v->row = s->kw * s->c;
    const int one_run = v->rows <= 1 || copies == count;
    v->runs = one_run ? 1 : v->rows;
    v->run = (one_run ? v->rows : 1) * s->kw * s->c;
}

/* Passes of 4 windows each in one call: pass i's window k at view k + i * step (outputs
 * likewise, out_step): consecutive passes along an output row clear of the edges, whose
 * per-pass setup is then a few adds. */
typedef struct {
    int32_t passes;
    ptrdiff_t step, out_step;
} run_of_passes;

/* How many full passes of 4 from p on (at most `left` positions) have their windows inside
 * the tensor across and stay in p's output row; 0 unless it is at least one. */
static int32_t inner_passes(const source *s, const cursor *p, ptrdiff_t left) {
    if (p->x < 0 || p->x > s->w - s->kw) return 0;
    int32_t inside = (s->w - s->kw - p->x) / s->sw + 1;
    if (inside > s->out_w - p->ox) inside = s->out_w - p->ox;
    if (inside > left) inside = (int32_t)left;
    return inside / FTTE_CONV_POSITIONS;
}

/* The windows of the first of those passes (in place, rows of the cursor's output row), and
 * the cursor moved past all `passes` of them. */
static void inner_views(const source *s, cursor *p, int32_t passes, views *v) {
    const ptrdiff_t step = (ptrdiff_t)s->sw * s->c;
    v->at[0] = s->data + (p->row + (ptrdiff_t)p->r_lo * s->w + p->x) * s->c + s->first;
    v->at[1] = v->at[0] + step, v->at[2] = v->at[1] + step, v->at[3] = v->at[2] + step;
    v->skip[0] = v->skip[1] = v->skip[2] = v->skip[3] = (ptrdiff_t)(s->w - s->kw) * s->c;
    v->r_lo = p->r_lo;
    v->rows = p->r_hi - p->r_lo;
    v->row = s->kw * s->c;
    v->runs = v->rows <= 1 ? 1 : v->rows;
    v->run = (v->rows <= 1 ? v->rows : 1) * v->row;
    v->adjacent = s->sw == 1;
    const int32_t moved = FTTE_CONV_POSITIONS * passes - 1; /* then one next(), which wraps */
    p->ox += moved, p->x += moved * s->sw;
    next(s, p);
}

/* Positions in the pass starting at q0 (4 but at the end of the batch). */
static int32_t pass_count(ptrdiff_t q0, ptrdiff_t total) {
    return total - q0 < FTTE_CONV_POSITIONS ? (int32_t)(total - q0) : FTTE_CONV_POSITIONS;
}

/* row[k] = base + (q0 + k) * stride, the last position repeated for k >= count. */
static void pass_rows(float *base, ptrdiff_t stride, ptrdiff_t q0, int32_t count, float *row[4]) {
    for (int32_t k = 0; k < FTTE_CONV_POSITIONS; k++)
        row[k] = base + (q0 + (k < count ? k : count - 1)) * stride;
}

/* ---------------------------------------------------------------------------------------- */
/* Forward                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* out[k][j] = bias[j] + window k . weight row j, for the 4 windows of v and `width` (4 or 1)
 * weight rows w[0 .. width). `one_run` (a constant): the windows are one run of v->run floats,
 * no row loop. */
FTTE_INLINE void forward_tile(const views *v, const float *const w[6], const float *bias,
                              float *const out[4], const int one_run, const int32_t width) {
    const float *p0 = v->at[0], *p1 = v->at[1], *p2 = v->at[2], *p3 = v->at[3];
    const ptrdiff_t first = (ptrdiff_t)v->r_lo * v->row;
    const float *w0 = w[0] + first, *w1 = w0, *w2 = w0, *w3 = w0;
    if (width > 1) w1 = w[1] + first, w2 = w[2] + first, w3 = w[3] + first;
    float b[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (bias != NULL) {
        b[0] = bias[0];
        if (width > 1) b[1] = bias[1], b[2] = bias[2], b[3] = bias[3];
    }
    const acc16 start = {{b[0], b[1], b[2], b[3], b[0], b[1], b[2], b[3], b[0], b[1], b[2], b[3],
                          b[0], b[1], b[2], b[3]}};
    acc16 a = start;
    for (int32_t r = 0; r < (one_run ? 1 : v->runs); r++) {
        for (const float *end = p0 + v->run; p0 != end;) {
            const float x0 = *p0++, x1 = *p1++, x2 = *p2++, x3 = *p3++;
            const float c0 = *w0++, c1 = width > 1 ? *w1++ : 0.0f;
            const float c2 = width > 2 ? *w2++ : 0.0f, c3 = width > 3 ? *w3++ : 0.0f;
            a = outer(a, x0, x1, x2, x3, c0, c1, c2, c3, width);
        }
        p0 += v->skip[0], p1 += v->skip[1], p2 += v->skip[2], p3 += v->skip[3];
    }
    store_tile(out, a, width);
}

/* o[0 .. 6) = column k of a 6 x 4 tile. */
FTTE_INLINE void store_column6(float *o, acc32 a, int32_t k) {
    o[0] = a.v[k], o[1] = a.v[4 + k], o[2] = a.v[8 + k];
    o[3] = a.v[12 + k], o[4] = a.v[16 + k], o[5] = a.v[20 + k];
}

/* The same for 6 weight rows (out[k][0 .. 6)), the tile turned: 6 channels x 4 positions,
 * 24 accumulators. Per step 4 input and 6 weight loads feed 24 MACs (36 instructions, 1.5
 * per MAC, against 1.6 for 4 x 4), and each tile's bias and stores weigh 1.5 times less:
 * what short windows (a conv1d's kernel_w * in.c) need. */
FTTE_INLINE void forward_tile6(const views *v, const float *const w[6], const float *bias,
                               float *const out[4], const int one_run) {
    const float *p0 = v->at[0], *p1 = v->at[1], *p2 = v->at[2], *p3 = v->at[3];
    const ptrdiff_t first = (ptrdiff_t)v->r_lo * v->row;
    const float *w0 = w[0] + first, *w1 = w[1] + first, *w2 = w[2] + first;
    const float *w3 = w[3] + first, *w4 = w[4] + first, *w5 = w[5] + first;
    float b[6] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    if (bias != NULL) {
        b[0] = bias[0], b[1] = bias[1], b[2] = bias[2];
        b[3] = bias[3], b[4] = bias[4], b[5] = bias[5];
    }
    const acc32 start = {{b[0], b[0], b[0], b[0], b[1], b[1], b[1], b[1], b[2], b[2], b[2], b[2],
                          b[3], b[3], b[3], b[3], b[4], b[4], b[4], b[4], b[5], b[5], b[5], b[5]}};
    acc32 a = start;
    for (int32_t r = 0; r < (one_run ? 1 : v->runs); r++) {
        for (const float *end = p0 + v->run; p0 != end;) {
            const float x0 = *p0++, x1 = *p1++, x2 = *p2++, x3 = *p3++;
            a = acc_row(a, 0, *w0++, x0, x1, x2, x3, 4);
            a = acc_row(a, 1, *w1++, x0, x1, x2, x3, 4);
            a = acc_row(a, 2, *w2++, x0, x1, x2, x3, 4);
            a = acc_row(a, 3, *w3++, x0, x1, x2, x3, 4);
            a = acc_row(a, 4, *w4++, x0, x1, x2, x3, 4);
            a = acc_row(a, 5, *w5++, x0, x1, x2, x3, 4);
        }
        p0 += v->skip[0], p1 += v->skip[1], p2 += v->skip[2], p3 += v->skip[3];
    }
    store_column6(out[0], a, 0);
    store_column6(out[1], a, 1);
    store_column6(out[2], a, 2);
    store_column6(out[3], a, 3);
}

/* One channel block (`width` 6, 4 or 1 weight rows w[0 .. width)) over a run of passes. */
FTTE_INLINE void forward_block(views v, run_of_passes r, const float *const w[6],
                               const float *bias, float *const out[4], const int one_run,
                               const int32_t width) {
    float *o[4] = {out[0], out[1], out[2], out[3]};
    for (int32_t i = 0; i < r.passes; i++) {
        if (width == 6) forward_tile6(&v, w, bias, o, one_run);
        else forward_tile(&v, w, bias, o, one_run, width);
        v.at[0] += r.step, v.at[1] += r.step, v.at[2] += r.step, v.at[3] += r.step;
        o[0] += r.out_step, o[1] += r.out_step, o[2] += r.out_step, o[3] += r.out_step;
    }
}

#define BLOCK_ARGS                                                                             \
    const views *v, run_of_passes r, const float *const w[6], const float *bias,              \
        float *const out[4]
FTTE_NOINLINE static void block6_run(BLOCK_ARGS) {
    forward_block(*v, r, w, bias, out, 1, 6);
}
FTTE_NOINLINE static void block6_rows(BLOCK_ARGS) {
    forward_block(*v, r, w, bias, out, 0, 6);
}
FTTE_NOINLINE static void block4_run(BLOCK_ARGS) {
    forward_block(*v, r, w, bias, out, 1, 4);
}
FTTE_NOINLINE static void block4_rows(BLOCK_ARGS) {
    forward_block(*v, r, w, bias, out, 0, 4);
}
FTTE_NOINLINE static void block1(BLOCK_ARGS) {
    forward_block(*v, r, w, bias, out, 0, 1);
}
#undef BLOCK_ARGS

/* The `count` channels of `rows` for a run of passes: 6 channels at a time, then 4, then one
 * (8 remaining go as 4 + 4). */
static void forward_channels(const views *v, run_of_passes r, int32_t count,
                             const ftte_weight_rows *rows, const float *bias,
                             float *const out[4]) {
    const int one_run = v->runs == 1;
    float *o[4] = {out[0], out[1], out[2], out[3]};
    ftte_row_cursor next_rows = {rows, 0, 0};
    for (int32_t j = 0; j < count;) {
        const int32_t left = count - j, width = left >= 6 && left != 8 ? 6 : left >= 4 ? 4 : 1;
        const float *w[6], *b = bias != NULL ? bias + j : NULL;
        if (rows->mask == NULL) /* one table: no cursor */
            for (int32_t k = 0; k < width; k++) w[k] = rows->frozen + (ptrdiff_t)(j + k) * rows->len;
        else
            for (int32_t k = 0; k < width; k++) w[k] = ftte_next_row(&next_rows);
        if (width == 6 && one_run) block6_run(v, r, w, b, o);
        else if (width == 6) block6_rows(v, r, w, b, o);
        else if (width == 4 && one_run) block4_run(v, r, w, b, o);
        else if (width == 4) block4_rows(v, r, w, b, o);
        else block1(v, r, w, b, o);
        o[0] += width, o[1] += width, o[2] += width, o[3] += width;
        j += width;
    }
}

#if FTTE_HOST_TILES
/* The vector host's forward: up to 16 output channels at a time, vectorised across them. Their
 * weights, turned to [tap][16] (zeros past the slice), go to a panel on the stack for the
 * whole call (a register tile's worth per tap, not scratch: no plan counts it), and each tap of
 * 4 windows then takes 4 broadcasts, 1 or 2 vector loads and 4 or 8 vector multiply-adds. Each
 * output is summed in the board's order (bias, then the window's taps in order). Longer
 * windows than the panel holds take the board tiles. */
#define PANEL_COLUMNS 16
#define PANEL_TAPS 256

typedef struct {
    const float *panel; /* [len][PANEL_COLUMNS] */
    vec8 start[2];      /* the bias, zeros past the slice */
    int32_t width;      /* output channels, <= PANEL_COLUMNS */
} panel_block;

/* out[k][0 .. width) = start + window k . the panel's columns, for the 4 windows of v and
 * passes of r; `vecs` (a constant) is 1 for width <= 8, else 2. */
FTTE_INLINE void panel_run(views v, run_of_passes r, const panel_block *b, float *const out[4],
                           const int32_t vecs) {
    float *o[4] = {out[0], out[1], out[2], out[3]};
    const int32_t last = vecs == 2 ? b->width - 8 : b->width;
    for (int32_t i = 0; i < r.passes; i++) {
        const float *p0 = v.at[0], *p1 = v.at[1], *p2 = v.at[2], *p3 = v.at[3];
        const float *w = b->panel + (ptrdiff_t)v.r_lo * v.row * PANEL_COLUMNS;
        vec8 a[4][2];
        for (int32_t k = 0; k < 4; k++)
            for (int32_t j = 0; j < vecs; j++) a[k][j] = b->start[j];
        for (int32_t run = 0; run < v.runs; run++) {
            for (const float *end = p0 + v.run; p0 != end; w += PANEL_COLUMNS) {
                const float x0 = *p0++, x1 = *p1++, x2 = *p2++, x3 = *p3++;
                const vec8 u0 = {x0, x0, x0, x0, x0, x0, x0, x0};
                const vec8 u1 = {x1, x1, x1, x1, x1, x1, x1, x1};
                const vec8 u2 = {x2, x2, x2, x2, x2, x2, x2, x2};
                const vec8 u3 = {x3, x3, x3, x3, x3, x3, x3, x3};
                for (int32_t j = 0; j < vecs; j++) {
                    vec8 c;
                    load8(&c, w + 8 * j);
                    FTTE_MAC(a[0][j], u0, c); FTTE_MAC(a[1][j], u1, c);
                    FTTE_MAC(a[2][j], u2, c); FTTE_MAC(a[3][j], u3, c);
                }
            }
            p0 += v.skip[0], p1 += v.skip[1], p2 += v.skip[2], p3 += v.skip[3];
        }
        for (int32_t k = 0; k < 4; k++) {
            if (vecs == 2) store8(o[k], &a[k][0]);
            store_lanes(o[k] + 8 * (vecs - 1), &a[k][vecs - 1], last);
        }
        v.at[0] += r.step, v.at[1] += r.step, v.at[2] += r.step, v.at[3] += r.step;
        o[0] += r.out_step, o[1] += r.out_step, o[2] += r.out_step, o[3] += r.out_step;
    }
}

FTTE_NOINLINE static void panel_run8(const views *v, run_of_passes r, const panel_block *b,
                                     float *const out[4]) {
    panel_run(*v, r, b, out, 1);
}
FTTE_NOINLINE static void panel_run16(const views *v, run_of_passes r, const panel_block *b,
                                      float *const out[4]) {
    panel_run(*v, r, b, out, 2);
}
#else
typedef struct panel_block panel_block; /* the host's only */
#endif

/* The forward over every position, 4 at a time: the slice's channels by the board tiles, or
 * (the host's) the channels of panel block b. */
static void forward_positions(const ftte_layer *l, int32_t n, ftte_slice slice,
                              const float *input, const ftte_weight_rows *rows,
                              const float *bias, float *output, float *scratch,
                              const panel_block *b) {
    const source s = {input,       l->in.h,     l->in.w,     l->in.c,      l->out.h,
                      l->out.w,    l->kernel_h, l->kernel_w, l->stride_h,  l->stride_w,
                      l->pad_top,  l->pad_left, 0};
    const ptrdiff_t total = (ptrdiff_t)n * l->out.h * l->out.w;
    cursor p = first_position(&s);
    for (ptrdiff_t q0 = 0; q0 < total;) {
        views v;
        run_of_passes r = {inner_passes(&s, &p, total - q0), 0, 0};
        int32_t count = FTTE_CONV_POSITIONS;
        if (r.passes > 0) {
            inner_views(&s, &p, r.passes, &v);
            r.step = (ptrdiff_t)FTTE_CONV_POSITIONS * l->stride_w * l->in.c;
            r.out_step = (ptrdiff_t)FTTE_CONV_POSITIONS * l->out.c;
        } else {
            r.passes = 1;
            count = pass_count(q0, total);
            read_views(&s, &p, count, scratch, &v);
        }
        float *out[4];
        pass_rows(output + slice.begin, l->out.c, q0, count, out);
#if FTTE_HOST_TILES
        if (b != NULL) {
            if (b->width > 8) panel_run16(&v, r, b, out);
            else panel_run8(&v, r, b, out);
        } else
#endif
            forward_channels(&v, r, slice.count, rows, bias, out);
        q0 += (ptrdiff_t)r.passes * count;
    }
    (void)b;
}

/* The forward of the `slice` of channels whose rows `rows` gives (from its channel 0 on). */
static void forward_rows(const ftte_layer *layer, int32_t n, ftte_slice slice,
                         const ftte_weight_rows *rows, const float *input, const float *bias,
                         float *output, float *scratch) {
#if FTTE_HOST_TILES
    const int32_t len = row_length(layer);
    if (len <= PANEL_TAPS) {
        float panel[PANEL_TAPS * PANEL_COLUMNS];
        ftte_row_cursor next_rows = {rows, 0, 0};
        for (int32_t o = 0; o < slice.count; o += PANEL_COLUMNS) {
            panel_block b = {panel, {{0.0f}}, slice.count - o};
            if (b.width > PANEL_COLUMNS) b.width = PANEL_COLUMNS;
            for (int32_t j = 0; j < PANEL_COLUMNS; j++) {
                const float *w = j < b.width ? ftte_next_row(&next_rows) : NULL;
                for (int32_t t = 0; t < len; t++) panel[t * PANEL_COLUMNS + j] = w ? w[t] : 0.0f;
                b.start[j / 8][j % 8] = bias != NULL && j < b.width ? bias[o + j] : 0.0f;
            }
            const ftte_slice block = {slice.begin + o, b.width};
            forward_positions(layer, n, block, input, NULL, NULL, output, scratch, &b);
        }
        return;
    }
#endif
    forward_positions(layer, n, slice, input, rows, bias, output, scratch, NULL);
}

ftte_status ftte_conv_forward(const ftte_layer *layer, int32_t op, int32_t n, ftte_slice slice,
                              const float *input, const float *weights, const float *bias,
                              float *output, float *scratch) {
    ftte_status status = check(layer, op, n, slice);
    if (status != FTTE_OK) return status;
    if (input == NULL || weights == NULL || output == NULL || scratch == NULL) return FTTE_ERR_ARG;
    const ftte_weight_rows rows = {NULL, weights, NULL, row_length(layer)};
    forward_rows(layer, n, slice, &rows, input, bias, output, scratch);
    return FTTE_OK;
}

ftte_status ftte_conv_forward_rows(const ftte_layer *layer, int32_t op, int32_t n,
                                   ftte_weight_rows rows, const float *input, const float *bias,
                                   float *output, float *scratch) {
    const ftte_slice all = {0, layer != NULL ? layer->out.c : 0};
    ftte_status status = check(layer, op, n, all);
    if (status != FTTE_OK) return status;
    if (input == NULL || rows.frozen == NULL || output == NULL || scratch == NULL)
        return FTTE_ERR_ARG;
    rows.len = row_length(layer);
    forward_rows(layer, n, all, &rows, input, bias, output, scratch);
    return FTTE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Backward to the input                                                                     */
/* ---------------------------------------------------------------------------------------- */

/* The slice's count outputs of one tap: a[k][j] += sum_o g_k[o] * w[o * len + j] for the
 * tile's 4 positions (gradient rows g_k) and `width` input channels. Per o: 4 gradient loads
 * and `width` weight loads at fixed offsets from a pointer that then steps one weight row.
 * (Two o per step would spill: 8 weights in flight.) */
FTTE_INLINE acc16 sum_outputs(acc16 a, const float *g0, const float *g1, const float *g2,
                              const float *g3, int32_t count, const float *w, int32_t len,
                              const int32_t width) {
    for (const float *end = g0 + count; g0 != end; w += len) {
        const float u0 = *g0++, u1 = *g1++, u2 = *g2++, u3 = *g3++;
        a = outer(a, u0, u1, u2, u3, w[0], width > 1 ? w[1] : 0.0f, width > 2 ? w[2] : 0.0f,
                  width > 3 ? w[3] : 0.0f, width);
    }
    return a;
}

/* Two taps at once for 4 adjacent windows (window k starting at pixel k of one row): tap t
 * of window k + 1 reads the pixel that tap t + 1 of window k reads, so 5 gradient rows g_0 ..
 * g_4 serve both taps: a[k][j] += g_k[o] * wa[o][j] + g_{k+1}[o] * wb[o][j]. Per o: 5
 * gradient loads and 2 x `width` weight loads feed 8 x width MACs (39 instructions for 24
 * MACs at width 3, against 22 for 12 one tap at a time). */
FTTE_INLINE acc16 sum_outputs2(acc16 a, const float *g0, int32_t c, int32_t count,
                               const float *wa, const float *wb, int32_t len,
                               const int32_t width) {
    const float *g1 = g0 + c, *g2 = g1 + c, *g3 = g2 + c, *g4 = g3 + c;
    for (const float *end = g0 + count; g0 != end; wa += len, wb += len) {
        const float u0 = *g0++, u1 = *g1++, u2 = *g2++, u3 = *g3++, u4 = *g4++;
        a = outer(a, u0, u1, u2, u3, wa[0], width > 1 ? wa[1] : 0.0f, width > 2 ? wa[2] : 0.0f,
                  width > 3 ? wa[3] : 0.0f, width);
        a = outer(a, u1, u2, u3, u4, wb[0], width > 1 ? wb[1] : 0.0f, width > 2 ? wb[2] : 0.0f,
                  width > 3 ? wb[3] : 0.0f, width);
    }
    return a;
}

/* Stride 1: gx[k][j] += window k . the weights of input channel j (the `width` channels from
 * w on), for the 4 grad_output windows of v ([kh][kw][out.c], the slice's channels read).
 * Window tap t meets weight tap kh * kw - 1 - t, so the weight taps run backwards.
 * `adjacent` (a constant): the windows are in place, window k one pixel after window k - 1,
 * and the taps go two at a time (sum_outputs2). */
FTTE_INLINE void gather_tile(const ftte_layer *l, const views *v, const ftte_conv_run *runs,
                             int32_t nruns, int32_t ch, float *const gx[4], const int32_t width,
                             const int adjacent) {
    const int32_t taps = l->kernel_h * l->kernel_w, len = taps * l->in.c, c = l->out.c;
    const ptrdiff_t first = (ptrdiff_t)(taps - 1 - v->r_lo * l->kernel_w) * l->in.c + ch;
    acc16 a = load_tile(gx, width);
    /* The runs one after the other, the gradients kept in registers between them. */
    for (const ftte_conv_run *run = runs, *last = runs + nruns; run != last; run++) {
        const int32_t count = run->count;
        const float *wt = run->w + first;
        if (adjacent) { /* window k is window 0 moved k pixels: one pointer walks all four */
            const float *q = v->at[0] + run->begin;
            for (int32_t r = 0; r < v->rows; r++, q += (ptrdiff_t)l->kernel_w * c + v->skip[0]) {
                const float *p = q;
                int32_t t = 0;
                for (; t + 2 <= l->kernel_w; t += 2, wt -= 2 * l->in.c, p += 2 * c)
                    a = sum_outputs2(a, p, c, count, wt, wt - l->in.c, len, width);
                if (t < l->kernel_w) {
                    a = sum_outputs(a, p, p + c, p + 2 * c, p + 3 * c, count, wt, len, width);
                    wt -= l->in.c;
                }
            }
        } else {
            const float *p0 = v->at[0] + run->begin, *p1 = v->at[1] + run->begin;
            const float *p2 = v->at[2] + run->begin, *p3 = v->at[3] + run->begin;
            for (int32_t r = 0; r < v->rows; r++) {
                for (int32_t t = 0; t < l->kernel_w; t++, wt -= l->in.c) {
                    a = sum_outputs(a, p0, p1, p2, p3, count, wt, len, width);
                    p0 += c, p1 += c, p2 += c, p3 += c; /* the next pixel of each window */
                }
                p0 += v->skip[0], p1 += v->skip[1], p2 += v->skip[2], p3 += v->skip[3];
            }
        }
    }
    store_tile(gx, a, width);
}

/* A run of passes (r.passes of them, pass i's windows and gx rows r.step and gx_step floats
 * after pass 0's) for `width` input channels. */
FTTE_INLINE void gather_run(const ftte_layer *l, views v, run_of_passes r,
                            const ftte_conv_run *runs, int32_t nruns, int32_t ch,
                            float *const gx[4], ptrdiff_t gx_step, const int32_t width,
                            const int adjacent) {
    float *g[4] = {gx[0], gx[1], gx[2], gx[3]};
    for (int32_t i = 0; i < r.passes; i++) {
        gather_tile(l, &v, runs, nruns, ch, g, width, adjacent);
        v.at[0] += r.step, v.at[1] += r.step, v.at[2] += r.step, v.at[3] += r.step;
        g[0] += gx_step, g[1] += gx_step, g[2] += gx_step, g[3] += gx_step;
    }
}

/* One function per width and kind, so that each is compiled with them constant. */
#define GATHER_ARGS                                                                            \
    const ftte_layer *l, const views *v, run_of_passes r, const ftte_conv_run *runs,         \
        int32_t nruns, int32_t ch, float *const gx[4], ptrdiff_t gx_step
FTTE_NOINLINE static void gather_4x4(GATHER_ARGS) {
    gather_run(l, *v, r, runs, nruns, ch, gx, gx_step, 4, 0);
}
FTTE_NOINLINE static void gather_4x3(GATHER_ARGS) {
    gather_run(l, *v, r, runs, nruns, ch, gx, gx_step, 3, 0);
}
FTTE_NOINLINE static void gather_4x2(GATHER_ARGS) {
    gather_run(l, *v, r, runs, nruns, ch, gx, gx_step, 2, 0);
}
FTTE_NOINLINE static void gather_4x1(GATHER_ARGS) {
    gather_run(l, *v, r, runs, nruns, ch, gx, gx_step, 1, 0);
}
FTTE_NOINLINE static void gather_4x4_adjacent(GATHER_ARGS) {
    gather_run(l, *v, r, runs, nruns, ch, gx, gx_step, 4, 1);
}
FTTE_NOINLINE static void gather_4x3_adjacent(GATHER_ARGS) {
    gather_run(l, *v, r, runs, nruns, ch, gx, gx_step, 3, 1);
}
typedef void gather_fn(GATHER_ARGS);
#undef GATHER_ARGS

static void gather(const ftte_layer *l, int32_t n, const ftte_conv_run *runs, int32_t nruns,
                   const float *grad_output, float *grad_input, float *scratch) {
    const source s = {grad_output,
                      l->out.h,
                      l->out.w,
                      l->out.c,
                      l->in.h,
                      l->in.w,
                      l->kernel_h,
                      l->kernel_w,
                      1,
                      1,
                      l->kernel_h - 1 - l->pad_top,
                      l->kernel_w - 1 - l->pad_left,
                      0};
    const ptrdiff_t total = (ptrdiff_t)n * l->in.h * l->in.w;
    cursor p = first_position(&s);
    for (ptrdiff_t q0 = 0; q0 < total;) {
        views v;
        run_of_passes r = {inner_passes(&s, &p, total - q0), 0, 0};
        int32_t count = FTTE_CONV_POSITIONS;
        if (r.passes > 0) { /* a run along one row, windows in place */
            inner_views(&s, &p, r.passes, &v);
            r.step = (ptrdiff_t)FTTE_CONV_POSITIONS * l->out.c;
        } else {
            r.passes = 1;
            count = pass_count(q0, total);
            read_views(&s, &p, count, scratch, &v);
        }
        const ptrdiff_t gx_step = (ptrdiff_t)FTTE_CONV_POSITIONS * l->in.c;
        float *row[4], *gx[4];
        pass_rows(grad_input, l->in.c, q0, count, row);
        for (int32_t c = 0; c < l->in.c;) {
            const int32_t width = l->in.c - c >= 4 ? 4 : l->in.c - c;
            gather_fn *const tile = width == 4   ? (v.adjacent ? gather_4x4_adjacent : gather_4x4)
                                    : width == 3 ? (v.adjacent ? gather_4x3_adjacent : gather_4x3)
                                    : width == 2 ? gather_4x2
                                                 : gather_4x1;
            for (int32_t k = 0; k < 4; k++) gx[k] = row[k] + c;
            tile(l, &v, r, runs, nruns, c, gx, gx_step);
            c += width;
        }
        q0 += (ptrdiff_t)r.passes * count;
    }
}

/* Other strides, one tap t at a time: for 4 output positions (gradient rows g[k], the slice's
 * channels) and the input pixels under their tap (x[k]), x[k][j] += sum_o g[k][o] * wt[o][j]
 * for `width` input channels j; wt is the tap's weights, rows len apart. The 4 pixels are
 * distinct (but for repeats of the last position, which compute the same sums). */
FTTE_INLINE void scatter_tile(const float *const g[4], float *const x[4], int32_t count,
                              const float *wt, int32_t len, const int32_t width) {
    acc16 a = load_tile(x, width);
    a = sum_outputs(a, g[0], g[1], g[2], g[3], count, wt, len, width);
    store_tile(x, a, width);
}

FTTE_NOINLINE static void scatter_4x4(const float *const g[4], float *const x[4],
                                      int32_t count, const float *wt, int32_t len) {
    scatter_tile(g, x, count, wt, len, 4);
}
FTTE_NOINLINE static void scatter_4x1(const float *const g[4], float *const x[4],
                                      int32_t count, const float *wt, int32_t len) {
    scatter_tile(g, x, count, wt, len, 1);
}

/* Adds tap t's share to grad_input, over the output positions of its rectangle. */
static void scatter_tap(const ftte_layer *l, int32_t n, ftte_slice slice, ftte_conv_rect t,
                        const float *grad_output, const float *weights, float *grad_input) {
    const int32_t cols = t.x_hi - t.x_lo, per_sample = (t.y_hi - t.y_lo) * cols;
    const int32_t len = row_length(l);
    const float *wt = weights + (ptrdiff_t)(t.ky * l->kernel_w + t.kx) * l->in.c;
    const ptrdiff_t total = (ptrdiff_t)n * per_sample;
    for (ptrdiff_t q0 = 0; q0 < total; q0 += FTTE_CONV_POSITIONS) {
        const int32_t count = pass_count(q0, total);
        const float *g[4];
        float *x[4];
        for (int32_t k = 0; k < 4; k++) {
            const ptrdiff_t q = q0 + (k < count ? k : count - 1);
            const int32_t b = (int32_t)(q / per_sample), i = (int32_t)(q % per_sample);
            const int32_t oy = t.y_lo + i / cols, ox = t.x_lo + i % cols;
            const int32_t y = oy * l->stride_h - l->pad_top + t.ky;
            const int32_t xx = ox * l->stride_w - l->pad_left + t.kx;
            g[k] = grad_output + (((ptrdiff_t)b * l->out.h + oy) * l->out.w + ox) * l->out.c +
                   slice.begin;
            x[k] = grad_input + (((ptrdiff_t)b * l->in.h + y) * l->in.w + xx) * l->in.c;
        }
        int32_t c = 0;
        for (; c + 4 <= l->in.c; c += 4) {
            float *xc[4] = {x[0] + c, x[1] + c, x[2] + c, x[3] + c};
            scatter_4x4(g, xc, slice.count, wt + c, len);
        }
        for (; c < l->in.c; c++) {
            float *xc[4] = {x[0] + c, x[1] + c, x[2] + c, x[3] + c};
            scatter_4x1(g, xc, slice.count, wt + c, len);
        }
    }
}

#if FTTE_HOST_TILES
/* The vector host's stride-1 backward to the input: 8 input channels per vector, from a stack
 * panel of the slice's weights [o][tap][8 channels] (zeros past the last channel), P = 4 (or 1)
 * adjacent pixels side by side. Each
 * gx[p][c] is summed in the board's gather order: from its value in memory, over the taps
 * whose grad_output pixel is inside (ky, then kx, descending: the window's rows and columns
 * ascending), and per tap over the slice's output channels ascending. */
FTTE_INLINE void host_gather_block(const ftte_layer *l, int32_t b, int32_t iy, int32_t ix,
                                   const ftte_conv_run *runs, int32_t nruns,
                                   const float *grad_output, const float *panel, float *gx,
                                   int32_t lanes, const int32_t P) {
    const ftte_shape in = l->in, out = l->out;
    const int32_t kh = l->kernel_h, kw = l->kernel_w, top = l->pad_top, left = l->pad_left;
    const ptrdiff_t len = (ptrdiff_t)kh * kw * 8;
    vec8 acc[4];
    for (int32_t p = 0; p < P; p++) load_lanes(&acc[p], gx + (ptrdiff_t)p * in.c, lanes);
    const float *w = panel;
    for (int32_t i = 0; i < nruns; w += runs[i].count * len, i++) { /* run by run */
    const int32_t count = runs[i].count;
    for (int32_t ky = kh - 1; ky >= 0; ky--) {
        const int32_t oy = iy + top - ky;
        if (oy < 0 || oy >= out.h) continue;
        for (int32_t kx = kw - 1; kx >= 0; kx--) {
            const int32_t ox = ix + left - kx; /* pixel p's is ox + p */
            if (ox + P - 1 < 0 || ox >= out.w) continue;
            const float *g = grad_output + (((ptrdiff_t)b * out.h + oy) * out.w + ox) * out.c +
                             runs[i].begin;
            const float *wt = w + (ptrdiff_t)(ky * kw + kx) * 8;
            if (ox >= 0 && ox + P <= out.w) {
                for (int32_t o = 0; o < count; o++, g++, wt += len) {
                    vec8 wv;
                    load8(&wv, wt);
                    for (int32_t p = 0; p < P; p++) {
                        const float u = g[(ptrdiff_t)p * out.c];
                        const vec8 uv = {u, u, u, u, u, u, u, u};
                        FTTE_MAC(acc[p], uv, wv);
                    }
                }
            } else { /* some of the P pixels have this tap outside grad_output */
                for (int32_t o = 0; o < count; o++, g++, wt += len) {
                    vec8 wv;
                    load8(&wv, wt);
                    for (int32_t p = 0; p < P; p++) {
                        if (ox + p < 0 || ox + p >= out.w) continue;
                        const float u = g[(ptrdiff_t)p * out.c];
                        const vec8 uv = {u, u, u, u, u, u, u, u};
                        FTTE_MAC(acc[p], uv, wv);
                    }
                }
            }
        }
    }
    }
    for (int32_t p = 0; p < P; p++) store_lanes(gx + (ptrdiff_t)p * in.c, &acc[p], lanes);
}

#define HOST_GATHER_ARGS                                                                       \
    const ftte_layer *l, int32_t b, int32_t iy, int32_t ix, const ftte_conv_run *runs,       \
        int32_t nruns, const float *grad_output, const float *panel, float *gx, int32_t lanes
FTTE_NOINLINE static void host_gather_4(HOST_GATHER_ARGS) {
    host_gather_block(l, b, iy, ix, runs, nruns, grad_output, panel, gx, lanes, 4);
}
FTTE_NOINLINE static void host_gather_1(HOST_GATHER_ARGS) {
    host_gather_block(l, b, iy, ix, runs, nruns, grad_output, panel, gx, lanes, 1);
}
#undef HOST_GATHER_ARGS

#define GATHER_PANEL 2048 /* floats: 8 KB of stack */

/* Returns 0, having done nothing, when the panel of the runs' weights would not fit. */
static int host_gather(const ftte_layer *l, int32_t n, const ftte_conv_run *runs, int32_t nruns,
                       const float *grad_output, float *grad_input) {
    const ftte_shape in = l->in;
    const int32_t taps = l->kernel_h * l->kernel_w, len = taps * in.c;
    int64_t rows = 0;
    for (int32_t i = 0; i < nruns; i++) rows += runs[i].count;
    if (rows * taps * 8 > GATHER_PANEL) return 0;
    float panel[GATHER_PANEL];
    for (int32_t c = 0; c < in.c; c += 8) {
        const int32_t lanes = in.c - c < 8 ? in.c - c : 8;
        float *pw = panel;
        for (int32_t i = 0; i < nruns; i++)
            for (int32_t o = 0; o < runs[i].count; o++)
                for (int32_t t = 0; t < taps; t++, pw += 8)
                    for (int32_t j = 0; j < 8; j++)
                        pw[j] = j < lanes ? runs[i].w[(ptrdiff_t)o * len + t * in.c + c + j] : 0.0f;
        for (int32_t b = 0; b < n; b++)
            for (int32_t iy = 0; iy < in.h; iy++)
                for (int32_t ix = 0; ix < in.w;) {
                    const int32_t P = in.w - ix >= 4 ? 4 : 1;
                    float *gx = grad_input + (((ptrdiff_t)b * in.h + iy) * in.w + ix) * in.c + c;
                    (P == 4 ? host_gather_4 : host_gather_1)(l, b, iy, ix, runs, nruns,
                                                             grad_output, panel, gx, lanes);
                    ix += P;
                }
    }
    return 1;
}
#endif

ftte_status ftte_conv_backward_input(const ftte_layer *layer, int32_t op, int32_t n,
                                     ftte_slice slice, const float *grad_output,
                                     const float *weights, float *grad_input, float *scratch) {
    ftte_status status = check(layer, op, n, slice);
    if (status != FTTE_OK) return status;
    if (grad_output == NULL || weights == NULL || grad_input == NULL || scratch == NULL)
        return FTTE_ERR_ARG;
    const ftte_conv_run run = {slice.begin, slice.count, weights};
    if (gathers(layer)) {
#if FTTE_HOST_TILES
        if (host_gather(layer, n, &run, 1, grad_output, grad_input)) return FTTE_OK;
#endif
        gather(layer, n, &run, 1, grad_output, grad_input, scratch);
        return FTTE_OK;
    }
    for (int32_t ky = 0; ky < layer->kernel_h; ky++)
        for (int32_t kx = 0; kx < layer->kernel_w; kx++) {
            ftte_conv_rect t;
            if (ftte_conv_tap_rect(layer, ky, kx, &t))
                scatter_tap(layer, n, slice, t, grad_output, weights, grad_input);
        }
    return FTTE_OK;
}

ftte_status ftte_conv_backward_input_runs(const ftte_layer *layer, int32_t op, int32_t n,
                                          const ftte_conv_run *runs, int32_t count,
                                          const float *grad_output, float *grad_input,
                                          float *scratch) {
    if (runs == NULL || count < 1) return FTTE_ERR_ARG;
    for (int32_t i = 0; i < count; i++) {
        ftte_status status = check(layer, op, n, (ftte_slice){runs[i].begin, runs[i].count});
        if (status != FTTE_OK) return status;
        if (runs[i].w == NULL) return FTTE_ERR_ARG;
    }
    if (grad_output == NULL || grad_input == NULL || scratch == NULL) return FTTE_ERR_ARG;
    if (!gathers(layer)) { /* tap by tap: a run at a time */
        for (int32_t i = 0; i < count; i++) {
            const ftte_slice slice = {runs[i].begin, runs[i].count};
            ftte_status status = ftte_conv_backward_input(layer, op, n, slice, grad_output,
                                                          runs[i].w, grad_input, scratch);
            if (status != FTTE_OK) return status;
        }
        return FTTE_OK;
    }
#if FTTE_HOST_TILES
    if (host_gather(layer, n, runs, count, grad_output, grad_input)) return FTTE_OK;
    /* Runs whose panels fit alone keep the host's order; the others take the board's. */
    for (int32_t i = 0; i < count; i++)
        if (!host_gather(layer, n, runs + i, 1, grad_output, grad_input))
            gather(layer, n, runs + i, 1, grad_output, grad_input, scratch);
    return FTTE_OK;
#else
    gather(layer, n, runs, count, grad_output, grad_input, scratch);
    return FTTE_OK;
#endif
}

/* ---------------------------------------------------------------------------------------- */
/* Backward to the weights                                                                   */
/* ---------------------------------------------------------------------------------------- */

#if !FTTE_HOST_TILES
/* Row i of the tile from / to gw[0 .. width). */
FTTE_INLINE acc32 load_weight_row(acc32 a, int32_t i, const float *gw, const int32_t width) {
    a.v[4 * i] = gw[0];
    if (width > 1) a.v[4 * i + 1] = gw[1];
    if (width > 2) a.v[4 * i + 2] = gw[2];
    if (width > 3) a.v[4 * i + 3] = gw[3];
    return a;
}

FTTE_INLINE void store_weight_row(float *gw, acc32 a, int32_t i, const int32_t width) {
    gw[0] = a.v[4 * i];
    if (width > 1) gw[1] = a.v[4 * i + 1];
    if (width > 2) gw[2] = a.v[4 * i + 2];
    if (width > 3) gw[3] = a.v[4 * i + 3];
}

/* One position: a[i][j] += g[i] * x[j] for i < rows, j < width. The x stay in registers and
 * each g is loaded just before its row, so that 24 accumulators still fit. */
/* Where each tile row's gradient is from g: g[o_i] when gathered (rows that are not
 * consecutive output channels; o_0 = 0), else g[i]. */
FTTE_INLINE acc32 weight_step(acc32 a, const float *g, int32_t o1, int32_t o2, int32_t o3,
                              const int gathered, const float *x, const int32_t rows,
                              const int32_t width) {
#define G(i) (gathered ? g[(i) == 0 ? 0 : (i) == 1 ? o1 : (i) == 2 ? o2 : o3] : g[i])
    const float x0 = x[0], x1 = width > 1 ? x[1] : 0.0f, x2 = width > 2 ? x[2] : 0.0f;
    const float x3 = width > 3 ? x[3] : 0.0f;
    a = acc_row(a, 0, G(0), x0, x1, x2, x3, width);
    if (rows > 1) a = acc_row(a, 1, G(1), x0, x1, x2, x3, width);
    if (rows > 2) a = acc_row(a, 2, G(2), x0, x1, x2, x3, width);
    if (rows > 3) a = acc_row(a, 3, G(3), x0, x1, x2, x3, width);
#undef G
    if (rows > 4) a = acc_row(a, 4, g[4], x0, x1, x2, x3, width);
    if (rows > 5) a = acc_row(a, 5, g[5], x0, x1, x2, x3, width);
    if (rows > 6) a = acc_row(a, 6, g[6], x0, x1, x2, x3, width);
    if (rows > 7) a = acc_row(a, 7, g[7], x0, x1, x2, x3, width);
    return a;
}

/* gw[i * len + j] += sum over tap t's rectangle of gy[p][i] * input[pixel under t][j], for
 * i < rows output channels (gy at the first) and j < width input channels (input and gw at
 * the first): the accumulators stay in registers over all the positions. */
FTTE_INLINE void weight_tile(const ftte_layer *l, int32_t n, ftte_conv_rect t, const float *gy,
                             const float *input, float *gw, int32_t len, const int32_t *go,
                             const int gathered, const int32_t rows, const int32_t width) {
    const int32_t o1 = gathered ? go[1] : 1, o2 = gathered ? go[2] : 2, o3 = gathered ? go[3] : 3;
    acc32 a = {{0.0f}};
    a = load_weight_row(a, 0, gw, width);
    if (rows > 1) a = load_weight_row(a, 1, gw + len, width);
    if (rows > 2) a = load_weight_row(a, 2, gw + 2 * len, width);
    if (rows > 3) a = load_weight_row(a, 3, gw + 3 * len, width);
    if (rows > 4) a = load_weight_row(a, 4, gw + 4 * len, width);
    if (rows > 5) a = load_weight_row(a, 5, gw + 5 * len, width);
    if (rows > 6) a = load_weight_row(a, 6, gw + 6 * len, width);
    if (rows > 7) a = load_weight_row(a, 7, gw + 7 * len, width);
    const ptrdiff_t g_step = l->out.c, x_step = (ptrdiff_t)l->stride_w * l->in.c;
    const int32_t x0 = t.x_lo * l->stride_w - l->pad_left + t.kx; /* >= 0 */
    for (int32_t b = 0; b < n; b++) {
        for (int32_t oy = t.y_lo; oy < t.y_hi; oy++) {
            const int32_t y = oy * l->stride_h - l->pad_top + t.ky;
            const float *g = gy + (((ptrdiff_t)b * l->out.h + oy) * l->out.w + t.x_lo) * g_step;
            const float *x = input + (((ptrdiff_t)b * l->in.h + y) * l->in.w + x0) * l->in.c;
            for (const float *end = g + (t.x_hi - t.x_lo) * g_step; g != end;
                 g += g_step, x += x_step)
                a = weight_step(a, g, o1, o2, o3, gathered, x, rows, width);
        }
    }
    store_weight_row(gw, a, 0, width);
    if (rows > 1) store_weight_row(gw + len, a, 1, width);
    if (rows > 2) store_weight_row(gw + 2 * len, a, 2, width);
    if (rows > 3) store_weight_row(gw + 3 * len, a, 3, width);
    if (rows > 4) store_weight_row(gw + 4 * len, a, 4, width);
    if (rows > 5) store_weight_row(gw + 5 * len, a, 5, width);
    if (rows > 6) store_weight_row(gw + 6 * len, a, 6, width);
    if (rows > 7) store_weight_row(gw + 7 * len, a, 7, width);
}

/* One function per tile shape, each compiled with its shape constant: 4 x 4 for input
 * channels in fours, 8 x (1 to 3) for the rest of a pixel's channels (24 accumulators at
 * most), 4 x 1 and 1 x (1 or 4) for the slice's last channels. */
#define WEIGHT_TILE_ARGS                                                                       \
    const ftte_layer *l, int32_t n, ftte_conv_rect t, const float *gy, const float *input,   \
        float *gw, int32_t len
#define WEIGHT_TILE(rows, width)                                                               \
    FTTE_NOINLINE static void weight_##rows##x##width(WEIGHT_TILE_ARGS) {                      \
        weight_tile(l, n, t, gy, input, gw, len, NULL, 0, rows, width);                        \
    }
WEIGHT_TILE(4, 4) WEIGHT_TILE(1, 4) WEIGHT_TILE(8, 3) WEIGHT_TILE(8, 2) WEIGHT_TILE(8, 1)
WEIGHT_TILE(4, 1) WEIGHT_TILE(1, 1)
#undef WEIGHT_TILE
/* 4 output channels that are not consecutive, channel i's gradient at gy[go.v[i]]: one more
 * instruction per row and position than the tile of consecutive channels (the FPU's loads
 * take no register offset), where per run they would go through the 1-row tiles. */
#define GATHERED_TILE(width)                                                                   \
    FTTE_NOINLINE static void weight_g4x##width(WEIGHT_TILE_ARGS, const int32_t *go) {         \
        weight_tile(l, n, t, gy, input, gw, len, go, 1, 4, width);                             \
    }
GATHERED_TILE(4) GATHERED_TILE(3) GATHERED_TILE(2) GATHERED_TILE(1)
#undef GATHERED_TILE
#undef WEIGHT_TILE_ARGS

/* Input channels [c, c + width) of tap t (width 1 to 3, the end of a pixel's channels), for
 * the slice's count output channels from gy / gw on. */
static void weight_channels(const ftte_layer *l, int32_t n, ftte_conv_rect t, int32_t count,
                            const float *gy, const float *input, float *gw, int32_t len,
                            int32_t width) {
    int32_t o = 0;
    for (; o + 8 <= count; o += 8, gy += 8, gw += 8 * (ptrdiff_t)len) {
        if (width == 3) weight_8x3(l, n, t, gy, input, gw, len);
        else if (width == 2) weight_8x2(l, n, t, gy, input, gw, len);
        else weight_8x1(l, n, t, gy, input, gw, len);
    }
    for (int32_t j = 0; j < width; j++) {
        const float *g = gy;
        float *w = gw + j;
        int32_t i = o;
        for (; i + 4 <= count; i += 4, g += 4, w += 4 * (ptrdiff_t)len)
            weight_4x1(l, n, t, g, input + j, w, len);
        for (; i < count; i++, g++, w += len) weight_1x1(l, n, t, g, input + j, w, len);
    }
}

/* Tap t's weights of every input channel, for the slice's output channels. */
static void weight_tap(const ftte_layer *l, int32_t n, ftte_slice slice, ftte_conv_rect t,
                       const float *grad_output, const float *input, float *grad_weights) {
    const int32_t len = row_length(l), tap = (t.ky * l->kernel_w + t.kx) * l->in.c;
    const float *gy = grad_output + slice.begin;
    int32_t c = 0;
    for (; c + 4 <= l->in.c; c += 4) {
        float *gw = grad_weights + tap + c;
        int32_t o = 0;
        for (; o + 4 <= slice.count; o += 4, gw += 4 * (ptrdiff_t)len)
            weight_4x4(l, n, t, gy + o, input + c, gw, len);
        for (; o < slice.count; o++, gw += len) weight_1x4(l, n, t, gy + o, input + c, gw, len);
    }
    if (c < l->in.c)
        weight_channels(l, n, t, slice.count, gy, input + c, grad_weights + tap + c, len,
                        l->in.c - c);
}

/* Tap t's weights of every input channel for `count` output channels ch[0..count) (ascending,
 * their gradient rows packed from grad_weights on): 4 channels per tile wherever they are. */
static void weight_tap_channels(const ftte_layer *l, int32_t n, const int32_t *ch, int32_t count,
                                ftte_conv_rect t, const float *grad_output, const float *input,
                                float *grad_weights) {
    const int32_t len = row_length(l), tap = (t.ky * l->kernel_w + t.kx) * l->in.c;
    for (int32_t c = 0; c < l->in.c; c += 4) {
        const int32_t width = l->in.c - c < 4 ? l->in.c - c : 4;
        float *gw = grad_weights + tap + c;
        int32_t o = 0;
        for (; o + 4 <= count; o += 4, gw += 4 * (ptrdiff_t)len) {
            const float *gy = grad_output + ch[o];
            const int32_t go[4] = {0, ch[o + 1] - ch[o], ch[o + 2] - ch[o], ch[o + 3] - ch[o]};
            if (width == 4 && go[3] == 3) weight_4x4(l, n, t, gy, input + c, gw, len);
            else if (width == 4) weight_g4x4(l, n, t, gy, input + c, gw, len, go);
            else if (width == 3) weight_g4x3(l, n, t, gy, input + c, gw, len, go);
            else if (width == 2) weight_g4x2(l, n, t, gy, input + c, gw, len, go);
            else weight_g4x1(l, n, t, gy, input + c, gw, len, go);
        }
        for (; o < count; o++, gw += len) {
            const float *gy = grad_output + ch[o];
            if (width == 4) weight_1x4(l, n, t, gy, input + c, gw, len);
            else
                for (int32_t j = 0; j < width; j++)
                    weight_1x1(l, n, t, gy, input + c + j, gw + j, len);
        }
    }
}

#else
/* The vector host's weight gradient: 8 output channels per vector (gy is contiguous along
 * them), J columns of a weight row (tap, input channel) at a time, so that J sums proceed
 * side by side where the board's tiles have a few. Each gw[o][j] is summed as the board sums
 * it: from its value in memory, over the batch's positions in order, skipping those whose
 * tap falls in the padding. */
typedef struct {
    int32_t off, ky, kx, c; /* offset in a window from its corner; its tap and channel */
} window_column;

/* *v = gw[m * len] for the m < lanes (0 past them). */
FTTE_INLINE void column_of(vec8 *v, const float *gw, int32_t len, int32_t lanes) {
    const vec8 zero = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
    *v = zero;
    for (int32_t m = 0; m < 8; m++)
        if (m < lanes) (*v)[m] = gw[(ptrdiff_t)m * len];
}

/* Output channels [0, lanes) (up to 8 * V) from gy and gw, columns col[0 .. J) of gw. */
FTTE_INLINE void host_weight_block(const ftte_layer *l, int32_t n, const float *gy,
                                   const float *input, const window_column *col, float *gw,
                                   int32_t len, int32_t lanes, const int32_t *ch,
                                   const int32_t V, const int32_t J) {
    /* Locals: the vector stores go through memcpy, which may alias *l. */
    const ftte_shape in = l->in, out = l->out;
    const int32_t kh = l->kernel_h, kw = l->kernel_w, sh = l->stride_h, sw = l->stride_w;
    const int32_t top = l->pad_top, left = l->pad_left;
    vec8 acc[2][8];
    const int32_t lanes0 = lanes < 8 ? lanes : 8, lanes1 = lanes - lanes0;
    float *gw1 = gw + 8 * (ptrdiff_t)len;
    /* Unrolled by hand, here and below: an index GCC cannot resolve puts acc in memory. */
#define EACH(F) F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7)
#define LOAD(j)                                                                                \
    if (J > (j)) {                                                                             \
        column_of(&acc[0][j], gw + (j), len, lanes0);                                       \
        if (V > 1) column_of(&acc[1][j], gw1 + (j), len, lanes1);                           \
    }
    EACH(LOAD)
#undef LOAD
    for (int32_t b = 0; b < n; b++)
        for (int32_t oy = 0; oy < out.h; oy++) {
            const int32_t y = oy * sh - top;
            const int rows_inside = y >= 0 && y + kh <= in.h;
            for (int32_t ox = 0; ox < out.w; ox++) {
                const int32_t x = ox * sw - left;
                const float *g = gy + (((ptrdiff_t)b * out.h + oy) * out.w + ox) * out.c;
                vec8 gv, gv1 = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
                if (ch) { /* channels ch[m] (from gy), not consecutive */
                    float part[16] = {0.0f};
                    for (int32_t m = 0; m < lanes; m++) part[m] = g[ch[m]];
                    load8(&gv, part);
                    if (V > 1) load8(&gv1, part + 8);
                } else {
                    load_lanes(&gv, g, lanes0);
                    if (V > 1) load_lanes(&gv1, g + 8, lanes1);
                }
#define COLUMN(j, inside, at)                                                                  \
    if (J > (j) && (inside)) {                                                                 \
        const float u = (at);                                                                  \
        const vec8 uv = {u, u, u, u, u, u, u, u};                                              \
        FTTE_MAC(acc[0][j], gv, uv);                                                           \
        if (V > 1) FTTE_MAC(acc[1][j], gv1, uv);                                               \
    }
#define COLUMNS(inside, at)                                                                    \
    COLUMN(0, inside(0), at(0)) COLUMN(1, inside(1), at(1)) COLUMN(2, inside(2), at(2))         \
    COLUMN(3, inside(3), at(3)) COLUMN(4, inside(4), at(4)) COLUMN(5, inside(5), at(5))         \
    COLUMN(6, inside(6), at(6)) COLUMN(7, inside(7), at(7))
                if (rows_inside && x >= 0 && x + kw <= in.w) {
                    const float *p = input + (((ptrdiff_t)b * in.h + y) * in.w + x) * in.c;
#define ALWAYS(j) 1
#define AT(j) p[col[j].off]
                    COLUMNS(ALWAYS, AT)
#undef ALWAYS
#undef AT
                } else { /* the taps over the padding are skipped, as the board's loops do */
#define INSIDE(j)                                                                              \
    (y + col[j].ky >= 0 && y + col[j].ky < in.h && x + col[j].kx >= 0 && x + col[j].kx < in.w)
#define AT(j)                                                                                  \
    input[(((ptrdiff_t)b * in.h + y + col[j].ky) * in.w + x + col[j].kx) * in.c + col[j].c]
                    COLUMNS(INSIDE, AT)
#undef INSIDE
#undef AT
                }
#undef COLUMNS
#undef COLUMN
            }
        }
    float t[8];
#define STORE(j)                                                                               \
    if (J > (j)) {                                                                             \
        store8(t, &acc[0][j]);                                                                 \
        for (int32_t m = 0; m < lanes0; m++) gw[(ptrdiff_t)m * len + (j)] = t[m];             \
        if (V > 1) {                                                                           \
            store8(t, &acc[1][j]);                                                             \
            for (int32_t m = 0; m < lanes1; m++) gw1[(ptrdiff_t)m * len + (j)] = t[m];        \
        }                                                                                      \
    }
    EACH(STORE)
#undef STORE
#undef EACH
}

/* 16 output channels x 8 columns (16 sums, in the 32 vector registers of AVX-512VL or
 * SVE), or 8 x 8, 8 x 4, ..., each shape compiled on its own. */
#define HOST_WEIGHT(V, J)                                                                      \
    FTTE_NOINLINE static void host_weight_##V##x##J(                                           \
        const ftte_layer *l, int32_t n, const float *gy, const float *input,                   \
        const window_column *col, float *gw, int32_t len, int32_t lanes) {                     \
        host_weight_block(l, n, gy, input, col, gw, len, lanes, NULL, V, J);                    \
    }                                                                                          \
    FTTE_NOINLINE static void host_weight_g##V##x##J(                                          \
        const ftte_layer *l, int32_t n, const float *gy, const float *input,                   \
        const window_column *col, float *gw, int32_t len, int32_t lanes, const int32_t *ch) {  \
        host_weight_block(l, n, gy, input, col, gw, len, lanes, ch, V, J);                      \
    }
HOST_WEIGHT(2, 8) HOST_WEIGHT(2, 4) HOST_WEIGHT(2, 2) HOST_WEIGHT(2, 1)
HOST_WEIGHT(1, 8) HOST_WEIGHT(1, 4) HOST_WEIGHT(1, 2) HOST_WEIGHT(1, 1)
#undef HOST_WEIGHT

typedef void host_weight_fn(const ftte_layer *l, int32_t n, const float *gy, const float *input,
                            const window_column *col, float *gw, int32_t len, int32_t lanes);
typedef void host_weight_gathered_fn(const ftte_layer *l, int32_t n, const float *gy,
                                     const float *input, const window_column *col, float *gw,
                                     int32_t len, int32_t lanes, const int32_t *ch);

/* The output channels of the slice, or with ch the count channels ch[0..count) (ascending,
 * their gradient rows packed from grad_weights on; slice.begin 0): 16 per block wherever they
 * are, gathered lane by lane unless consecutive. */
static void host_weight(const ftte_layer *l, int32_t n, ftte_slice slice, const int32_t *ch,
                        const float *input, const float *grad_output, float *grad_weights) {
    static host_weight_fn *const shapes[2][4] = {
        {host_weight_1x8, host_weight_1x4, host_weight_1x2, host_weight_1x1},
        {host_weight_2x8, host_weight_2x4, host_weight_2x2, host_weight_2x1}};
    static host_weight_gathered_fn *const gathered[2][4] = {
        {host_weight_g1x8, host_weight_g1x4, host_weight_g1x2, host_weight_g1x1},
        {host_weight_g2x8, host_weight_g2x4, host_weight_g2x2, host_weight_g2x1}};
    const int32_t len = row_length(l), c = l->in.c;
    for (int32_t o = 0; o < slice.count;) {
        const int32_t lanes = slice.count - o < 16 ? slice.count - o : 16, two = lanes > 8;
        const int32_t *chs = ch && ch[o + lanes - 1] - ch[o] != lanes - 1 ? ch + o : NULL;
        int32_t rel[16];
        if (chs)
            for (int32_t m = 0; m < lanes; m++) rel[m] = chs[m] - chs[0];
        const float *gy = grad_output + slice.begin + (ch ? ch[o] : o);
        float *gw = grad_weights + (ptrdiff_t)o * len;
        for (int32_t j = 0; j < len;) {
            window_column col[8];
            const int32_t left = len - j, J = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
            for (int32_t i = 0; i < J; i++) {
                const int32_t tap = (j + i) / c;
                col[i].ky = tap / l->kernel_w, col[i].kx = tap % l->kernel_w;
                col[i].c = (j + i) % c;
                col[i].off = (col[i].ky * l->in.w + col[i].kx) * c + col[i].c;
            }
            const int32_t shape = J == 8 ? 0 : J == 4 ? 1 : J == 2 ? 2 : 3;
            if (chs) gathered[two][shape](l, n, gy, input, col, gw + j, len, lanes, rel);
            else shapes[two][shape](l, n, gy, input, col, gw + j, len, lanes);
            j += J;
        }
        o += lanes;
    }
}
#endif

ftte_status ftte_conv_backward_weight(const ftte_layer *layer, int32_t op, int32_t n,
                                      ftte_slice slice, const float *input,
                                      const float *grad_output, float *grad_weights,
                                      float *scratch) {
    ftte_status status = check(layer, op, n, slice);
    if (status != FTTE_OK) return status;
    if (input == NULL || grad_output == NULL || grad_weights == NULL || scratch == NULL)
        return FTTE_ERR_ARG;
#if FTTE_HOST_TILES
    host_weight(layer, n, slice, NULL, input, grad_output, grad_weights);
#else
    for (int32_t ky = 0; ky < layer->kernel_h; ky++)
        for (int32_t kx = 0; kx < layer->kernel_w; kx++) {
            ftte_conv_rect t;
            if (ftte_conv_tap_rect(layer, ky, kx, &t))
                weight_tap(layer, n, slice, t, grad_output, input, grad_weights);
        }
#endif
    return FTTE_OK;
}

ftte_status ftte_conv_backward_weight_rows(const ftte_layer *layer, int32_t op, int32_t n,
                                           const uint8_t *mask, const float *input,
                                           const float *grad_output, float *grad_weights,
                                           float *scratch) {
    const ftte_slice all = {0, layer->out.c};
    ftte_status status = check(layer, op, n, all);
    if (status != FTTE_OK) return status;
    if (mask == NULL || input == NULL || grad_output == NULL || grad_weights == NULL ||
        scratch == NULL)
        return FTTE_ERR_ARG;
    enum { CHUNK = 32 };
    int32_t ch[CHUNK], count = 0;
    const int32_t len = row_length(layer);
    for (int32_t o = 0; o < layer->out.c; o++) {
        if ((mask[o >> 3] >> (o & 7)) & 1) ch[count++] = o;
        if (count == 0 || (count < CHUNK && o + 1 < layer->out.c)) continue;
#if FTTE_HOST_TILES
        const ftte_slice slice = {0, count};
        host_weight(layer, n, slice, ch, input, grad_output, grad_weights);
#else
        for (int32_t ky = 0; ky < layer->kernel_h; ky++)
            for (int32_t kx = 0; kx < layer->kernel_w; kx++) {
                ftte_conv_rect t;
                if (ftte_conv_tap_rect(layer, ky, kx, &t))
                    weight_tap_channels(layer, n, ch, count, t, grad_output, input,
                                        grad_weights);
            }
#endif
        grad_weights += (ptrdiff_t)count * len;
        count = 0;
    }
    return FTTE_OK;
}
