/*
 * Transfers from the host: PROVISION (weights), DATA (samples) and TASK (selection and values).
 *
 * The codec's receiver (ftte_wire_rx_*) checks chunk order, the body size and, with the last
 * chunk, the body's CRC-32; a chunk is applied only after it passed. Each header is checked
 * against the board first (layout hash, sizes, memory), and a TASK's selection is planned as
 * soon as its bytes are in, so that a task that cannot fit is refused before its values come.
 * Bodies are written where they belong as they arrive: weights into the RAM weights, samples
 * into the store, task values into the arena's parameter region. A transfer that does not
 * complete leaves what it half-wrote marked unusable (see transfer_abandon).
 */
#include <string.h>

#include "board_internal.h"
#include "ftte_kernels.h"

static uint32_t sample_bytes(const ftte_board *b) { return 4u * b->input_features + 4u; }

void transfer_abandon(ftte_board *b) {
    switch (b->rx.type) {
    case FTTE_MSG_PROVISION: b->weights_valid = 0; break;      /* half-written weights */
    case FTTE_MSG_DATA: b->sample_count = b->data_first; break; /* samples before it stay */
    default: break;                                             /* TASK: the arena only */
    }
    b->rx.type = 0;
    b->task_planned = 0;
    if (b->state == FTTE_WIRE_STATE_RECEIVING) b->state = FTTE_WIRE_STATE_IDLE;
}

/* Refuses the frame and drops the transfer it belonged to. */
static void refuse(ftte_board *b, const ftte_wire_frame *f, uint8_t type, int32_t status, uint32_t detail) {
    transfer_abandon(b);
    board_send_error(b, f->seq, type, status, detail);
}

/* ---- headers ------------------------------------------------------------------------------- */

void transfer_header(ftte_board *b, const ftte_wire_frame *f, const ftte_msg *m) {
    transfer_abandon(b); /* a header abandons any transfer in progress */
    switch (m->type) {
    case FTTE_MSG_PROVISION: {
        const ftte_msg_provision *p = &m->u.provision;
        if (p->layout_hash != b->layout_hash) {
            refuse(b, f, m->type, FTTE_WIRE_ERR_MODEL_MISMATCH, b->layout_hash);
            return;
        }
        if (p->body_bytes != 4u * b->mem.weight_count) {
            refuse(b, f, m->type, FTTE_WIRE_ERR_BAD_FIELD, 4u * b->mem.weight_count);
            return;
        }
        b->weights_valid = 0;
        b->weights_crc_valid = 0;
        break;
    }
    case FTTE_MSG_DATA: {
        const ftte_msg_data *d = &m->u.data;
        if (d->features != b->input_features) {
            refuse(b, f, m->type, FTTE_WIRE_ERR_BAD_FIELD, b->input_features);
            return;
        }
        if (d->first_sample > b->sample_count) {
            refuse(b, f, m->type, FTTE_WIRE_ERR_BAD_FIELD, b->sample_count);
            return;
        }
        if (d->sample_count > b->sample_capacity - d->first_sample) {
            refuse(b, f, m->type, FTTE_WIRE_ERR_NO_MEMORY,
                   (b->sample_capacity - d->first_sample) * sample_bytes(b));
            return;
        }
        b->data_first = d->first_sample;
        b->sample_count = d->first_sample; /* what follows is being overwritten */
        b->cursor = 0;
        break;
    }
    case FTTE_MSG_TASK: {
        const ftte_msg_task *t = &m->u.task;
        if (t->layout_hash != b->layout_hash) {
            refuse(b, f, m->type, FTTE_WIRE_ERR_MODEL_MISMATCH, b->layout_hash);
            return;
        }
        if (!b->weights_valid) {
            refuse(b, f, m->type, FTTE_WIRE_ERR_UNEXPECTED, FTTE_BOARD_LACKS_WEIGHTS);
            return;
        }
        if (b->sample_count == 0) {
            refuse(b, f, m->type, FTTE_WIRE_ERR_UNEXPECTED, FTTE_BOARD_LACKS_SAMPLES);
            return;
        }
        if (t->param_count > b->arena_budget / 4u) {
            refuse(b, f, m->type, FTTE_WIRE_ERR_NO_MEMORY, b->arena_budget);
            return;
        }
        b->selection_got = 0;
        b->task_planned = 0;
        break;
    }
    default: /* UPDATE is refused before it gets here */
        refuse(b, f, m->type, FTTE_WIRE_ERR_UNEXPECTED, 0);
        return;
    }
    (void)ftte_wire_rx_begin(&b->rx, m);
    b->rx_header = *m;
    b->state = FTTE_WIRE_STATE_RECEIVING;
    board_send_ack(b, f->seq, m->type, 0);
}

/* ---- the TASK's selection -------------------------------------------------------------------- */

/* Decodes the selection, checks it against the model and plans the task in the arena budget.
 * Returns FTTE_WIRE_OK or the status to refuse the chunk with (*detail set). */
static ftte_wire_status plan_task(ftte_board *b, uint32_t *detail) {
    const ftte_msg_task *t = &b->rx_header.u.task;
    *detail = 0;
    ftte_wire_status st = ftte_wire_selection_decode(b->selection_bytes, t->selection_bytes, &b->selection);
    if (st != FTTE_WIRE_OK) return st;
    st = ftte_wire_selection_updates(&b->selection, b->updates, b->model.num_layers);
    if (st != FTTE_WIRE_OK) {
        *detail = b->layout_hash;
        return st;
    }
    for (int32_t i = 0; i < b->model.num_layers; i++) {
        const ftte_wire_layer_selection *l = &b->selection.layers[i];
        if (l->mode == FTTE_UPDATE_CHANNELS && l->out_channels != b->layers[i].out.c) {
            *detail = (uint32_t)i;
            return FTTE_WIRE_ERR_BAD_FIELD;
        }
    }
    const ftte_train_config config = {&b->model, b->updates, t->batch_size, t->momentum != 0.0f};
    if (ftte_plan_train(&config, &b->plan) != FTTE_OK) return FTTE_WIRE_ERR_BAD_FIELD;
    if ((uint32_t)b->plan.memory.total > b->arena_budget) {
        *detail = b->arena_budget;
        return FTTE_WIRE_ERR_NO_MEMORY;
    }
    if ((uint32_t)b->plan.memory.trainable_params != t->param_count) {
        *detail = (uint32_t)b->plan.memory.trainable_params;
        return FTTE_WIRE_ERR_BAD_FIELD;
    }
    b->task_planned = 1;
    return FTTE_WIRE_OK;
}

/* ---- applying chunks ------------------------------------------------------------------------ */

static void copy_weights_from_arena(ftte_board *b, uint32_t value, float *weights, uint32_t n, void *ctx) {
    (void)ctx;
    memcpy(weights, (const float *)b->mem.arena + value, n * sizeof(float));
}

/* Applies the bytes [offset, offset + n) of the body. Returns FTTE_WIRE_OK or a status to
 * refuse the chunk with. */
static ftte_wire_status apply(ftte_board *b, uint32_t offset, const uint8_t *data, uint32_t n,
                              uint32_t *detail) {
    *detail = 0;
    switch (b->rx.type) {
    case FTTE_MSG_PROVISION:
        memcpy((uint8_t *)b->mem.weights + offset, data, n);
        return FTTE_WIRE_OK;
    case FTTE_MSG_DATA: {
        const ftte_msg_data *d = &b->rx_header.u.data;
        uint32_t feature_bytes = 4u * d->sample_count * d->features;
        uint8_t *x = (uint8_t *)(b->samples + (size_t)d->first_sample * b->input_features);
        uint8_t *y = (uint8_t *)(b->labels + d->first_sample);
        if (offset < feature_bytes) {
            uint32_t k = feature_bytes - offset < n ? feature_bytes - offset : n;
            memcpy(x + offset, data, k);
            offset += k, data += k, n -= k;
        }
        if (n > 0) memcpy(y + (offset - feature_bytes), data, n);
        return FTTE_WIRE_OK;
    }
    default: { /* TASK: the selection, padding, then the values into the arena */
        const ftte_msg_task *t = &b->rx_header.u.task;
        uint32_t values = ftte_wire_task_values_offset(t);
        if (offset < t->selection_bytes) {
            uint32_t k = t->selection_bytes - offset < n ? t->selection_bytes - offset : n;
            memcpy(b->selection_bytes + offset, data, k);
            b->selection_got = offset + k;
            offset += k, data += k, n -= k;
            if (b->selection_got == t->selection_bytes) {
                ftte_wire_status st = plan_task(b, detail);
                if (st != FTTE_WIRE_OK) return st;
            }
        }
        if (offset < values) { /* padding */
            uint32_t k = values - offset < n ? values - offset : n;
            offset += k, data += k, n -= k;
        }
        if (n > 0) memcpy((uint8_t *)b->mem.arena + (offset - values), data, n);
        return FTTE_WIRE_OK;
    }
    }
}

/* The body is complete and its CRC matched: make it usable. */
static ftte_wire_status finish(ftte_board *b, uint32_t *detail) {
    *detail = 0;
    switch (b->rx.type) {
    case FTTE_MSG_PROVISION:
        board_le_words_in_place(b->mem.weights, b->mem.weight_count);
        b->weights_valid = 1;
        b->weights_crc = b->rx.expected_crc; /* the CRC of the bytes as sent: HELLO's */
        b->weights_crc_valid = 1;
        b->save_pending = b->has_storage; /* after the ACK: a slow flash write delays no frame */
        return FTTE_WIRE_OK;
    case FTTE_MSG_DATA: {
        const ftte_msg_data *d = &b->rx_header.u.data;
        float *x = b->samples + (size_t)d->first_sample * b->input_features;
        int32_t *y = b->labels + d->first_sample;
        board_le_words_in_place(x, d->sample_count * d->features);
        board_le_words_in_place(y, d->sample_count);
        for (uint32_t i = 0; i < d->sample_count; i++) {
            if (y[i] < 0 || (uint32_t)y[i] >= b->classes) {
                *detail = d->first_sample + i; /* the sample with the bad label */
                return FTTE_WIRE_ERR_BAD_FIELD;
            }
        }
        b->sample_count = d->first_sample + d->sample_count;
        return FTTE_WIRE_OK;
    }
    default: { /* TASK */
        const ftte_msg_task *t = &b->rx_header.u.task;
        board_le_words_in_place(b->mem.arena, t->param_count);
        /* The received values become the board's own copy of those parameters (the deltas are
         * taken against them), then the arena is set up from the weights as a step expects. */
        task_param_runs(b, 0, t->param_count, copy_weights_from_arena, NULL);
        b->weights_crc_valid = 0;
        ftte_status st = ftte_train_init(&b->plan, b->mem.arena, (int32_t)b->arena_budget);
        if (st != FTTE_OK) {
            *detail = (uint32_t)(-(int32_t)st);
            return FTTE_WIRE_ERR_TRAINING;
        }
        b->task_ready = 1;
        return FTTE_WIRE_OK;
    }
    }
}

void transfer_chunk(ftte_board *b, const ftte_wire_frame *f, const ftte_msg *m) {
    uint32_t offset = m->u.chunk.offset, n = m->u.chunk.len;
    int32_t r = ftte_wire_rx_chunk(&b->rx, m);
    if (r < 0) { /* refused: nothing changes, the transfer stays open (the host resends) */
        uint32_t detail = r == FTTE_WIRE_ERR_OUT_OF_ORDER ? b->rx.received : 0;
        if (r == FTTE_WIRE_ERR_BAD_HASH) transfer_abandon(b); /* the body is bad: start again */
        board_send_error(b, f->seq, m->type, r, detail);
        return;
    }
    uint32_t detail = 0;
    ftte_wire_status st = apply(b, offset, m->u.chunk.data, n, &detail);
    if (st == FTTE_WIRE_OK && r == 1) st = finish(b, &detail);
    if (st != FTTE_WIRE_OK) {
        refuse(b, f, m->type, st, detail);
        return;
    }
    uint32_t received = b->rx.received;
    if (r == 1) { /* complete */
        b->rx.type = 0;
        b->state = b->task_ready ? FTTE_WIRE_STATE_TRAINING : FTTE_WIRE_STATE_IDLE;
    }
    board_send_ack(b, f->seq, m->type, received);
}
