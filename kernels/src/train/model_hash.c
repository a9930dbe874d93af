/* The model layout hash: FNV-1a over the layout fields, byte order fixed (little-endian). */
#include "train_internal.h"

static uint32_t mix(uint32_t hash, int32_t value) {
    uint32_t v = (uint32_t)value;
    for (int byte = 0; byte < 4; byte++) {
        hash ^= (v >> (8 * byte)) & 0xFFu;
        hash *= 16777619u;
    }
    return hash;
}

uint32_t ftte_model_layout_hash(const ftte_model *model) {
    if (model == 0 || model->layers == 0) return 0;
    uint32_t hash = mix(2166136261u, model->num_layers);
    for (int32_t i = 0; i < model->num_layers; i++) {
        const ftte_layer *l = &model->layers[i];
        const int32_t fields[] = {l->op,       l->in.h,     l->in.w,     l->in.c,
                                  l->out.h,    l->out.w,    l->out.c,    l->kernel_h,
                                  l->kernel_w, l->stride_h, l->stride_w, l->pad_top,
                                  l->pad_left, l->bias != 0};
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) hash = mix(hash, fields[f]);
    }
    return hash;
}
