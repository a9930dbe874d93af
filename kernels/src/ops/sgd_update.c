/* SGD step with Keras semantics (tf.keras.optimizers.SGD, nesterov=False):
 * without velocity, param -= lr * grad; with it, velocity = momentum * velocity - lr * grad,
 * then param += velocity. */
#include "ftte_kernels.h"

ftte_status ftte_sgd_update(int32_t count, float learning_rate, float momentum,
                            const float *grad, float *velocity, float *param) {
    if (count < 0 || grad == 0 || param == 0) return FTTE_ERR_ARG;
    if (velocity == 0) {
        for (int32_t i = 0; i < count; i++) param[i] -= learning_rate * grad[i];
        return FTTE_OK;
    }
    for (int32_t i = 0; i < count; i++) {
        const float v = momentum * velocity[i] - learning_rate * grad[i];
        velocity[i] = v;
        param[i] += v;
    }
    return FTTE_OK;
}
