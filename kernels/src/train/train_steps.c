/* Consecutive SGD steps in one call: a host trains a whole local task without a round trip
 * per step (the boards stream their batches and call ftte_train_step themselves). */
#include "train_internal.h"

/* The mean loss of the last step's samples under the updated parameters. */
static ftte_status loss_after_steps(const ftte_plan *plan, void *arena, const float *input,
                                    const int32_t *labels, int32_t n, float *loss) {
    const float *logits;
    ftte_status status = ftte_run_forward(plan, (unsigned char *)arena, input, n, &logits);
    if (status != FTTE_OK) return status;
    const ftte_model *m = plan->config.model;
    return ftte_cross_entropy_forward(n, m->layers[m->num_layers - 1].out.c, logits, labels, loss);
}

ftte_status ftte_train_steps(const ftte_plan *plan, void *arena, int32_t arena_bytes,
                             ftte_sgd_params sgd, const float *input, const int32_t *labels,
                             int32_t n, int32_t steps, float *losses, float *loss_after) {
    if (plan == 0 || plan->config.model == 0 || input == 0 || labels == 0 || steps < 0)
        return FTTE_ERR_ARG;
    const int32_t sample = ftte_shape_size(plan->config.model->layers[0].in);
    for (int32_t k = 0; k < steps; k++) {
        ftte_status status = ftte_train_step(plan, arena, arena_bytes, sgd, input + k * n * sample,
                                             labels + k * n, n, losses ? losses + k : 0, 0);
        if (status != FTTE_OK) return status;
    }
    if (loss_after == 0 || steps == 0) return FTTE_OK;
    const int32_t last = (steps - 1) * n;
    return loss_after_steps(plan, arena, input + last * sample, labels + last, n, loss_after);
}
