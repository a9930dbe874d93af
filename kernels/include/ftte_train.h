/*
 * FTTE kernels: sparse training over a sequential layer table inside one arena.
 *
 * A model is a sequential layer table (ftte_types.h) ending in logits of shape {1, 1, classes};
 * the loss is the batch-mean softmax cross-entropy. An update spec says, per layer, what is
 * trained. Everything a training step needs lives in one caller-provided arena:
 *
 *   [ persistent: trainable params | SGD velocity ][ saved activations ][ working region ]
 *
 *  - persistent: the trainable rows and biases, copied from the read-only layer table by
 *    ftte_train_init() and updated in place by every step (frozen parameters stay where the
 *    layer table points: flash on a board);
 *  - saved activations: only the forward values that some backward kernel reads, and for
 *    ReLU/ReLU6 and max pool only what their backward needs (a bit mask, a byte of argmax)
 *    unless the float values are kept anyway for a trainable layer above;
 *  - working region: transient activations and activation gradients ping-pong between its two
 *    ends; weight gradients and kernel scratch sit between them.
 *
 * ftte_plan_train() computes the layout once (a caller-owned ftte_plan, no allocation) and
 * returns the exact arena bytes and their split in plan.memory; every step then reads its
 * buffer offsets from that plan, and a test paints the arena to check that the bytes a step
 * touches equal the plan. The backward pass computes only what the spec needs: no weight gradient for a
 * frozen tensor, nothing below the lowest trainable layer, no saved value that nothing reads.
 * Each layer's parameters are updated (SGD) right after its gradients are computed, so only
 * one layer's weight gradient is ever alive.
 */
#ifndef FTTE_TRAIN_H
#define FTTE_TRAIN_H

#include "ftte_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest layer table a plan can hold (a plan costs about 24 bytes per layer). */
#define FTTE_MAX_LAYERS 48

/** What a layer trains. Layers without weights must be FROZEN. */
typedef enum {
    FTTE_UPDATE_FROZEN = 0,   /**< nothing */
    FTTE_UPDATE_BIAS = 1,     /**< the bias only (the layer must have one) */
    FTTE_UPDATE_CHANNELS = 2, /**< the weight rows of the output channels in channel_mask, plus the
                                   whole bias if the layer has one */
    FTTE_UPDATE_FULL = 3      /**< all weights, plus the bias if the layer has one */
} ftte_update_mode;

/** Update spec of one layer. */
typedef struct {
    int32_t mode;                /**< ftte_update_mode */
    const uint8_t *channel_mask; /**< CHANNELS only: ceil(out.c / 8) bytes; output channel o is
                                      trainable when bit (o % 8) of byte (o / 8) is set */
} ftte_layer_update;

/** A sequential model: layers[i].out must have as many elements as layers[i + 1].in, and the
 *  last layer's output, {1, 1, classes}, are the logits. */
typedef struct {
    const ftte_layer *layers;
    int32_t num_layers;
} ftte_model;

/** Everything that fixes the arena layout. */
typedef struct {
    const ftte_model *model;
    const ftte_layer_update *updates; /**< num_layers entries; NULL: all frozen (inference) */
    int32_t batch;                    /**< largest batch a step or forward will be given */
    int32_t momentum;                 /**< nonzero: the arena keeps SGD velocity buffers */
} ftte_train_config;

/** SGD hyperparameters of one step (Keras semantics, see ftte_sgd_update). */
typedef struct {
    float learning_rate;
    float momentum; /**< ignored unless the config keeps velocity buffers */
} ftte_sgd_params;

/** The arena a configuration needs, in bytes. total = params_ram + optimizer_state +
 *  saved_activations + working_activations + gradients + scratch; the last three are the
 *  working region's split at its peak. params_flash is outside the arena. */
typedef struct {
    int32_t params_ram;          /**< trainable rows and biases */
    int32_t optimizer_state;     /**< SGD velocity */
    int32_t saved_activations;   /**< forward values kept for the backward pass */
    int32_t working_activations; /**< transient activations and activation gradients at peak */
    int32_t gradients;           /**< weight and bias gradients at peak */
    int32_t scratch;             /**< kernel scratch at peak */
    int32_t total;               /**< arena bytes needed */
    int32_t params_flash;        /**< frozen parameter bytes read in place, not in the arena */
    int32_t trainable_params;    /**< number of trainable floats */
} ftte_train_memory;

/** Where a layer's trainable tensors sit in the arena (byte offsets, -1 when absent). */
typedef struct {
    int32_t weights;          /**< [rows][row_length]: the trainable rows in channel order */
    int32_t bias;             /**< [out.c] */
    int32_t weights_velocity; /**< like weights */
    int32_t bias_velocity;    /**< like bias */
    int32_t rows;             /**< trainable output channels */
    int32_t row_length;       /**< floats per row */
} ftte_param_layout;

/** Optional per-layer gradient outputs of a step (either pointer may be NULL): weights like
 *  ftte_param_layout.weights, bias [out.c]. Written, not accumulated. */
typedef struct {
    float *weights;
    float *bias;
} ftte_param_grads;

/**
 * The arena layout of one config, computed by ftte_plan_train() or ftte_plan_forward() and read
 * by the step. Only `memory` is for callers; the rest is private to the trainer. A plan stays
 * valid while its config and everything the config points to are unchanged.
 */
typedef struct {
    ftte_train_memory memory;
    /* private */
    ftte_train_config config;
    int32_t training;                         /* 1: laid out for training, 0: forward only */
    int32_t lowest_trainable;                 /* no backward below this layer */
    int32_t working_base;                     /* arena offset of the working region */
    int32_t param_offset[FTTE_MAX_LAYERS];    /* trainable rows, then the bias; -1 if none */
    int32_t value_offset[FTTE_MAX_LAYERS];    /* each layer's output activation */
    int32_t grad_offset[FTTE_MAX_LAYERS];     /* gradient of each layer's output; -1 if none */
    int32_t aux_offset[FTTE_MAX_LAYERS];      /* saved ReLU mask or max-pool argmax; -1 if none */
    int32_t forward_middle[FTTE_MAX_LAYERS];  /* forward scratch */
    int32_t backward_middle[FTTE_MAX_LAYERS]; /* weight gradients, then backward scratch */
} ftte_plan;

/** Checks every layer and the chaining of shapes; the last layer must give {1, 1, classes};
 *  weighted layers must point at their weights. */
ftte_status ftte_model_validate(const ftte_model *model);

/** A 32-bit FNV-1a hash of the model layout: the number of layers and, per layer, its
 *  operator, shapes, window geometry and whether it has a bias, each as a little-endian int32
 *  (never the parameter values). Host and board exchange it to refuse a mismatched model.
 *  Returns 0 for a NULL model. */
uint32_t ftte_model_layout_hash(const ftte_model *model);

/** Lays out a training step for the config; plan->memory.total is the arena it needs.
 *  Fails with FTTE_ERR_SPEC for an update spec the model cannot take. */
ftte_status ftte_plan_train(const ftte_train_config *config, ftte_plan *plan);

/** Lays out inference only (nothing saved, no gradients) for the config; the persistent part
 *  is the same as for training, so an arena trained under a training plan of the same config
 *  can also be evaluated with a forward plan in fewer bytes. */
ftte_status ftte_plan_forward(const ftte_train_config *config, ftte_plan *plan);

/** Offsets of a layer's trainable tensors in the arena. */
ftte_status ftte_param_layout_get(const ftte_plan *plan, int32_t layer, ftte_param_layout *layout);

/** Copies the trainable parameters from the layer table into the arena's persistent part and
 *  zeroes the velocity. The arena must be 4-byte aligned. */
ftte_status ftte_train_init(const ftte_plan *plan, void *arena, int32_t arena_bytes);

/**
 * One SGD step on a batch: forward, batch-mean cross-entropy, sparse backward, update in place.
 * input [n][in], labels [n] in [0, classes), 1 <= n <= config.batch. *loss receives the loss
 * before the update (loss may be NULL). grads: NULL, or num_layers entries whose non-NULL
 * pointers receive this step's gradients of the trainable tensors. The plan must be a training
 * plan and the arena hold plan->memory.total bytes. On an error status the persistent part of
 * the arena is unchanged.
 */
ftte_status ftte_train_step(const ftte_plan *plan, void *arena, int32_t arena_bytes,
                            ftte_sgd_params sgd, const float *input, const int32_t *labels,
                            int32_t n, float *loss, const ftte_param_grads *grads);

/**
 * A local task in one call: `steps` consecutive ftte_train_step() calls, with their bits. Step
 * k takes the n samples input[k*n .. (k+1)*n) and labels[k*n .. (k+1)*n), and losses[k]
 * receives its loss before the update. *loss_after receives the mean loss of the last step's
 * samples under the updated parameters (what a board reports as its task's loss after; the
 * bits of ftte_forward() then ftte_cross_entropy_forward()). losses and loss_after may be
 * NULL; with steps == 0 nothing is written. For a host that holds the whole task (the
 * simulator); a board streams its batches into ftte_train_step(). On an error status the
 * steps before the failing one stay applied; arguments wrong for every step fail at the
 * first, before anything changes.
 */
ftte_status ftte_train_steps(const ftte_plan *plan, void *arena, int32_t arena_bytes,
                             ftte_sgd_params sgd, const float *input, const int32_t *labels,
                             int32_t n, int32_t steps, float *losses, float *loss_after);

/** Inference with the arena's current parameters (under a training or a forward plan):
 *  output [n][classes] receives the logits, 1 <= n <= config.batch. */
ftte_status ftte_forward(const ftte_plan *plan, void *arena, int32_t arena_bytes,
                         const float *input, int32_t n, float *output);

#ifdef __cplusplus
}
#endif

#endif /* FTTE_TRAIN_H */
