/* Validation of a sequential layer table. */
#include "train_internal.h"

int ftte_op_has_weights(int32_t op) {
    return op == FTTE_OP_DENSE || op == FTTE_OP_CONV2D || op == FTTE_OP_CONV1D ||
           op == FTTE_OP_DEPTHWISE_CONV2D || op == FTTE_OP_POINTWISE_CONV2D;
}

ftte_status ftte_model_validate(const ftte_model *model) {
    if (model == 0 || model->layers == 0) return FTTE_ERR_ARG;
    if (model->num_layers < 1 || model->num_layers > FTTE_MAX_LAYERS) return FTTE_ERR_MODEL;
    for (int32_t i = 0; i < model->num_layers; i++) {
        const ftte_layer *layer = &model->layers[i];
        ftte_status status = ftte_layer_validate(layer);
        if (status != FTTE_OK) return status;
        if (ftte_op_has_weights(layer->op) && layer->weights == 0) return FTTE_ERR_MODEL;
        if (i > 0 && ftte_shape_size(model->layers[i - 1].out) != ftte_shape_size(layer->in))
            return FTTE_ERR_MODEL;
    }
    ftte_shape logits = model->layers[model->num_layers - 1].out;
    return (logits.h == 1 && logits.w == 1) ? FTTE_OK : FTTE_ERR_MODEL;
}
