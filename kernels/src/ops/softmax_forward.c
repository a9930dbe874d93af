/* Softmax of each row of logits, stable: exp(x - row max) cannot overflow and the row sum is at
 * least 1. probs may alias logits: every element is read before it is written, at the same
 * index. */
#include <math.h>

#include "ftte_kernels.h"

static void softmax_row(int32_t classes, const float *x, float *p) {
    float max = x[0];
    for (int32_t k = 1; k < classes; k++) max = x[k] > max ? x[k] : max;
    float sum = 0.0f;
    for (int32_t k = 0; k < classes; k++) {
        const float e = expf(x[k] - max);
        p[k] = e;
        sum += e;
    }
    const float scale = 1.0f / sum; /* one division per row, not per class */
    for (int32_t k = 0; k < classes; k++) p[k] *= scale;
}

ftte_status ftte_softmax_forward(int32_t n, int32_t classes, const float *logits, float *probs) {
    if (n <= 0 || logits == 0 || probs == 0) return FTTE_ERR_ARG;
    if (classes <= 0) return FTTE_ERR_SHAPE;
    /* Row by row: n * classes may not fit an int32. */
    for (int32_t b = 0; b < n; b++, logits += classes, probs += classes)
        softmax_row(classes, logits, probs);
    return FTTE_OK;
}
