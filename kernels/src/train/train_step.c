/* One SGD step: forward, loss, sparse backward with each layer updated right after its
 * gradients, all in the buffers of a training plan. */
#include "train_internal.h"

#include "../ops/internal/ftte_mac.h"

static float *at(unsigned char *arena, int32_t offset) {
    return (float *)(void *)(arena + offset);
}

static void zero(float *p, int32_t count) {
    for (int32_t i = 0; i < count; i++) p[i] = 0.0f;
}

static void copy_out(float *to, const float *from, int32_t count) {
    if (to == 0) return;
    for (int32_t i = 0; i < count; i++) to[i] = from[i];
}

/* The saved value a layer's backward reads as its input (the caller's batch for layer 0). */
static const float *input_of(const ftte_plan *plan, unsigned char *arena, const float *input,
                             int32_t layer) {
    return layer ? at(arena, plan->value_offset[layer - 1]) : input;
}

typedef struct {
    const ftte_plan *plan;
    unsigned char *arena;
    const float *input;
    int32_t n;
    ftte_sgd_params sgd;
    const ftte_param_grads *grads;
} step_context;

static ftte_status update_params(const step_context *s, int32_t i, float *grad, int32_t floats) {
    const ftte_plan *plan = s->plan;
    float *param = at(s->arena, plan->param_offset[i]);
    float *velocity = plan->config.momentum ? at(s->arena, plan->param_offset[i] +
                                                           plan->memory.params_ram)
                                            : 0;
    return ftte_sgd_update(floats, s->sgd.learning_rate, s->sgd.momentum, grad, velocity, param);
}

#if FTTE_HOST_TILES
/* On a vector host, a fully trained dense layer at batch 1 (no momentum, no gradients asked
 * for) steps its weights in place: their gradient is the outer product 0 + g[o] * x[i], so
 * w -= lr * (g[o] * x[i]) gives the bits that forming it and then stepping gives (but for the
 * sign of a zero), without writing and reading back a gradient as large as the weights. The
 * plan keeps that buffer, as the boards need it. */
static int steps_in_place(const step_context *s, const ftte_layer *layer,
                          const ftte_layer_update *u) {
    return s->n == 1 && s->grads == 0 && !s->plan->config.momentum &&
           layer->op == FTTE_OP_DENSE && u->mode == FTTE_UPDATE_FULL;
}

static void outer_step(int32_t rows, int32_t k, float lr, const float *g, const float *x,
                       float *w) {
    const vec8 lrv = {lr, lr, lr, lr, lr, lr, lr, lr};
    for (int32_t o = 0; o < rows; o++, w += k) {
        const float go = g[o];
        const vec8 gv = {go, go, go, go, go, go, go, go};
        int32_t i = 0;
        for (; i + 8 <= k; i += 8) {
            vec8 wv, xv;
            load8(&wv, w + i), load8(&xv, x + i);
            wv -= lrv * (gv * xv);
            store8(w + i, &wv);
        }
        for (; i < k; i++) w[i] -= lr * (go * x[i]);
    }
}

/* backward_layer's work for a layer that steps_in_place(): its bias gradient, its gradient to
 * the input (from the weights before the step), then the step. */
static ftte_status step_in_place(const step_context *s, int32_t i) {
    const ftte_plan *plan = s->plan;
    const ftte_layer *layer = &plan->config.model->layers[i];
    ftte_layer_update u = ftte_config_update(&plan->config, i);
    int32_t rows = ftte_update_rows(layer, &u), row_length = ftte_layer_row_length(layer);
    int32_t bias_floats = ftte_update_trains_bias(layer, &u) ? layer->out.c : 0;
    float *grad_b = at(s->arena, plan->working_base + plan->backward_middle[i]) + rows * row_length;
    float *scratch = grad_b + bias_floats;
    const float *g_out = at(s->arena, plan->grad_offset[i]);
    const float *in = input_of(plan, s->arena, s->input, i);
    float *param = at(s->arena, plan->param_offset[i]);
    zero(grad_b, bias_floats);
    ftte_status status = ftte_layer_backward_params(layer, &u, 1, in, g_out, 0,
                                                    bias_floats ? grad_b : 0, scratch);
    if (status != FTTE_OK) return status;
    if (i > plan->lowest_trainable) {
        float *g_in = at(s->arena, plan->grad_offset[i - 1]);
        if (!ftte_layer_in_place(plan->config.model, i)) zero(g_in, ftte_shape_size(layer->in));
        const void *aux = plan->aux_offset[i] >= 0 ? s->arena + plan->aux_offset[i] : 0;
        status = ftte_layer_backward_input(layer, &u, param, 1, in,
                                           at(s->arena, plan->value_offset[i]), aux, g_out, g_in,
                                           scratch);
        if (status != FTTE_OK) return status;
    }
    outer_step(rows, row_length, s->sgd.learning_rate, g_out, in, param);
    return ftte_sgd_update(bias_floats, s->sgd.learning_rate, 0.0f, grad_b, 0,
                           param + rows * row_length);
}
#endif

static ftte_status backward_layer(const step_context *s, int32_t i) {
    const ftte_plan *plan = s->plan;
    const ftte_layer *layer = &plan->config.model->layers[i];
    ftte_layer_update u = ftte_config_update(&plan->config, i);
#if FTTE_HOST_TILES
    if (steps_in_place(s, layer, &u)) return step_in_place(s, i);
#endif
    int32_t rows = ftte_update_rows(layer, &u), row_length = ftte_layer_row_length(layer);
    int32_t bias_floats = ftte_update_trains_bias(layer, &u) ? layer->out.c : 0;
    int32_t grad_floats = rows * row_length + bias_floats;
    float *grad_w = at(s->arena, plan->working_base + plan->backward_middle[i]);
    float *grad_b = grad_w + rows * row_length;
    float *scratch = grad_w + grad_floats;
    const float *g_out = at(s->arena, plan->grad_offset[i]);
    const float *in = input_of(plan, s->arena, s->input, i);
    ftte_status status = FTTE_OK;
    if (grad_floats) {
        zero(grad_w, grad_floats);
        status = ftte_layer_backward_params(layer, &u, s->n, in, g_out, rows ? grad_w : 0,
                                            bias_floats ? grad_b : 0, scratch);
        if (status != FTTE_OK) return status;
    }
    if (i > plan->lowest_trainable) {
        float *g_in = at(s->arena, plan->grad_offset[i - 1]);
        if (!ftte_layer_in_place(plan->config.model, i))
            zero(g_in, s->n * ftte_shape_size(layer->in));
        const float *params = plan->param_offset[i] >= 0 ? at(s->arena, plan->param_offset[i]) : 0;
        const void *aux = plan->aux_offset[i] >= 0 ? s->arena + plan->aux_offset[i] : 0;
        status = ftte_layer_backward_input(layer, &u, params, s->n, in,
                                           at(s->arena, plan->value_offset[i]), aux, g_out, g_in,
                                           scratch);
        if (status != FTTE_OK) return status;
    }
    if (!grad_floats) return FTTE_OK;
    if (s->grads) {
        copy_out(s->grads[i].weights, grad_w, rows * row_length);
        copy_out(s->grads[i].bias, grad_b, bias_floats);
    }
    return update_params(s, i, grad_w, grad_floats);
}

ftte_status ftte_train_step(const ftte_plan *plan, void *arena, int32_t arena_bytes,
                            ftte_sgd_params sgd, const float *input, const int32_t *labels,
                            int32_t n, float *loss, const ftte_param_grads *grads) {
    ftte_status status = ftte_check_call(plan, arena, arena_bytes, input, n);
    if (status != FTTE_OK) return status;
    if (!plan->training || labels == 0) return FTTE_ERR_ARG;
    step_context s = {plan, (unsigned char *)arena, input, n, sgd, grads};
    const float *logits;
    status = ftte_run_forward(plan, s.arena, input, n, &logits);
    if (status != FTTE_OK) return status;
    const ftte_model *m = plan->config.model;
    int32_t last = m->num_layers - 1;
    float loss_value = 0.0f;
    status = ftte_cross_entropy_backward(n, m->layers[last].out.c, logits, labels,
                                         at(s.arena, plan->grad_offset[last]), &loss_value);
    if (status != FTTE_OK) return status;
    if (loss) *loss = loss_value;
    for (int32_t i = last; i >= plan->lowest_trainable; i--) {
        status = backward_layer(&s, i);
        if (status != FTTE_OK) return status;
    }
    return FTTE_OK;
}
