/* Max pool 2-D forward that also records, per output element, where in its window the first
 * maximum was: one byte instead of keeping the whole float input for the backward pass. */
#include "ftte_kernels.h"
#include "internal/ftte_mac.h"

static ftte_status check(const ftte_layer *layer, int32_t n, const float *input,
                         const float *output, const uint8_t *argmax) {
    ftte_status status = ftte_layer_validate(layer);
    if (status != FTTE_OK) return status;
    if (layer->op != FTTE_OP_MAX_POOL2D) return FTTE_ERR_UNSUPPORTED;
    if (layer->kernel_h * layer->kernel_w > 256) return FTTE_ERR_UNSUPPORTED;
    if (n <= 0 || input == 0 || output == 0 || argmax == 0) return FTTE_ERR_ARG;
    return FTTE_OK;
}

#if !FTTE_HOST_TILES
/* One output pixel: strict '>' keeps the first maximum in row-major (ky, kx) order, as the
 * float-input backward pass does. Each channel's maximum and its place stay in registers
 * until its window is done (kept in out and where instead, they are reloaded after every
 * store: for all the compiler knows, out may alias the input). */
static void pool_pixel(const ftte_layer *l, const float *corner, float *out, uint8_t *where) {
    const int32_t channels = l->in.c, row = l->in.w * channels;
    for (int32_t c = 0; c < channels; c++) {
        const float *p = corner + c;
        float best = *p;
        int32_t at = 0;
        for (int32_t ky = 0, t = 0; ky < l->kernel_h; ky++, p += row)
            for (int32_t kx = 0; kx < l->kernel_w; kx++, t++) {
                const float v = p[kx * channels];
                if (v > best) best = v, at = t;
            }
        out[c] = best;
        where[c] = (uint8_t)at;
    }
}

#else
/* On a vector host, 8 channels at a time: the same strict '>' per lane, selected by mask. */

static void pool_pixel(const ftte_layer *l, const float *corner, float *out, uint8_t *where) {
    const int32_t channels = l->in.c, row = l->in.w * channels;
    for (int32_t c = 0; c < channels; c += 8) {
        const int32_t lanes = channels - c < 8 ? channels - c : 8;
        vec8 best;
        vec8i at = {0, 0, 0, 0, 0, 0, 0, 0};
        load_lanes(&best, corner + c, lanes);
        for (int32_t ky = 0, t = 0; ky < l->kernel_h; ky++)
            for (int32_t kx = 0; kx < l->kernel_w; kx++, t++) {
                vec8 v;
                load_lanes(&v, corner + ky * row + kx * channels + c, lanes);
                const vec8i more = v > best, tv = {t, t, t, t, t, t, t, t};
                best = (vec8)(((vec8i)v & more) | ((vec8i)best & ~more));
                at = (tv & more) | (at & ~more);
            }
        store_lanes(out + c, &best, lanes);
        for (int32_t j = 0; j < lanes; j++) where[c + j] = (uint8_t)at[j];
    }
}
#endif

ftte_status ftte_max_pool2d_forward_indexed(const ftte_layer *layer, int32_t n,
                                            const float *input, float *output,
                                            uint8_t *argmax) {
    ftte_status status = check(layer, n, input, output, argmax);
    if (status != FTTE_OK) return status;
    const ftte_layer *l = layer;
    const int32_t channels = l->in.c, in_size = ftte_shape_size(l->in);
    const int32_t out_size = ftte_shape_size(l->out);
    for (int32_t b = 0; b < n; b++) {
        for (int32_t oy = 0; oy < l->out.h; oy++) {
            for (int32_t ox = 0; ox < l->out.w; ox++) {
                const int32_t at = (oy * l->out.w + ox) * channels;
                pool_pixel(l, input + ((oy * l->stride_h) * l->in.w + ox * l->stride_w) * channels,
                           output + at, argmax + at);
            }
        }
        input += in_size;
        output += out_size;
        argmax += out_size;
    }
    return FTTE_OK;
}

int32_t ftte_max_pool2d_forward_indexed_get_buffer_size(const ftte_layer *layer, int32_t n) {
    (void)layer;
    (void)n;
    return 0;
}
