/*
 * The task runner and the UPDATE it sends back.
 *
 * Batches come from the sample store in store order: a step takes the samples [cursor,
 * cursor + batch) (fewer when the store ends first), the cursor moves on and wraps to 0 at the
 * end of the store. The cursor persists from task to task and restarts at 0 when DATA changes
 * the store, so local_epochs = 1 visits every stored sample exactly once. The host can therefore
 * replay any task with the same kernels (tests/test_native_board.py does, bit for bit).
 *
 * Between steps the link is serviced: PING gets PONG (state TRAINING, progress), HELLO_REQUEST
 * stops the task (no UPDATE), anything else gets ERROR BUSY.
 *
 * The UPDATE body is computed as it is sent, never stored: delta = trained (the arena) minus
 * received (the board's weights, which took the task's values when it started). A first pass
 * gives the body's CRC-32 and the mean squared delta for the header.
 */
#include <string.h>

#include "board_internal.h"
#include "ftte_kernels.h"

/* ---- the selected parameters, in arena order ---------------------------------------------- */

static void visit_run(ftte_board *b, uint32_t at, float *weights, uint32_t n, uint32_t first,
                      uint32_t end,
                      void (*visit)(ftte_board *, uint32_t, float *, uint32_t, void *), void *ctx) {
    uint32_t lo = at > first ? at : first, hi = at + n < end ? at + n : end;
    if (lo < hi) visit(b, lo, weights + (lo - at), hi - lo, ctx);
}

void task_param_runs(ftte_board *b, uint32_t first, uint32_t count,
                     void (*visit)(ftte_board *, uint32_t, float *, uint32_t, void *), void *ctx) {
    uint32_t end = first + count, at = 0;
    for (int32_t i = 0; i < b->model.num_layers && at < end; i++) {
        const ftte_layer *l = &b->layers[i];
        const ftte_layer_update *u = &b->updates[i];
        if (u->mode == FTTE_UPDATE_FROZEN) continue;
        uint32_t row = (uint32_t)ftte_layer_row_length(l), channels = (uint32_t)l->out.c;
        if (l->weights != NULL && u->mode != FTTE_UPDATE_BIAS) {
            float *w = b->mem.weights + (l->weights - b->mem.weights);
            if (u->mode == FTTE_UPDATE_FULL) {
                visit_run(b, at, w, channels * row, first, end, visit, ctx);
                at += channels * row;
            } else {
                for (uint32_t o = 0; o < channels; o++) {
                    if (!((u->channel_mask[o >> 3] >> (o & 7u)) & 1u)) continue;
                    visit_run(b, at, w + (size_t)o * row, row, first, end, visit, ctx);
                    at += row;
                }
            }
        }
        if (l->bias != NULL) {
            visit_run(b, at, b->mem.weights + (l->bias - b->mem.weights), channels, first, end, visit, ctx);
            at += channels;
        }
    }
}

/* ---- deltas --------------------------------------------------------------------------------- */

typedef struct {
    uint8_t *out;     /* little-endian deltas of values [first, ...) */
    uint32_t first;
    double sum_sq;
} delta_ctx;

static void put_deltas(ftte_board *b, uint32_t value, float *weights, uint32_t n, void *ctx) {
    delta_ctx *c = (delta_ctx *)ctx;
    const float *trained = (const float *)b->mem.arena + value;
    for (uint32_t j = 0; j < n; j++) {
        float d = trained[j] - weights[j];
        c->sum_sq += (double)d * (double)d;
        ftte_wire_f32_to_le(&d, 1, c->out + 4u * (value + j - c->first));
    }
}

/* Writes the little-endian deltas of body bytes [offset, offset + n) into the stage buffer;
 * returns their sum of squares. */
static double stage_deltas(ftte_board *b, uint32_t offset, uint32_t n) {
    delta_ctx c = {b->mem.stage, offset / 4u, 0.0};
    task_param_runs(b, offset / 4u, n / 4u, put_deltas, &c);
    return c.sum_sq;
}

/* ---- sending the UPDATE ----------------------------------------------------------------------- */

static uint32_t update_chunk_bytes(const ftte_board *b) {
    uint32_t room = (uint32_t)ftte_wire_chunk_capacity(board_tx_frame(b), 0);
    uint32_t left = b->update.body_bytes - b->tx_offset;
    return left < room ? left : room;
}

static void send_pending(ftte_board *b) {
    ftte_msg m;
    memset(&m, 0, sizeof m);
    m.type = b->tx_pending_type;
    if (m.type == FTTE_MSG_UPDATE) {
        m.u.update = b->update;
    } else {
        uint32_t n = update_chunk_bytes(b);
        (void)stage_deltas(b, b->tx_offset, n);
        m.u.chunk.offset = b->tx_offset;
        m.u.chunk.len = n;
        m.u.chunk.data = b->mem.stage;
    }
    board_send(b, &m, b->tx_pending_seq);
    b->tx_sent_ms = board_now(b);
    b->tx_tries++;
}

/* The next frame of the update: a new sequence number, fresh tries. */
static void send_next(ftte_board *b, uint8_t type) {
    b->tx_pending_type = type;
    b->tx_pending_seq = b->tx_seq++;
    b->tx_tries = 0;
    send_pending(b);
}

static void update_done(ftte_board *b) {
    b->sending = 0;
    b->state = FTTE_WIRE_STATE_IDLE;
}

void update_on_ack(ftte_board *b, const ftte_msg_ack *ack) {
    if (ack->acked_seq != b->tx_pending_seq || ack->acked_type != b->tx_pending_type) return;
    if (b->tx_pending_type == FTTE_MSG_UPDATE_CHUNK) b->tx_offset += update_chunk_bytes(b);
    if (b->tx_offset >= b->update.body_bytes) {
        update_done(b);
        return;
    }
    send_next(b, FTTE_MSG_UPDATE_CHUNK);
}

void update_on_error(ftte_board *b, const ftte_msg_error *error) {
    if (error->frame_type == 0) { /* a frame of ours arrived damaged: resend it now */
        if (b->tx_tries < FTTE_BOARD_RETRIES) send_pending(b);
        return;
    }
    if (error->frame_seq != b->tx_pending_seq || error->frame_type != b->tx_pending_type) return;
    /* The host refused the frame (a bad body, or it expects no update): start the transfer
     * again while tries are left, unless it says it expects none. */
    if (error->code == (uint8_t)(-FTTE_WIRE_ERR_UNEXPECTED) || b->tx_tries >= FTTE_BOARD_RETRIES) {
        update_done(b);
        return;
    }
    uint32_t tries = b->tx_tries;
    b->tx_offset = 0;
    send_next(b, FTTE_MSG_UPDATE);
    b->tx_tries = tries + 1;
}

void update_check_timeout(ftte_board *b) {
    if (board_now(b) - b->tx_sent_ms < FTTE_BOARD_RETRY_MS) return;
    if (b->tx_tries >= FTTE_BOARD_RETRIES) { /* the host is gone: give the update up */
        update_done(b);
        return;
    }
    send_pending(b);
}

/* ---- training --------------------------------------------------------------------------------- */

static void task_failed(ftte_board *b, ftte_status st) {
    b->state = FTTE_WIRE_STATE_IDLE;
    board_send_error(b, 0, FTTE_MSG_TASK, FTTE_WIRE_ERR_TRAINING, (uint32_t)(-(int32_t)st));
}

void task_run(ftte_board *b) {
    const ftte_msg_task task = b->rx_header.u.task;
    b->task_ready = 0;
    b->abort = 0;
    b->state = FTTE_WIRE_STATE_TRAINING;
    b->progress = 0;

    const uint32_t count = b->sample_count, batch = task.batch_size, f = b->input_features;
    uint64_t steps = task.local_steps;
    if (steps == 0) steps = (uint64_t)task.local_epochs * ((count + batch - 1u) / batch);
    if (steps > UINT32_MAX) steps = UINT32_MAX;
    const ftte_sgd_params sgd = {task.learning_rate, task.momentum};
    const int32_t arena_bytes = (int32_t)b->arena_budget;
    const uint32_t start = board_now(b);
    float loss = 0.0f, loss_before = 0.0f;
    uint32_t used = 0, last = 0, last_n = 0;

    for (uint32_t s = 0; s < (uint32_t)steps; s++) {
        uint32_t n = count - b->cursor < batch ? count - b->cursor : batch;
        ftte_status st = ftte_train_step(&b->plan, b->mem.arena, arena_bytes, sgd,
                                         b->samples + (size_t)b->cursor * f, b->labels + b->cursor,
                                         (int32_t)n, &loss, NULL);
        if (st != FTTE_OK) {
            task_failed(b, st);
            return;
        }
        if (s == 0) loss_before = loss;
        used += n;
        last = b->cursor, last_n = n;
        b->cursor = b->cursor + n >= count ? 0 : b->cursor + n;
        b->progress = (uint16_t)((uint64_t)(s + 1u) * 1000u / steps);
        (void)board_service(b, 0);
        if (b->abort) return; /* HELLO_REQUEST: the session restarted, no UPDATE */
    }

    /* loss_after: the last batch through the trained parameters, one sample at a time. */
    float sum = 0.0f;
    for (uint32_t j = 0; j < last_n; j++) {
        float sample_loss = 0.0f;
        ftte_status st = ftte_forward(&b->plan, b->mem.arena, arena_bytes,
                                      b->samples + (size_t)(last + j) * f, 1, b->logits);
        if (st == FTTE_OK)
            st = ftte_cross_entropy_forward(1, (int32_t)b->classes, b->logits, b->labels + last + j,
                                            &sample_loss);
        if (st != FTTE_OK) {
            task_failed(b, st);
            return;
        }
        sum += sample_loss;
    }

    /* The UPDATE header: CRC-32 and mean square of the deltas, in a first pass. */
    ftte_msg_update *u = &b->update;
    memset(u, 0, sizeof *u);
    u->task_id = task.task_id;
    u->base_version = task.model_version;
    u->samples_used = used;
    u->loss_before = loss_before;
    u->loss_after = last_n ? sum / (float)last_n : 0.0f;
    u->train_ms = board_now(b) - start;
    u->param_count = task.param_count;
    u->body_bytes = 4u * task.param_count;
    uint32_t crc = 0, room = (uint32_t)ftte_wire_chunk_capacity(board_tx_frame(b), 0);
    double sum_sq = 0.0;
    for (uint32_t at = 0; at < u->body_bytes; at += room) {
        uint32_t n = u->body_bytes - at < room ? u->body_bytes - at : room;
        sum_sq += stage_deltas(b, at, n);
        crc = ftte_wire_crc32(crc, b->mem.stage, n);
    }
    u->body_crc = crc;
    u->delta_mean_sq = (float)(sum_sq / (double)task.param_count);

    b->state = FTTE_WIRE_STATE_SENDING;
    b->sending = 1;
    b->tx_offset = 0;
    send_next(b, FTTE_MSG_UPDATE);
}
