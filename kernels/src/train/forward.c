/* The forward pass through the layer table, in the buffers a plan assigns. */
#include "train_internal.h"

ftte_status ftte_check_call(const ftte_plan *plan, const void *arena, int32_t arena_bytes,
                            const float *input, int32_t n) {
    if (plan == 0 || arena == 0 || input == 0 || ((uintptr_t)arena & 3u) != 0) return FTTE_ERR_ARG;
    if (n < 1 || n > plan->config.batch) return FTTE_ERR_ARG;
    if (arena_bytes < plan->memory.total) return FTTE_ERR_ARENA;
    return FTTE_OK;
}

static const float *params_of(const ftte_plan *plan, unsigned char *arena, int32_t layer) {
    int32_t offset = plan->param_offset[layer];
    return offset >= 0 ? (const float *)(void *)(arena + offset) : 0;
}

ftte_status ftte_run_forward(const ftte_plan *plan, unsigned char *arena, const float *input,
                             int32_t n, const float **logits) {
    const ftte_model *m = plan->config.model;
    const float *in = input;
    for (int32_t i = 0; i < m->num_layers; i++) {
        float *out = (float *)(void *)(arena + plan->value_offset[i]);
        ftte_layer_update u = ftte_config_update(&plan->config, i);
        float *scratch = (float *)(void *)(arena + plan->working_base + plan->forward_middle[i]);
        void *aux = plan->aux_offset[i] >= 0 ? arena + plan->aux_offset[i] : 0;
        ftte_status status = ftte_layer_forward(&m->layers[i], &u, params_of(plan, arena, i), n,
                                                in, out, scratch, aux);
        if (status != FTTE_OK) return status;
        in = out;
    }
    *logits = in;
    return FTTE_OK;
}

ftte_status ftte_forward(const ftte_plan *plan, void *arena, int32_t arena_bytes,
                         const float *input, int32_t n, float *output) {
    ftte_status status = ftte_check_call(plan, arena, arena_bytes, input, n);
    if (status != FTTE_OK) return status;
    if (output == 0) return FTTE_ERR_ARG;
    const float *logits;
    status = ftte_run_forward(plan, (unsigned char *)arena, input, n, &logits);
    if (status != FTTE_OK) return status;
    const ftte_model *m = plan->config.model;
    int32_t count = n * ftte_out_size(&m->layers[m->num_layers - 1]);
    for (int32_t i = 0; i < count; i++) output[i] = logits[i];
    return FTTE_OK;
}
