/* Consecutive SGD steps in one call: a host trains a whole local task without a round trip
 * per step (the boards stream their batches and call ftte_train_step themselves). */
#include "train_internal.h"

ftte_status ftte_train_steps(const ftte_plan *plan, void *arena, int32_t arena_bytes,
                             ftte_sgd_params sgd, const float *input, const int32_t *labels,
                             int32_t n, int32_t steps, float *losses) {
    if (plan == 0 || plan->config.model == 0 || input == 0 || labels == 0 || steps < 0)
        return FTTE_ERR_ARG;
    const int32_t sample = ftte_shape_size(plan->config.model->layers[0].in);
    for (int32_t k = 0; k < steps; k++) {
        ftte_status status = ftte_train_step(plan, arena, arena_bytes, sgd, input + k * n * sample,
                                             labels + k * n, n, losses ? losses + k : 0, 0);
        if (status != FTTE_OK) return status;
    }
    return FTTE_OK;
}
