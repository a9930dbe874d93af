/* One layer's forward and backward passes, dispatched by operator and split into the runs of
 * trainable rows (read from the arena) and frozen rows (read from the layer table in place). */
#include "train_internal.h"

#include "../ops/internal/conv_core.h"
#include "../ops/internal/rows_matmul.h"

typedef struct {
    const float *weights;
    const float *bias;
} run_params;

/* rows: ftte_update_rows(layer, update), counted once per layer call. */
static run_params params_of_run(const ftte_layer *layer, const ftte_layer_update *update,
                                const float *params, int32_t rows, const ftte_run *run) {
    int32_t row_length = ftte_layer_row_length(layer);
    run_params p;
    p.weights = run->trainable ? params + run->rank * row_length
                               : layer->weights + run->begin * row_length;
    if (ftte_update_trains_bias(layer, update)) {
        p.bias = params + rows * row_length + run->begin;
    } else {
        p.bias = layer->bias ? layer->bias + run->begin : 0;
    }
    return p;
}

int32_t ftte_layer_forward_scratch(const ftte_layer *layer, int32_t n) {
    switch (layer->op) {
    case FTTE_OP_CONV2D: return ftte_conv2d_forward_get_buffer_size(layer, n);
    case FTTE_OP_CONV1D: return ftte_conv1d_forward_get_buffer_size(layer, n);
    case FTTE_OP_DENSE: return ftte_dense_forward_get_buffer_size(layer, n);
    case FTTE_OP_POINTWISE_CONV2D: return ftte_pointwise_conv2d_forward_get_buffer_size(layer, n);
    case FTTE_OP_DEPTHWISE_CONV2D:
        return ftte_depthwise_conv2d_forward_get_buffer_size(layer, n);
    case FTTE_OP_MAX_POOL2D: return ftte_max_pool2d_forward_get_buffer_size(layer, n);
    case FTTE_OP_AVG_POOL2D: return ftte_avg_pool2d_forward_get_buffer_size(layer, n);
    case FTTE_OP_GLOBAL_AVG_POOL: return ftte_global_avg_pool_forward_get_buffer_size(layer, n);
    default: return 0;
    }
}

static int32_t backward_input_scratch(const ftte_layer *layer, int32_t n) {
    switch (layer->op) {
    case FTTE_OP_CONV2D: return ftte_conv2d_backward_input_get_buffer_size(layer, n);
    case FTTE_OP_CONV1D: return ftte_conv1d_backward_input_get_buffer_size(layer, n);
    case FTTE_OP_DENSE: return ftte_dense_backward_input_get_buffer_size(layer, n);
    case FTTE_OP_POINTWISE_CONV2D:
        return ftte_pointwise_conv2d_backward_input_get_buffer_size(layer, n);
    case FTTE_OP_DEPTHWISE_CONV2D:
        return ftte_depthwise_conv2d_backward_input_get_buffer_size(layer, n);
    case FTTE_OP_MAX_POOL2D: return ftte_max_pool2d_backward_get_buffer_size(layer, n);
    case FTTE_OP_AVG_POOL2D: return ftte_avg_pool2d_backward_get_buffer_size(layer, n);
    case FTTE_OP_GLOBAL_AVG_POOL: return ftte_global_avg_pool_backward_get_buffer_size(layer, n);
    default: return 0;
    }
}

static int32_t backward_weight_scratch(const ftte_layer *layer, int32_t n) {
    switch (layer->op) {
    case FTTE_OP_CONV2D: return ftte_conv2d_backward_weight_get_buffer_size(layer, n);
    case FTTE_OP_CONV1D: return ftte_conv1d_backward_weight_get_buffer_size(layer, n);
    case FTTE_OP_DENSE: return ftte_dense_backward_weight_get_buffer_size(layer, n);
    case FTTE_OP_POINTWISE_CONV2D:
        return ftte_pointwise_conv2d_backward_weight_get_buffer_size(layer, n);
    case FTTE_OP_DEPTHWISE_CONV2D:
        return ftte_depthwise_conv2d_backward_weight_get_buffer_size(layer, n);
    default: return 0;
    }
}

int32_t ftte_layer_backward_scratch(const ftte_layer *layer, int32_t n, int needs_input_grad,
                                    int needs_weight_grad) {
    int32_t a = needs_input_grad ? backward_input_scratch(layer, n) : 0;
    int32_t b = needs_weight_grad ? backward_weight_scratch(layer, n) : 0;
    return a > b ? a : b;
}

static ftte_status weighted_forward(const ftte_layer *l, ftte_slice s, run_params p, int32_t n,
                                    const float *in, float *out, float *scratch) {
    switch (l->op) {
    case FTTE_OP_DENSE: return ftte_dense_forward(l, n, s, in, p.weights, p.bias, out);
    case FTTE_OP_POINTWISE_CONV2D:
        return ftte_pointwise_conv2d_forward(l, n, s, in, p.weights, p.bias, out);
    case FTTE_OP_DEPTHWISE_CONV2D:
        return ftte_depthwise_conv2d_forward(l, n, s, in, p.weights, p.bias, out);
    case FTTE_OP_CONV2D: return ftte_conv2d_forward(l, n, s, in, p.weights, p.bias, out, scratch);
    case FTTE_OP_CONV1D: return ftte_conv1d_forward(l, n, s, in, p.weights, p.bias, out, scratch);
    default: return FTTE_ERR_UNSUPPORTED;
    }
}

static ftte_status activation_forward(int32_t op, int32_t size, const float *in, float *out,
                                      uint32_t *mask) {
    int relu = op == FTTE_OP_RELU;
    ftte_status status = relu ? ftte_relu_forward(size, in, out) : ftte_relu6_forward(size, in, out);
    if (status != FTTE_OK || mask == 0) return status;
    return relu ? ftte_relu_mask(size, out, mask) : ftte_relu6_mask(size, out, mask);
}

static ftte_status plain_forward(const ftte_layer *l, int32_t n, const float *in, float *out,
                                 void *aux) {
    int32_t size = n * ftte_out_size(l);
    switch (l->op) {
    case FTTE_OP_RELU:
    case FTTE_OP_RELU6: return activation_forward(l->op, size, in, out, (uint32_t *)aux);
    case FTTE_OP_MAX_POOL2D:
        return aux ? ftte_max_pool2d_forward_indexed(l, n, in, out, (uint8_t *)aux)
                   : ftte_max_pool2d_forward(l, n, in, out);
    case FTTE_OP_AVG_POOL2D: return ftte_avg_pool2d_forward(l, n, in, out);
    case FTTE_OP_GLOBAL_AVG_POOL: return ftte_global_avg_pool_forward(l, n, in, out);
    case FTTE_OP_FLATTEN: return in == out ? FTTE_OK : ftte_flatten_forward(l, n, in, out);
    default: return FTTE_ERR_UNSUPPORTED;
    }
}

/* Conv layers whose channels train in several runs: every run in one pass over the windows. */
static int conv_in_runs(const ftte_layer *layer, const ftte_layer_update *update) {
    return update->mode == FTTE_UPDATE_CHANNELS &&
           (layer->op == FTTE_OP_CONV2D || layer->op == FTTE_OP_CONV1D);
}

/* Dense and pointwise layers whose channels train in several runs: one row matmul over every
 * output channel, each weight row from the arena or the layer table. */
static int rows_in_runs(const ftte_layer *layer, const ftte_layer_update *update) {
    return update->mode == FTTE_UPDATE_CHANNELS &&
           (layer->op == FTTE_OP_DENSE || layer->op == FTTE_OP_POINTWISE_CONV2D);
}

static ftte_slice all_rows(const ftte_layer *layer) {
    ftte_slice s = {0, layer->out.c};
    return s;
}

ftte_status ftte_layer_forward(const ftte_layer *layer, const ftte_layer_update *update,
                               const float *params, int32_t n, const float *input, float *output,
                               float *scratch, void *aux) {
    if (!ftte_op_has_weights(layer->op)) return plain_forward(layer, n, input, output, aux);
    const int32_t rows = ftte_update_rows(layer, update);
    if (conv_in_runs(layer, update)) {
        const ftte_weight_rows w = {params, layer->weights, update->channel_mask, 0};
        const float *bias = ftte_update_trains_bias(layer, update)
                                ? params + rows * ftte_layer_row_length(layer)
                                : layer->bias;
        return ftte_conv_forward_rows(layer, layer->op, n, w, input, bias, output, scratch);
    }
    if (rows_in_runs(layer, update)) {
        int32_t pixels;
        ftte_status status = ftte_rows_check(layer, layer->op, n, all_rows(layer), &pixels);
        if (status != FTTE_OK) return status;
        if (input == 0 || output == 0) return FTTE_ERR_ARG;
        const ftte_weight_rows w = {params, layer->weights, update->channel_mask, 0};
        const float *bias = ftte_update_trains_bias(layer, update)
                                ? params + rows * ftte_layer_row_length(layer)
                                : layer->bias;
        ftte_rows_forward_rows(pixels, layer->in.c, layer->out.c, w, input, bias, output);
        return FTTE_OK;
    }
    ftte_run run = {0, 0, 0, 0};
    while (ftte_next_run(layer, update, &run)) {
        ftte_slice slice = {run.begin, run.count};
        run_params p = params_of_run(layer, update, params, rows, &run);
        ftte_status status = weighted_forward(layer, slice, p, n, input, output, scratch);
        if (status != FTTE_OK) return status;
    }
    return FTTE_OK;
}

static ftte_status weighted_backward_input(const ftte_layer *l, ftte_slice s, const float *w,
                                           int32_t n, const float *g_out, float *g_in,
                                           float *scratch) {
    switch (l->op) {
    case FTTE_OP_DENSE: return ftte_dense_backward_input(l, n, s, g_out, w, g_in);
    case FTTE_OP_POINTWISE_CONV2D:
        return ftte_pointwise_conv2d_backward_input(l, n, s, g_out, w, g_in);
    case FTTE_OP_DEPTHWISE_CONV2D:
        return ftte_depthwise_conv2d_backward_input(l, n, s, g_out, w, g_in);
    case FTTE_OP_CONV2D: return ftte_conv2d_backward_input(l, n, s, g_out, w, g_in, scratch);
    case FTTE_OP_CONV1D: return ftte_conv1d_backward_input(l, n, s, g_out, w, g_in, scratch);
    default: return FTTE_ERR_UNSUPPORTED;
    }
}

static ftte_status plain_backward_input(const ftte_layer *l, int32_t n, const float *input,
                                        const float *output, const void *aux,
                                        const float *g_out, float *g_in) {
    int32_t size = n * ftte_out_size(l);
    if (aux && (l->op == FTTE_OP_RELU || l->op == FTTE_OP_RELU6))
        return ftte_activation_backward_masked(size, (const uint32_t *)aux, g_out, g_in);
    switch (l->op) {
    case FTTE_OP_RELU: return ftte_relu_backward(size, output, g_out, g_in);
    case FTTE_OP_RELU6: return ftte_relu6_backward(size, output, g_out, g_in);
    case FTTE_OP_MAX_POOL2D:
        return aux ? ftte_max_pool2d_backward_indexed(l, n, (const uint8_t *)aux, g_out, g_in)
                   : ftte_max_pool2d_backward(l, n, input, g_out, g_in);
    case FTTE_OP_AVG_POOL2D: return ftte_avg_pool2d_backward(l, n, g_out, g_in);
    case FTTE_OP_GLOBAL_AVG_POOL: return ftte_global_avg_pool_backward(l, n, g_out, g_in);
    case FTTE_OP_FLATTEN: return g_in == g_out ? FTTE_OK : ftte_flatten_backward(l, n, g_out, g_in);
    default: return FTTE_ERR_UNSUPPORTED;
    }
}

ftte_status ftte_layer_backward_input(const ftte_layer *layer, const ftte_layer_update *update,
                                      const float *params, int32_t n, const float *input,
                                      const float *output, const void *aux,
                                      const float *grad_output, float *grad_input,
                                      float *scratch) {
    if (!ftte_op_has_weights(layer->op))
        return plain_backward_input(layer, n, input, output, aux, grad_output, grad_input);
    const int32_t rows = ftte_update_rows(layer, update);
    ftte_run run = {0, 0, 0, 0};
    if (conv_in_runs(layer, update)) { /* up to RUNS runs a call, in order */
        enum { RUNS = 16 };
        ftte_conv_run runs[RUNS];
        int32_t count = 0, more = ftte_next_run(layer, update, &run);
        while (more) {
            run_params p = params_of_run(layer, update, params, rows, &run);
            runs[count].begin = run.begin, runs[count].count = run.count;
            runs[count].w = p.weights;
            count++;
            more = ftte_next_run(layer, update, &run);
            if (count == RUNS || !more) {
                ftte_status status = ftte_conv_backward_input_runs(
                    layer, layer->op, n, runs, count, grad_output, grad_input, scratch);
                if (status != FTTE_OK) return status;
                count = 0;
            }
        }
        return FTTE_OK;
    }
    if (rows_in_runs(layer, update)) {
        int32_t pixels;
        ftte_status status = ftte_rows_check(layer, layer->op, n, all_rows(layer), &pixels);
        if (status != FTTE_OK) return status;
        if (grad_output == 0 || grad_input == 0) return FTTE_ERR_ARG;
        const ftte_weight_rows w = {params, layer->weights, update->channel_mask, 0};
        ftte_rows_backward_input_rows(pixels, layer->in.c, layer->out.c, w, grad_output,
                                      grad_input);
        return FTTE_OK;
    }
    while (ftte_next_run(layer, update, &run)) {
        ftte_slice slice = {run.begin, run.count};
        run_params p = params_of_run(layer, update, params, rows, &run);
        ftte_status status =
            weighted_backward_input(layer, slice, p.weights, n, grad_output, grad_input, scratch);
        if (status != FTTE_OK) return status;
    }
    return FTTE_OK;
}

static ftte_status weighted_backward_weight(const ftte_layer *l, ftte_slice s, int32_t n,
                                            const float *in, const float *g_out, float *g_w,
                                            float *scratch) {
    switch (l->op) {
    case FTTE_OP_DENSE: return ftte_dense_backward_weight(l, n, s, in, g_out, g_w);
    case FTTE_OP_POINTWISE_CONV2D:
        return ftte_pointwise_conv2d_backward_weight(l, n, s, in, g_out, g_w);
    case FTTE_OP_DEPTHWISE_CONV2D:
        return ftte_depthwise_conv2d_backward_weight(l, n, s, in, g_out, g_w);
    case FTTE_OP_CONV2D: return ftte_conv2d_backward_weight(l, n, s, in, g_out, g_w, scratch);
    case FTTE_OP_CONV1D: return ftte_conv1d_backward_weight(l, n, s, in, g_out, g_w, scratch);
    default: return FTTE_ERR_UNSUPPORTED;
    }
}

ftte_status ftte_layer_backward_params(const ftte_layer *layer, const ftte_layer_update *update,
                                       int32_t n, const float *input, const float *grad_output,
                                       float *grad_weights, float *grad_bias, float *scratch) {
    if (grad_bias) {
        int32_t rows = n * layer->out.h * layer->out.w;
        ftte_status status = ftte_bias_backward(rows, layer->out.c, grad_output, grad_bias);
        if (status != FTTE_OK) return status;
    }
    if (!grad_weights) return FTTE_OK;
    if (conv_in_runs(layer, update))
        return ftte_conv_backward_weight_rows(layer, layer->op, n, update->channel_mask, input,
                                              grad_output, grad_weights, scratch);
    int32_t row_length = ftte_layer_row_length(layer);
    ftte_run run = {0, 0, 0, 0};
    while (ftte_next_run(layer, update, &run)) {
        if (!run.trainable) continue;
        ftte_slice slice = {run.begin, run.count};
        ftte_status status = weighted_backward_weight(
            layer, slice, n, input, grad_output, grad_weights + run.rank * row_length, scratch);
        if (status != FTTE_OK) return status;
    }
    return FTTE_OK;
}
