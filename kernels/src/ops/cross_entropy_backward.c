/* Softmax cross-entropy backward: grad_logits = (softmax(logits) - onehot(labels)) / n, plus the
 * loss of ftte_cross_entropy_forward when asked. One pass of exp per row serves both.
 *
 * grad_logits may alias logits: a row's max and its label's logit are read before the row is
 * overwritten, and each exp is written at the index it was read from. */
#include <math.h>

#include "ftte_kernels.h"

/* Writes row b's gradient and returns its loss term. */
static float row_backward(int32_t classes, const float *x, int32_t label, float inv_n,
                          float *g) {
    float max = x[0];
    for (int32_t k = 1; k < classes; k++) max = x[k] > max ? x[k] : max;
    const float margin = max - x[label]; /* read before g overwrites x */
    float sum = 0.0f;
    for (int32_t k = 0; k < classes; k++) {
        const float e = expf(x[k] - max);
        g[k] = e;
        sum += e;
    }
    const float scale = inv_n / sum;
    for (int32_t k = 0; k < classes; k++) g[k] *= scale;
    g[label] -= inv_n;
    return logf(sum) + margin;
}

ftte_status ftte_cross_entropy_backward(int32_t n, int32_t classes, const float *logits,
                                        const int32_t *labels, float *grad_logits,
                                        float *loss) {
    if (n <= 0 || logits == 0 || labels == 0 || grad_logits == 0) return FTTE_ERR_ARG;
    if (classes <= 0) return FTTE_ERR_SHAPE;
    for (int32_t b = 0; b < n; b++)
        if (labels[b] < 0 || labels[b] >= classes) return FTTE_ERR_LABEL;
    const float inv_n = 1.0f / (float)n;
    float total = 0.0f;
    /* Row by row: n * classes may not fit an int32. */
    for (int32_t b = 0; b < n; b++, logits += classes, grad_logits += classes)
        total += row_backward(classes, logits, labels[b], inv_n, grad_logits);
    if (loss) *loss = total / (float)n;
    return FTTE_OK;
}
