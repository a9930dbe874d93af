/*
 * FTTE kernels: the public operator kernels, forward and backward.
 *
 * One kernel per source file (kernels/src/ops/<op>_<direction>.c). Every kernel with layer
 * geometry has a ..._get_buffer_size() beside it that returns the bytes of scratch it needs
 * (0 when none); the caller owns all memory, scratch included.
 *
 * Common contract
 *  - Activations are NHWC float32; `n` is the batch size; shapes come from the layer record.
 *  - A kernel first validates the layer geometry, the batch size, the slice and the pointers,
 *    and returns a negative ftte_status without touching any buffer if they are invalid
 *    (FTTE_ERR_UNSUPPORTED for a valid layer of another operator).
 *  - Output-channel slices: kernels with weights work on the output channels
 *    [slice.begin, slice.begin + slice.count). `weights` then points at the first row of the
 *    slice (rows are contiguous, see ftte_op for each layout) and `bias` at its first element.
 *    Outputs are written at their full-tensor positions. This lets the trainer read frozen
 *    rows from flash and trainable rows from RAM without copying either.
 *  - Backward kernels ACCUMULATE (+=) into grad_input / grad_weights / grad_bias, so that a
 *    layer split into slices, or a batch split into chunks, sums correctly; the caller zeroes.
 *    The elementwise activation backward kernels are the exception: they write, and may run
 *    in place.
 *  - Gradients are of whatever scalar the incoming gradient belongs to (the trainer uses the
 *    batch-mean cross-entropy).
 */
#ifndef FTTE_KERNELS_H
#define FTTE_KERNELS_H

#include "ftte_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------- */
/* Layer geometry                                                                            */
/* ---------------------------------------------------------------------------------------- */

/** Checks a layer record's geometry for its operator (sizes positive, output shape consistent
 *  with kernel, stride and padding, windows overlapping the input). */
ftte_status ftte_layer_validate(const ftte_layer *layer);

/** Floats in one output channel's weight row (dense: in.c; conv: kernel_h*kernel_w*in.c;
 *  pointwise: in.c; depthwise: kernel_h*kernel_w); 0 for operators without weights. */
int32_t ftte_layer_row_length(const ftte_layer *layer);

/** Multiply-accumulates of one sample's forward pass through the layer. */
int64_t ftte_layer_macs(const ftte_layer *layer);

/* ---------------------------------------------------------------------------------------- */
/* Dense: output[n][o] = bias[o] + sum_i input[n][i] * weights[o][i]                         */
/* ---------------------------------------------------------------------------------------- */

/** Forward for output features in `slice`. input [n][in.c], weights [slice.count][in.c],
 *  bias [slice.count] or NULL, output [n][out.c] (only the slice's columns are written). */
ftte_status ftte_dense_forward(const ftte_layer *layer, int32_t n, ftte_slice slice,
                               const float *input, const float *weights, const float *bias,
                               float *output);
int32_t ftte_dense_forward_get_buffer_size(const ftte_layer *layer, int32_t n);

/** grad_input[n][i] += sum_{o in slice} grad_output[n][o] * weights[o - slice.begin][i]. */
ftte_status ftte_dense_backward_input(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                      const float *grad_output, const float *weights,
                                      float *grad_input);
int32_t ftte_dense_backward_input_get_buffer_size(const ftte_layer *layer, int32_t n);

/** grad_weights[o - slice.begin][i] += sum_n grad_output[n][o] * input[n][i], o in slice. */
ftte_status ftte_dense_backward_weight(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                       const float *input, const float *grad_output,
                                       float *grad_weights);
int32_t ftte_dense_backward_weight_get_buffer_size(const ftte_layer *layer, int32_t n);

/* ---------------------------------------------------------------------------------------- */
/* Bias gradient, shared by every layer with a bias                                          */
/* ---------------------------------------------------------------------------------------- */

/** grad_bias[c] += sum_r grad_output[r][c] over rows r = n * out.h * out.w of a [rows][channels]
 *  gradient. */
ftte_status ftte_bias_backward(int32_t rows, int32_t channels, const float *grad_output,
                               float *grad_bias);

/* ---------------------------------------------------------------------------------------- */
/* Conv2d: weights [out.c][kernel_h][kernel_w][in.c], stride, zero padding                   */
/* ---------------------------------------------------------------------------------------- */

/** Forward for output channels in `slice`. input [n][in.h][in.w][in.c],
 *  weights [slice.count][kernel_h][kernel_w][in.c], bias [slice.count] or NULL,
 *  output [n][out.h][out.w][out.c]; scratch of ftte_conv2d_forward_get_buffer_size() bytes. */
ftte_status ftte_conv2d_forward(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                const float *input, const float *weights, const float *bias,
                                float *output, float *scratch);
int32_t ftte_conv2d_forward_get_buffer_size(const ftte_layer *layer, int32_t n);

/** grad_input += the transposed convolution of grad_output's slice channels with weights. */
ftte_status ftte_conv2d_backward_input(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                       const float *grad_output, const float *weights,
                                       float *grad_input, float *scratch);
int32_t ftte_conv2d_backward_input_get_buffer_size(const ftte_layer *layer, int32_t n);

/** grad_weights[o - slice.begin] += sum over batch and output positions of
 *  grad_output[.][o] * the input patch under the window. */
ftte_status ftte_conv2d_backward_weight(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                        const float *input, const float *grad_output,
                                        float *grad_weights, float *scratch);
int32_t ftte_conv2d_backward_weight_get_buffer_size(const ftte_layer *layer, int32_t n);

/* ---------------------------------------------------------------------------------------- */
/* Conv1d (sensor windows): a conv2d whose height is 1. Same arguments as conv2d; the layer  */
/* must have in.h == out.h == kernel_h == stride_h == 1 and pad_top == 0.                    */
/* ---------------------------------------------------------------------------------------- */

ftte_status ftte_conv1d_forward(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                const float *input, const float *weights, const float *bias,
                                float *output, float *scratch);
int32_t ftte_conv1d_forward_get_buffer_size(const ftte_layer *layer, int32_t n);
ftte_status ftte_conv1d_backward_input(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                       const float *grad_output, const float *weights,
                                       float *grad_input, float *scratch);
int32_t ftte_conv1d_backward_input_get_buffer_size(const ftte_layer *layer, int32_t n);
ftte_status ftte_conv1d_backward_weight(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                        const float *input, const float *grad_output,
                                        float *grad_weights, float *scratch);
int32_t ftte_conv1d_backward_weight_get_buffer_size(const ftte_layer *layer, int32_t n);

/* ---------------------------------------------------------------------------------------- */
/* Pointwise (1x1) conv: weights [out.c][in.c]; a dense layer applied at every pixel.        */
/* Same argument conventions as dense, with [n][h][w][c] activations.                        */
/* ---------------------------------------------------------------------------------------- */

ftte_status ftte_pointwise_conv2d_forward(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                          const float *input, const float *weights,
                                          const float *bias, float *output);
int32_t ftte_pointwise_conv2d_forward_get_buffer_size(const ftte_layer *layer, int32_t n);
ftte_status ftte_pointwise_conv2d_backward_input(const ftte_layer *layer, int32_t n,
                                                 ftte_slice slice, const float *grad_output,
                                                 const float *weights, float *grad_input);
int32_t ftte_pointwise_conv2d_backward_input_get_buffer_size(const ftte_layer *layer, int32_t n);
ftte_status ftte_pointwise_conv2d_backward_weight(const ftte_layer *layer, int32_t n,
                                                  ftte_slice slice, const float *input,
                                                  const float *grad_output,
                                                  float *grad_weights);
int32_t ftte_pointwise_conv2d_backward_weight_get_buffer_size(const ftte_layer *layer, int32_t n);

/* ---------------------------------------------------------------------------------------- */
/* Depthwise conv2d: weights [c][kernel_h][kernel_w], channel multiplier 1 (out.c == in.c).  */
/* The slice selects channels (input and output channels coincide): weights point at          */
/* [slice.count][kernel_h][kernel_w], bias at [slice.count].                                 */
/* ---------------------------------------------------------------------------------------- */

ftte_status ftte_depthwise_conv2d_forward(const ftte_layer *layer, int32_t n, ftte_slice slice,
                                          const float *input, const float *weights,
                                          const float *bias, float *output);
int32_t ftte_depthwise_conv2d_forward_get_buffer_size(const ftte_layer *layer, int32_t n);
/** grad_input[.][.][.][c] += the transposed depthwise convolution, for channels c in the slice
 *  only (other channels of grad_input are not touched). */
ftte_status ftte_depthwise_conv2d_backward_input(const ftte_layer *layer, int32_t n,
                                                 ftte_slice slice, const float *grad_output,
                                                 const float *weights, float *grad_input);
int32_t ftte_depthwise_conv2d_backward_input_get_buffer_size(const ftte_layer *layer, int32_t n);
ftte_status ftte_depthwise_conv2d_backward_weight(const ftte_layer *layer, int32_t n,
                                                  ftte_slice slice, const float *input,
                                                  const float *grad_output,
                                                  float *grad_weights);
int32_t ftte_depthwise_conv2d_backward_weight_get_buffer_size(const ftte_layer *layer, int32_t n);

/* ---------------------------------------------------------------------------------------- */
/* Activations (elementwise; `size` = number of floats; output may alias input)               */
/* ---------------------------------------------------------------------------------------- */

/** output = max(input, 0). */
ftte_status ftte_relu_forward(int32_t size, const float *input, float *output);
/** grad_input = output > 0 ? grad_output : 0. Reads the forward OUTPUT (so the forward can run
 *  in place); writes, does not accumulate; grad_input may alias grad_output. */
ftte_status ftte_relu_backward(int32_t size, const float *output, const float *grad_output,
                               float *grad_input);

/** output = min(max(input, 0), 6). */
ftte_status ftte_relu6_forward(int32_t size, const float *input, float *output);
/** grad_input = 0 < output < 6 ? grad_output : 0. Same conventions as ftte_relu_backward. */
ftte_status ftte_relu6_backward(int32_t size, const float *output, const float *grad_output,
                                float *grad_input);

/** Activation masks: what the backward pass of ReLU / ReLU6 needs, one bit per element, so a
 *  training step can keep the mask instead of the float output (32 times smaller). Bit i of
 *  mask[i / 32] is set where the gradient passes: output[i] > 0 (ReLU), 0 < output[i] < 6
 *  (ReLU6); unused bits of the last word are cleared. mask holds
 *  ftte_activation_mask_get_buffer_size(size) bytes. */
ftte_status ftte_relu_mask(int32_t size, const float *output, uint32_t *mask);
ftte_status ftte_relu6_mask(int32_t size, const float *output, uint32_t *mask);
int32_t ftte_activation_mask_get_buffer_size(int32_t size);
/** grad_input = mask bit set ? grad_output : 0, for either activation. Writes; grad_input may
 *  alias grad_output. */
ftte_status ftte_activation_backward_masked(int32_t size, const uint32_t *mask,
                                            const float *grad_output, float *grad_input);

/* ---------------------------------------------------------------------------------------- */
/* Pooling (no padding)                                                                      */
/* ---------------------------------------------------------------------------------------- */

/** output = max over each kernel_h x kernel_w window, per channel. */
ftte_status ftte_max_pool2d_forward(const ftte_layer *layer, int32_t n, const float *input,
                                    float *output);
int32_t ftte_max_pool2d_forward_get_buffer_size(const ftte_layer *layer, int32_t n);
/** grad_input += each window's grad_output at the window's first maximum (row-major order),
 *  found again from the saved forward input. */
ftte_status ftte_max_pool2d_backward(const ftte_layer *layer, int32_t n, const float *input,
                                     const float *grad_output, float *grad_input);
int32_t ftte_max_pool2d_backward_get_buffer_size(const ftte_layer *layer, int32_t n);

/** Max pool forward that also writes, per output element, the position ky * kernel_w + kx of
 *  its window's first maximum (argmax [n][out.h][out.w][out.c], one byte each), so that the
 *  backward pass needs 1 byte per output instead of the float input. Windows of at most 256
 *  elements (FTTE_ERR_UNSUPPORTED otherwise). */
ftte_status ftte_max_pool2d_forward_indexed(const ftte_layer *layer, int32_t n,
                                            const float *input, float *output,
                                            uint8_t *argmax);
int32_t ftte_max_pool2d_forward_indexed_get_buffer_size(const ftte_layer *layer, int32_t n);
/** grad_input += each grad_output element at the window position argmax recorded. */
ftte_status ftte_max_pool2d_backward_indexed(const ftte_layer *layer, int32_t n,
                                             const uint8_t *argmax, const float *grad_output,
                                             float *grad_input);
int32_t ftte_max_pool2d_backward_indexed_get_buffer_size(const ftte_layer *layer, int32_t n);

/** output = mean over each window. */
ftte_status ftte_avg_pool2d_forward(const ftte_layer *layer, int32_t n, const float *input,
                                    float *output);
int32_t ftte_avg_pool2d_forward_get_buffer_size(const ftte_layer *layer, int32_t n);
/** grad_input += grad_output / (kernel_h * kernel_w) over each window. */
ftte_status ftte_avg_pool2d_backward(const ftte_layer *layer, int32_t n,
                                     const float *grad_output, float *grad_input);
int32_t ftte_avg_pool2d_backward_get_buffer_size(const ftte_layer *layer, int32_t n);

/** output[n][c] = mean over in.h x in.w. */
ftte_status ftte_global_avg_pool_forward(const ftte_layer *layer, int32_t n, const float *input,
                                         float *output);
int32_t ftte_global_avg_pool_forward_get_buffer_size(const ftte_layer *layer, int32_t n);
/** grad_input[n][y][x][c] += grad_output[n][c] / (in.h * in.w). */
ftte_status ftte_global_avg_pool_backward(const ftte_layer *layer, int32_t n,
                                          const float *grad_output, float *grad_input);
int32_t ftte_global_avg_pool_backward_get_buffer_size(const ftte_layer *layer, int32_t n);

/* ---------------------------------------------------------------------------------------- */
/* Flatten: NHWC memory already is the flattened order; these copy (no-op when aliased).      */
/* ---------------------------------------------------------------------------------------- */

ftte_status ftte_flatten_forward(const ftte_layer *layer, int32_t n, const float *input,
                                 float *output);
/** grad_input += grad_output (grad_input may not alias grad_output). */
ftte_status ftte_flatten_backward(const ftte_layer *layer, int32_t n, const float *grad_output,
                                  float *grad_input);

/* ---------------------------------------------------------------------------------------- */
/* Softmax and cross-entropy loss                                                            */
/* ---------------------------------------------------------------------------------------- */

/** probs[n][k] = softmax(logits[n][:]) (numerically stable); probs may alias logits. */
ftte_status ftte_softmax_forward(int32_t n, int32_t classes, const float *logits, float *probs);

/** *loss = mean over the batch of -log softmax(logits[n])[labels[n]].
 *  Returns FTTE_ERR_LABEL for a label outside [0, classes). */
ftte_status ftte_cross_entropy_forward(int32_t n, int32_t classes, const float *logits,
                                       const int32_t *labels, float *loss);

/** grad_logits = (softmax(logits) - onehot(labels)) / n, and *loss as the forward (loss may
 *  be NULL). grad_logits may alias logits. Writes, does not accumulate. */
ftte_status ftte_cross_entropy_backward(int32_t n, int32_t classes, const float *logits,
                                        const int32_t *labels, float *grad_logits,
                                        float *loss);

/* ---------------------------------------------------------------------------------------- */
/* Optimiser                                                                                 */
/* ---------------------------------------------------------------------------------------- */

/** SGD step as Keras defines it. With velocity == NULL: param -= lr * grad. Otherwise:
 *  velocity = momentum * velocity - lr * grad; param += velocity. */
ftte_status ftte_sgd_update(int32_t count, float learning_rate, float momentum,
                            const float *grad, float *velocity, float *param);

#ifdef __cplusplus
}
#endif

#endif /* FTTE_KERNELS_H */
