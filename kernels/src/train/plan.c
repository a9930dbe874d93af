/*
 * The arena layout of a training step or a forward pass, computed once per config.
 *
 * Regions: [ trainable params | velocity ][ saved activations ][ working region ].
 * Transient activations, and activation gradients in the backward pass, alternate between the
 * low and the high end of the working region (a layer reads one end and writes the other);
 * weight gradients and scratch sit just above the low end's occupant. The working region's
 * size is the largest sum of what one phase (one layer's forward or backward) holds at once.
 */
#include "train_internal.h"

enum { AT_CALLER, AT_SAVED, AT_LOW, AT_HIGH };

typedef struct {
    int32_t where;    /* AT_* */
    int32_t offset;   /* within the saved region (AT_SAVED) */
    int32_t bytes;
} placement;

/* The working region's peak so far and what fills it. */
typedef struct {
    int32_t bytes, activations, gradients, scratch;
} peak;

static void phase(peak *p, int32_t activations, int32_t gradients, int32_t scratch) {
    int32_t bytes = activations + gradients + scratch;
    if (bytes > p->bytes) {
        p->bytes = bytes;
        p->activations = activations;
        p->gradients = gradients;
        p->scratch = scratch;
    }
}

static int32_t at(placement p, int32_t where) { return p.where == where ? p.bytes : 0; }

static ftte_status check_update(const ftte_layer *layer, const ftte_layer_update *u) {
    if (u->mode < FTTE_UPDATE_FROZEN || u->mode > FTTE_UPDATE_FULL) return FTTE_ERR_SPEC;
    if (u->mode == FTTE_UPDATE_FROZEN) return FTTE_OK;
    if (!ftte_op_has_weights(layer->op)) return FTTE_ERR_SPEC;
    if (u->mode == FTTE_UPDATE_BIAS && layer->bias == 0) return FTTE_ERR_SPEC;
    if (u->mode == FTTE_UPDATE_CHANNELS && u->channel_mask == 0) return FTTE_ERR_SPEC;
    return FTTE_OK;
}

/* Trainable params of each layer, packed: rows then bias; returns the region's bytes. */
static int32_t lay_out_params(const ftte_train_config *c, ftte_plan *plan, int32_t *count) {
    int32_t bytes = 0;
    *count = 0;
    for (int32_t i = 0; i < c->model->num_layers; i++) {
        const ftte_layer *layer = &c->model->layers[i];
        ftte_layer_update u = ftte_config_update(c, i);
        int32_t floats = ftte_update_rows(layer, &u) * ftte_layer_row_length(layer) +
                         (ftte_update_trains_bias(layer, &u) ? layer->out.c : 0);
        plan->param_offset[i] = floats ? bytes : -1;
        bytes += floats * (int32_t)sizeof(float);
        *count += floats;
    }
    return bytes;
}

static int is_activation(int32_t op) { return op == FTTE_OP_RELU || op == FTTE_OP_RELU6; }

/* Max pool keeps a byte of argmax per output instead of its float input, when it can. */
static int pool_indexed(const ftte_layer *layer) {
    return layer->op == FTTE_OP_MAX_POOL2D && layer->kernel_h * layer->kernel_w <= 256;
}

/* Does the backward pass read the float values of layer i's output buffer (the value of its
 * in-place chain)? Only a consumer whose weights train, or a max pool that cannot keep argmax,
 * needs them; ReLU/ReLU6 and other max pools keep their own smaller aux data. */
static int floats_read(const ftte_train_config *c, int32_t l0, int32_t i) {
    const ftte_model *m = c->model;
    int32_t j = i + 1;
    while (j < m->num_layers && ftte_layer_in_place(m, j)) j++;
    if (j >= m->num_layers || j < l0) return 0;
    ftte_layer_update next = ftte_config_update(c, j);
    return ftte_update_trains_weights(&next) ||
           (m->layers[j].op == FTTE_OP_MAX_POOL2D && !pool_indexed(&m->layers[j]));
}

/* Bytes of what layer i saves for its backward pass besides float values: the activation mask
 * of a ReLU/ReLU6 whose output floats are not kept, the argmax of a max pool whose input floats
 * are not kept. 0 when it saves nothing of the kind. */
static int32_t aux_bytes(const ftte_train_config *c, int32_t l0, int32_t head_floats_saved,
                         int32_t input_floats_saved, int32_t i) {
    const ftte_layer *layer = &c->model->layers[i];
    if (i <= l0) return 0;
    int32_t size = c->batch * ftte_out_size(layer);
    if (is_activation(layer->op) && !head_floats_saved)
        return ftte_activation_mask_get_buffer_size(size);
    if (pool_indexed(layer) && !input_floats_saved) return (size + 3) / 4 * 4;
    return 0;
}

static int32_t lowest_trainable(const ftte_train_config *c) {
    for (int32_t i = 0; i < c->model->num_layers; i++) {
        if (ftte_config_update(c, i).mode != FTTE_UPDATE_FROZEN) return i;
    }
    return c->model->num_layers;
}

/* The end of the working region opposite to an input's, so that both fit at once. */
static int32_t other_end(placement in) { return in.where == AT_LOW ? AT_HIGH : AT_LOW; }

static int32_t forward_phases(const ftte_train_config *c, ftte_plan *plan, placement *values,
                              int32_t *aux, peak *pk) {
    const ftte_model *m = c->model;
    placement caller = {AT_CALLER, 0, 0};
    int32_t saved = 0, l0 = plan->lowest_trainable;
    for (int32_t i = 0; i < m->num_layers; i++) {
        const ftte_layer *layer = &m->layers[i];
        placement in = i ? values[i - 1] : caller;
        placement out = in;
        plan->forward_middle[i] = 0;
        if (!ftte_layer_in_place(m, i)) {
            out.where = other_end(in);
            out.offset = 0;
            out.bytes = c->batch * ftte_out_size(layer) * (int32_t)sizeof(float);
            if (plan->training && floats_read(c, l0, i)) {
                out.where = AT_SAVED;
                out.offset = saved;
                saved += out.bytes;
            }
            int32_t low = at(in, AT_LOW) + at(out, AT_LOW);
            plan->forward_middle[i] = low;
            phase(pk, low + at(in, AT_HIGH) + at(out, AT_HIGH), 0,
                  ftte_layer_forward_scratch(layer, c->batch));
        }
        values[i] = out;
        int32_t bytes = plan->training ? aux_bytes(c, l0, out.where == AT_SAVED,
                                                   in.where == AT_SAVED || in.where == AT_CALLER, i)
                                       : 0;
        aux[i] = bytes ? saved : -1;
        saved += bytes;
    }
    return saved;
}

static void backward_phases(const ftte_train_config *c, ftte_plan *plan, const placement *values,
                            placement *grads, peak *pk) {
    const ftte_model *m = c->model;
    int32_t last = m->num_layers - 1, l0 = plan->lowest_trainable;
    placement logits = values[last];
    grads[last] = logits;
    if (logits.where == AT_SAVED || logits.where == AT_CALLER) grads[last].where = AT_LOW;
    phase(pk, grads[last].bytes, 0, 0);
    for (int32_t i = last; i >= l0; i--) {
        const ftte_layer *layer = &m->layers[i];
        ftte_layer_update u = ftte_config_update(c, i);
        int need_input = i > l0, in_place = ftte_layer_in_place(m, i);
        int32_t row_floats = ftte_update_rows(layer, &u) * ftte_layer_row_length(layer);
        int32_t param_grads = (row_floats + (ftte_update_trains_bias(layer, &u) ? layer->out.c : 0)) *
                              (int32_t)sizeof(float);
        placement none = {AT_CALLER, 0, 0};
        placement g_in = none;
        if (need_input) {
            g_in = grads[i];
            if (!in_place) {
                g_in.where = other_end(grads[i]);
                g_in.bytes = c->batch * ftte_shape_size(layer->in) * (int32_t)sizeof(float);
            }
            grads[i - 1] = g_in;
        }
        int32_t scratch = ftte_layer_backward_scratch(layer, c->batch, need_input && !in_place,
                                                      ftte_update_trains_weights(&u));
        int32_t low = at(grads[i], AT_LOW) + (in_place ? 0 : at(g_in, AT_LOW));
        int32_t high = at(grads[i], AT_HIGH) + (in_place ? 0 : at(g_in, AT_HIGH));
        plan->backward_middle[i] = low;
        phase(pk, low + high, param_grads, scratch);
    }
}

static int32_t offset_of(placement p, int32_t saved_base, int32_t working_base, int32_t size) {
    switch (p.where) {
    case AT_SAVED: return saved_base + p.offset;
    case AT_LOW: return working_base;
    case AT_HIGH: return working_base + size - p.bytes;
    default: return -1;
    }
}

static ftte_status build(const ftte_train_config *c, int training, ftte_plan *plan) {
    if (c == 0 || plan == 0 || c->batch < 1) return FTTE_ERR_ARG;
    ftte_status status = ftte_model_validate(c->model);
    if (status != FTTE_OK) return status;
    for (int32_t i = 0; i < c->model->num_layers; i++) {
        ftte_layer_update u = ftte_config_update(c, i);
        status = check_update(&c->model->layers[i], &u);
        if (status != FTTE_OK) return status;
    }
    /* Nothing below can fail: the plan is written only once the config is known valid. */
    ftte_plan *p = plan;
    p->config = *c;
    p->training = training;
    p->lowest_trainable = training ? lowest_trainable(c) : c->model->num_layers;
    ftte_train_memory *mem = &p->memory;
    mem->params_ram = lay_out_params(c, p, &mem->trainable_params);
    mem->optimizer_state = c->momentum ? mem->params_ram : 0;
    mem->params_flash = 0;
    for (int32_t i = 0; i < c->model->num_layers; i++) {
        const ftte_layer *layer = &c->model->layers[i];
        ftte_layer_update u = ftte_config_update(c, i);
        int32_t all = layer->out.c * ftte_layer_row_length(layer) + (layer->bias ? layer->out.c : 0);
        int32_t in_ram = ftte_update_rows(layer, &u) * ftte_layer_row_length(layer) +
                         (ftte_update_trains_bias(layer, &u) ? layer->out.c : 0);
        mem->params_flash += (all - in_ram) * (int32_t)sizeof(float);
    }
    placement values[FTTE_MAX_LAYERS], grads[FTTE_MAX_LAYERS];
    int32_t aux[FTTE_MAX_LAYERS];
    peak pk = {0, 0, 0, 0};
    mem->saved_activations = forward_phases(c, p, values, aux, &pk);
    for (int32_t i = 0; i < c->model->num_layers; i++) grads[i].where = AT_CALLER;
    if (training) backward_phases(c, p, values, grads, &pk);
    int32_t saved_base = mem->params_ram + mem->optimizer_state;
    p->working_base = saved_base + mem->saved_activations;
    mem->working_activations = pk.activations;
    mem->gradients = pk.gradients;
    mem->scratch = pk.scratch;
    mem->total = p->working_base + pk.bytes;
    for (int32_t i = 0; i < c->model->num_layers; i++) {
        p->value_offset[i] = offset_of(values[i], saved_base, p->working_base, pk.bytes);
        p->grad_offset[i] = offset_of(grads[i], saved_base, p->working_base, pk.bytes);
        p->aux_offset[i] = aux[i] >= 0 ? saved_base + aux[i] : -1;
    }
    return FTTE_OK;
}

ftte_status ftte_plan_train(const ftte_train_config *config, ftte_plan *plan) {
    return build(config, 1, plan);
}

ftte_status ftte_plan_forward(const ftte_train_config *config, ftte_plan *plan) {
    return build(config, 0, plan);
}

ftte_status ftte_param_layout_get(const ftte_plan *plan, int32_t layer, ftte_param_layout *out) {
    if (plan == 0 || out == 0 || layer < 0 || layer >= plan->config.model->num_layers)
        return FTTE_ERR_ARG;
    const ftte_layer *l = &plan->config.model->layers[layer];
    ftte_layer_update u = ftte_config_update(&plan->config, layer);
    int32_t base = plan->param_offset[layer];
    int32_t velocity = plan->config.momentum ? plan->memory.params_ram : 0;
    out->rows = ftte_update_rows(l, &u);
    out->row_length = ftte_layer_row_length(l);
    int32_t row_bytes = out->rows * out->row_length * (int32_t)sizeof(float);
    out->weights = (base >= 0 && out->rows) ? base : -1;
    out->bias = (base >= 0 && ftte_update_trains_bias(l, &u)) ? base + row_bytes : -1;
    out->weights_velocity = (out->weights >= 0 && velocity) ? out->weights + velocity : -1;
    out->bias_velocity = (out->bias >= 0 && velocity) ? out->bias + velocity : -1;
    return FTTE_OK;
}
