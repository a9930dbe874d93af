/* What an update spec trains, and the runs of trainable and frozen output channels. */
#include "train_internal.h"

int ftte_layer_in_place(const ftte_model *model, int32_t layer) {
    int32_t op = model->layers[layer].op;
    return layer > 0 && (op == FTTE_OP_RELU || op == FTTE_OP_RELU6 || op == FTTE_OP_FLATTEN);
}

ftte_layer_update ftte_config_update(const ftte_train_config *config, int32_t layer) {
    ftte_layer_update frozen = {FTTE_UPDATE_FROZEN, 0};
    return config->updates ? config->updates[layer] : frozen;
}

int ftte_update_trains_weights(const ftte_layer_update *update) {
    return update->mode == FTTE_UPDATE_CHANNELS || update->mode == FTTE_UPDATE_FULL;
}

int ftte_update_trains_bias(const ftte_layer *layer, const ftte_layer_update *update) {
    return update->mode != FTTE_UPDATE_FROZEN && layer->bias != 0;
}

static int channel_trainable(const ftte_layer_update *update, int32_t channel) {
    if (update->mode == FTTE_UPDATE_FULL) return 1;
    if (update->mode != FTTE_UPDATE_CHANNELS) return 0;
    return (update->channel_mask[channel >> 3] >> (channel & 7)) & 1;
}

int32_t ftte_update_rows(const ftte_layer *layer, const ftte_layer_update *update) {
    if (update->mode == FTTE_UPDATE_FULL) return layer->out.c;
    if (!ftte_update_trains_weights(update)) return 0;
    int32_t rows = 0;
    for (int32_t o = 0; o < layer->out.c; o++) rows += channel_trainable(update, o);
    return rows;
}

int ftte_next_run(const ftte_layer *layer, const ftte_layer_update *update, ftte_run *run) {
    if (run->trainable) run->rank += run->count;
    run->begin += run->count;
    if (run->begin >= layer->out.c) return 0;
    run->trainable = channel_trainable(update, run->begin);
    if (update->mode != FTTE_UPDATE_CHANNELS) { /* one run: all trainable or all frozen */
        run->count = layer->out.c;
        return 1;
    }
    int32_t end = run->begin + 1;
    while (end < layer->out.c && channel_trainable(update, end) == run->trainable) end++;
    run->count = end - run->begin;
    return 1;
}
