/* Layer geometry: validation, weight row length and MAC count of a layer record. */
#include "ftte_kernels.h"

/* Every window along one axis must overlap the input, so that padding never exceeds the
 * kernel and the last window starts inside the input. */
static int axis_ok(int32_t in, int32_t out, int32_t kernel, int32_t stride, int32_t pad) {
    if (in <= 0 || out <= 0 || kernel <= 0 || stride <= 0 || pad < 0) return 0;
    if (pad >= kernel) return 0;
    return (int64_t)(out - 1) * stride - pad < in;
}

static int shape_ok(ftte_shape s) { return s.h > 0 && s.w > 0 && s.c > 0; }

static int windowed_ok(const ftte_layer *l) {
    return axis_ok(l->in.h, l->out.h, l->kernel_h, l->stride_h, l->pad_top) &&
           axis_ok(l->in.w, l->out.w, l->kernel_w, l->stride_w, l->pad_left);
}

/* Pooling has no padding and no window past the input's end. */
static int pooled_ok(const ftte_layer *l) {
    if (l->pad_top != 0 || l->pad_left != 0 || !windowed_ok(l)) return 0;
    return (int64_t)(l->out.h - 1) * l->stride_h + l->kernel_h <= l->in.h &&
           (int64_t)(l->out.w - 1) * l->stride_w + l->kernel_w <= l->in.w;
}

static int same_shape(ftte_shape a, ftte_shape b) { return a.h == b.h && a.w == b.w && a.c == b.c; }

ftte_status ftte_layer_validate(const ftte_layer *l) {
    if (l == 0) return FTTE_ERR_ARG;
    if (!shape_ok(l->in) || !shape_ok(l->out)) return FTTE_ERR_SHAPE;
    /* Sizes are int32 element counts; refuse layers whose tensors could overflow them. */
    if ((int64_t)l->in.h * l->in.w * l->in.c > INT32_MAX / 4 ||
        (int64_t)l->out.h * l->out.w * l->out.c > INT32_MAX / 4)
        return FTTE_ERR_SHAPE;
    switch (l->op) {
    case FTTE_OP_DENSE:
        return (l->in.h == 1 && l->in.w == 1 && l->out.h == 1 && l->out.w == 1) ? FTTE_OK
                                                                                : FTTE_ERR_SHAPE;
    case FTTE_OP_CONV2D:
        return windowed_ok(l) ? FTTE_OK : FTTE_ERR_SHAPE;
    case FTTE_OP_CONV1D:
        return (l->in.h == 1 && l->out.h == 1 && l->kernel_h == 1 && l->stride_h == 1 &&
                l->pad_top == 0 && windowed_ok(l))
                   ? FTTE_OK
                   : FTTE_ERR_SHAPE;
    case FTTE_OP_DEPTHWISE_CONV2D:
        return (l->in.c == l->out.c && windowed_ok(l)) ? FTTE_OK : FTTE_ERR_SHAPE;
    case FTTE_OP_POINTWISE_CONV2D:
        return (l->in.h == l->out.h && l->in.w == l->out.w) ? FTTE_OK : FTTE_ERR_SHAPE;
    case FTTE_OP_RELU:
    case FTTE_OP_RELU6:
        return same_shape(l->in, l->out) ? FTTE_OK : FTTE_ERR_SHAPE;
    case FTTE_OP_MAX_POOL2D:
    case FTTE_OP_AVG_POOL2D:
        return (l->in.c == l->out.c && pooled_ok(l)) ? FTTE_OK : FTTE_ERR_SHAPE;
    case FTTE_OP_GLOBAL_AVG_POOL:
        return (l->out.h == 1 && l->out.w == 1 && l->out.c == l->in.c) ? FTTE_OK
                                                                        : FTTE_ERR_SHAPE;
    case FTTE_OP_FLATTEN:
        return (l->out.h == 1 && l->out.w == 1 && l->out.c == ftte_shape_size(l->in))
                   ? FTTE_OK
                   : FTTE_ERR_SHAPE;
    default:
        return FTTE_ERR_UNSUPPORTED;
    }
}

int32_t ftte_layer_row_length(const ftte_layer *l) {
    switch (l->op) {
    case FTTE_OP_DENSE:
    case FTTE_OP_POINTWISE_CONV2D:
        return l->in.c;
    case FTTE_OP_CONV2D:
    case FTTE_OP_CONV1D:
        return l->kernel_h * l->kernel_w * l->in.c;
    case FTTE_OP_DEPTHWISE_CONV2D:
        return l->kernel_h * l->kernel_w;
    default:
        return 0;
    }
}

int64_t ftte_layer_macs(const ftte_layer *l) {
    int64_t positions = (int64_t)l->out.h * l->out.w;
    switch (l->op) {
    case FTTE_OP_DENSE:
    case FTTE_OP_POINTWISE_CONV2D:
    case FTTE_OP_CONV2D:
    case FTTE_OP_CONV1D:
    case FTTE_OP_DEPTHWISE_CONV2D:
        return positions * l->out.c * ftte_layer_row_length(l);
    default:
        return 0;
    }
}
