/* Softmax cross-entropy loss: the batch mean of -log softmax(logits[b])[labels[b]], computed as
 * log(sum_k exp(x_k - max)) + (max - x_label), which neither overflows nor takes log(0). */
#include <math.h>

#include "ftte_kernels.h"

static float row_loss(int32_t classes, const float *x, int32_t label) {
    float max = x[0];
    for (int32_t k = 1; k < classes; k++) max = x[k] > max ? x[k] : max;
    float sum = 0.0f;
    for (int32_t k = 0; k < classes; k++) sum += expf(x[k] - max);
    return logf(sum) + (max - x[label]);
}

ftte_status ftte_cross_entropy_forward(int32_t n, int32_t classes, const float *logits,
                                       const int32_t *labels, float *loss) {
    if (n <= 0 || logits == 0 || labels == 0 || loss == 0) return FTTE_ERR_ARG;
    if (classes <= 0) return FTTE_ERR_SHAPE;
    for (int32_t b = 0; b < n; b++)
        if (labels[b] < 0 || labels[b] >= classes) return FTTE_ERR_LABEL;
    float total = 0.0f;
    /* Row by row: n * classes may not fit an int32. */
    for (int32_t b = 0; b < n; b++, logits += classes)
        total += row_loss(classes, logits, labels[b]);
    *loss = total / (float)n;
    return FTTE_OK;
}
