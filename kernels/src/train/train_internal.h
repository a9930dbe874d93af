/* Private helpers shared by the planner and the training step. */
#ifndef FTTE_TRAIN_INTERNAL_H
#define FTTE_TRAIN_INTERNAL_H

#include "ftte_kernels.h"
#include "ftte_train.h"

/* A maximal run of output channels that are all trainable or all frozen. `rank` is the index,
 * among the layer's trainable rows, of the run's first row when the run is trainable. */
typedef struct {
    int32_t begin;
    int32_t count;
    int32_t trainable;
    int32_t rank;
} ftte_run;

int ftte_op_has_weights(int32_t op);

/* ReLU, ReLU6 and flatten run in place on their input's buffer (not on the caller's input). */
int ftte_layer_in_place(const ftte_model *model, int32_t layer);

int ftte_update_trains_weights(const ftte_layer_update *update);
int ftte_update_trains_bias(const ftte_layer *layer, const ftte_layer_update *update);

/* Trainable weight rows of a layer under its update (0 for frozen and bias-only). */
int32_t ftte_update_rows(const ftte_layer *layer, const ftte_layer_update *update);

/* Iterates the runs of a layer's output channels: start with run->begin = run->count = 0,
 * run->rank = 0; returns 0 after the last run. */
int ftte_next_run(const ftte_layer *layer, const ftte_layer_update *update, ftte_run *run);

/* The update of layer i under a config (FROZEN when the config has no spec). */
ftte_layer_update ftte_config_update(const ftte_train_config *config, int32_t layer);

/* Floats of one sample of a layer's output. */
static inline int32_t ftte_out_size(const ftte_layer *layer) { return ftte_shape_size(layer->out); }

/* Scratch bytes of the forward pass, and of the backward pass (input and weight gradients run
 * one after the other, so the larger of the two). */
int32_t ftte_layer_forward_scratch(const ftte_layer *layer, int32_t n);
int32_t ftte_layer_backward_scratch(const ftte_layer *layer, int32_t n, int needs_input_grad,
                                    int needs_weight_grad);

/* Forward of one layer over the runs of its update; weights come from the arena for trainable
 * rows (params, NULL when none) and from the layer table otherwise. aux, when not NULL,
 * receives what the backward pass keeps instead of the float values (ReLU/ReLU6 mask, max-pool
 * argmax). */
ftte_status ftte_layer_forward(const ftte_layer *layer, const ftte_layer_update *update,
                               const float *params, int32_t n, const float *input, float *output,
                               float *scratch, void *aux);

/* grad_input += d loss / d input (zeroed by the caller); input/output are the saved forward
 * values the operator needs, or aux its saved mask / argmax (unused ones may be NULL). */
ftte_status ftte_layer_backward_input(const ftte_layer *layer, const ftte_layer_update *update,
                                      const float *params, int32_t n, const float *input,
                                      const float *output, const void *aux,
                                      const float *grad_output, float *grad_input,
                                      float *scratch);

/* grad_weights (trainable rows, packed) and grad_bias += gradients (zeroed by the caller);
 * either may be NULL when not trained. */
ftte_status ftte_layer_backward_params(const ftte_layer *layer, const ftte_layer_update *update,
                                       int32_t n, const float *input, const float *grad_output,
                                       float *grad_weights, float *grad_bias, float *scratch);

/* Forward through the whole table into the plan's buffers; returns a pointer to the logits. */
ftte_status ftte_run_forward(const ftte_plan *plan, unsigned char *arena, const float *input,
                             int32_t n, const float **logits);

/* Checks that a plan, arena and batch fit together before a step or a forward. */
ftte_status ftte_check_call(const ftte_plan *plan, const void *arena, int32_t arena_bytes,
                            const float *input, int32_t n);

#endif /* FTTE_TRAIN_INTERNAL_H */
