/* Copies the trainable parameters into the arena's persistent part. */
#include "train_internal.h"

static void copy_floats(float *to, const float *from, int32_t count) {
    for (int32_t i = 0; i < count; i++) to[i] = from[i];
}

static void copy_layer(const ftte_layer *layer, const ftte_layer_update *update, float *params) {
    int32_t row_length = ftte_layer_row_length(layer);
    ftte_run run = {0, 0, 0, 0};
    while (ftte_next_run(layer, update, &run)) {
        if (!run.trainable) continue;
        copy_floats(params + run.rank * row_length, layer->weights + run.begin * row_length,
                    run.count * row_length);
    }
    if (ftte_update_trains_bias(layer, update)) {
        copy_floats(params + ftte_update_rows(layer, update) * row_length, layer->bias,
                    layer->out.c);
    }
}

ftte_status ftte_train_init(const ftte_plan *plan, void *arena, int32_t arena_bytes) {
    if (plan == 0 || arena == 0 || ((uintptr_t)arena & 3u) != 0) return FTTE_ERR_ARG;
    const ftte_train_memory *mem = &plan->memory;
    if (arena_bytes < mem->params_ram + mem->optimizer_state) return FTTE_ERR_ARENA;
    unsigned char *base = (unsigned char *)arena;
    const ftte_train_config *c = &plan->config;
    for (int32_t i = 0; i < c->model->num_layers; i++) {
        if (plan->param_offset[i] < 0) continue;
        ftte_layer_update u = ftte_config_update(c, i);
        copy_layer(&c->model->layers[i], &u, (float *)(void *)(base + plan->param_offset[i]));
    }
    float *velocity = (float *)(void *)(base + mem->params_ram);
    for (int32_t i = 0; i < mem->optimizer_state / (int32_t)sizeof(float); i++) velocity[i] = 0.0f;
    return FTTE_OK;
}
