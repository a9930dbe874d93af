/*
 * FTTE board core: set-up, the link (frames in, frames out) and the dispatch of every message.
 * Transfers from the host are in transfers.c, the task runner and the UPDATE in task.c.
 */
#include <string.h>

#include "board_internal.h"
#include "ftte_kernels.h"

/* ---- helpers ------------------------------------------------------------------------------ */

uint32_t board_now(ftte_board *b) { return b->port.millis(b->port.ctx); }

uint32_t board_tx_frame(const ftte_board *b) {
    return b->host_max_frame < b->mem.max_frame ? b->host_max_frame : b->mem.max_frame;
}

void board_le_words_in_place(void *p, uint32_t n) {
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    (void)p, (void)n; /* already native */
#else
    uint8_t *q = (uint8_t *)p;
    for (uint32_t i = 0; i < n; i++, q += 4) {
        uint32_t u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
        memcpy(q, &u, 4);
    }
#endif
}

void board_send(ftte_board *b, const ftte_msg *m, uint16_t seq) {
    int32_t n = ftte_wire_encode(m, 0, seq, NULL, b->mem.tx, FTTE_BOARD_TX_BYTES(b->mem.max_frame));
    if (n > 0) (void)b->port.write(b->port.ctx, b->mem.tx, (uint32_t)n);
}

void board_send_error(ftte_board *b, uint16_t seq, uint8_t type, int32_t status, uint32_t detail) {
    ftte_msg m;
    memset(&m, 0, sizeof m);
    m.type = FTTE_MSG_ERROR;
    m.u.error.frame_seq = seq;
    m.u.error.frame_type = type;
    m.u.error.code = (uint8_t)(status < 0 ? -status : status);
    m.u.error.detail = detail;
    board_send(b, &m, b->tx_seq++);
}

void board_send_ack(ftte_board *b, uint16_t seq, uint8_t type, uint32_t received) {
    ftte_msg m;
    memset(&m, 0, sizeof m);
    m.type = FTTE_MSG_ACK;
    m.u.ack.acked_seq = seq;
    m.u.ack.acked_type = type;
    m.u.ack.received = received;
    b->last_ack = m.u.ack;
    b->acked_valid = 1;
    board_send(b, &m, b->tx_seq++);
}

uint32_t ftte_board_weights_crc(ftte_board *b) {
    if (!b->weights_crc_valid) {
        uint8_t le[64];
        uint32_t crc = 0;
        for (uint32_t i = 0; i < b->mem.weight_count; i += 16) {
            uint32_t n = b->mem.weight_count - i < 16 ? b->mem.weight_count - i : 16;
            ftte_wire_f32_to_le(b->mem.weights + i, n, le);
            crc = ftte_wire_crc32(crc, le, 4 * n);
        }
        b->weights_crc = crc;
        b->weights_crc_valid = 1;
    }
    return b->weights_crc;
}

void board_load_flash_weights(ftte_board *b) {
    float *w = b->mem.weights; /* the flat order of PROVISION, as the RAM layer table */
    for (int32_t i = 0; i < b->flash_model->num_layers; i++) {
        const ftte_layer *src = &b->flash_model->layers[i];
        if (src->weights != NULL) {
            size_t n = (size_t)(src->out.c * ftte_layer_row_length(src));
            memcpy(w, src->weights, n * sizeof(float));
            w += n;
        }
        if (src->bias != NULL) {
            memcpy(w, src->bias, (size_t)src->out.c * sizeof(float));
            w += src->out.c;
        }
    }
    b->weights_valid = 1;
    b->weights_crc_valid = 0;
}

/* ---- set-up ------------------------------------------------------------------------------- */

static uint32_t model_parameters(const ftte_model *model) {
    uint32_t count = 0;
    for (int32_t i = 0; i < model->num_layers; i++) {
        const ftte_layer *l = &model->layers[i];
        if (l->weights != NULL) count += (uint32_t)(l->out.c * ftte_layer_row_length(l));
        if (l->bias != NULL) count += (uint32_t)l->out.c;
    }
    return count;
}

ftte_wire_status ftte_board_init(ftte_board *b, const ftte_board_config *config,
                                 const ftte_port *port, const ftte_board_memory *mem,
                                 const ftte_model *model) {
    if (b == NULL || config == NULL || port == NULL || mem == NULL || model == NULL)
        return FTTE_WIRE_ERR_ARG;
    if (port->read == NULL || port->write == NULL || port->millis == NULL) return FTTE_WIRE_ERR_ARG;
    if (mem->arena == NULL || mem->store == NULL || mem->weights == NULL || mem->rx == NULL ||
        mem->tx == NULL || mem->stage == NULL)
        return FTTE_WIRE_ERR_ARG;
    if (((uintptr_t)mem->arena & 3u) != 0 || ((uintptr_t)mem->store & 3u) != 0)
        return FTTE_WIRE_ERR_ARG;
    if (mem->max_frame < FTTE_WIRE_MIN_FRAME || mem->max_frame > FTTE_WIRE_MAX_FRAME)
        return FTTE_WIRE_ERR_ARG;
    if (model->layers == NULL || model->num_layers < 1 || model->num_layers > FTTE_MAX_LAYERS ||
        ftte_model_validate(model) != FTTE_OK)
        return FTTE_WIRE_ERR_MODEL_MISMATCH;
    if (model_parameters(model) != mem->weight_count) return FTTE_WIRE_ERR_ARG;

    memset(b, 0, sizeof *b);
    b->port = *port;
    b->config = *config;
    b->mem = *mem;
    b->arena_budget = (config->ram_budget == 0 || config->ram_budget > mem->arena_bytes)
                          ? mem->arena_bytes : config->ram_budget;
    b->arena_budget &= ~3u;

    /* The RAM layer table: the compiled-in layout over the weights in RAM, in the flat order
     * of PROVISION (per weighted layer its weights, then its bias). */
    b->flash_model = model;
    float *w = mem->weights;
    for (int32_t i = 0; i < model->num_layers; i++) {
        const ftte_layer *src = &model->layers[i];
        b->layers[i] = *src;
        if (src->weights != NULL) {
            b->layers[i].weights = w;
            w += src->out.c * ftte_layer_row_length(src);
        }
        if (src->bias != NULL) {
            b->layers[i].bias = w;
            w += src->out.c;
        }
    }
    b->model.layers = b->layers;
    b->model.num_layers = model->num_layers;
    board_load_flash_weights(b);
    b->layout_hash = ftte_model_layout_hash(&b->model);
    b->input_features = (uint32_t)ftte_shape_size(b->layers[0].in);
    b->classes = (uint32_t)b->layers[model->num_layers - 1].out.c;
    if (b->classes > FTTE_BOARD_MAX_CLASSES) return FTTE_WIRE_ERR_NO_MEMORY;

    /* The sample store: features of every sample, then the labels. */
    b->sample_capacity = mem->store_bytes / (4u * b->input_features + 4u);
    b->samples = (float *)mem->store;
    b->labels = (int32_t *)(void *)(b->samples + (size_t)b->sample_capacity * b->input_features);

    if (ftte_wire_decoder_init(&b->decoder, mem->rx, mem->max_frame) != FTTE_WIRE_OK)
        return FTTE_WIRE_ERR_ARG;
    b->host_max_frame = FTTE_WIRE_MIN_FRAME; /* until a HELLO_REQUEST says more */
    b->state = FTTE_WIRE_STATE_IDLE;
    b->boot_ms = board_now(b);
    return FTTE_WIRE_OK;
}

/* ---- HELLO, PONG ---------------------------------------------------------------------------- */

static void send_hello(ftte_board *b) {
    ftte_msg m;
    memset(&m, 0, sizeof m);
    m.type = FTTE_MSG_HELLO;
    ftte_msg_hello *h = &m.u.hello;
    memcpy(h->board_id, b->config.board_id, FTTE_WIRE_BOARD_ID_SIZE);
    h->firmware_version = FTTE_BOARD_FIRMWARE_VERSION;
    h->ram_budget = b->arena_budget;
    h->flash_size = b->config.flash_size;
    h->cpu_hz = b->config.cpu_hz;
    h->layout_hash = b->layout_hash;
    h->weights_crc = b->weights_valid ? ftte_board_weights_crc(b) : 0;
    h->data_capacity = b->sample_capacity * (4u * b->input_features + 4u);
    h->max_frame = (uint16_t)b->mem.max_frame;
    h->wire_version = FTTE_WIRE_VERSION;
    h->caps = (uint8_t)((b->weights_valid ? FTTE_WIRE_CAP_WEIGHTS : 0) |
                        (b->has_storage && !b->save_failed ? FTTE_WIRE_CAP_PERSIST : 0));
    board_send(b, &m, b->tx_seq++);
}

void ftte_board_start(ftte_board *b) {
    const uint8_t flush = 0;
    (void)b->port.write(b->port.ctx, &flush, 1);
    send_hello(b);
}

/* HELLO_REQUEST: a new session. Whatever was in progress is abandoned (a running task stops at
 * its next step and sends no UPDATE); duplicates are forgotten. */
static void on_hello_request(ftte_board *b, const ftte_msg_hello_request *r) {
    transfer_abandon(b);
    if (b->state == FTTE_WIRE_STATE_TRAINING) b->abort = 1;
    b->task_ready = 0;
    b->sending = 0;
    b->acked_valid = 0;
    b->state = FTTE_WIRE_STATE_IDLE;
    b->host_max_frame = r->max_frame;
    send_hello(b);
}

static void on_ping(ftte_board *b, const ftte_msg_ping *p) {
    ftte_msg m;
    memset(&m, 0, sizeof m);
    m.type = FTTE_MSG_PONG;
    m.u.pong.nonce = p->nonce;
    m.u.pong.uptime_ms = board_now(b) - b->boot_ms;
    m.u.pong.state = b->state;
    m.u.pong.progress = b->state == FTTE_WIRE_STATE_TRAINING ? b->progress : 0;
    board_send(b, &m, b->tx_seq++);
}

/* ---- dispatch ------------------------------------------------------------------------------ */

/* ACK, ERROR, HELLO and PONG are never answered (an answer to an answer could loop). */
static int answerable(uint8_t type) {
    return type != FTTE_MSG_ACK && type != FTTE_MSG_ERROR && type != FTTE_MSG_HELLO &&
           type != FTTE_MSG_PONG;
}

static void handle_frame(ftte_board *b, const ftte_wire_frame *f) {
    ftte_msg m;
    ftte_wire_status st = ftte_wire_decode(f, &m);
    if (st != FTTE_WIRE_OK) {
        if (answerable(f->type)) board_send_error(b, f->seq, f->type, st, 0);
        return;
    }
    if (f->flags & FTTE_WIRE_FLAG_AUTH) { /* no MAC in this firmware: a tag cannot be checked */
        if (answerable(m.type)) board_send_error(b, f->seq, m.type, FTTE_WIRE_ERR_AUTH, 0);
        return;
    }
    switch (m.type) {
    case FTTE_MSG_HELLO_REQUEST: on_hello_request(b, &m.u.hello_request); return;
    case FTTE_MSG_PING: on_ping(b, &m.u.ping); return;
    case FTTE_MSG_ACK: if (b->sending) update_on_ack(b, &m.u.ack); return;
    case FTTE_MSG_ERROR: if (b->sending) update_on_error(b, &m.u.error); return;
    case FTTE_MSG_HELLO:
    case FTTE_MSG_PONG: return;
    case FTTE_MSG_UPDATE:
    case FTTE_MSG_UPDATE_CHUNK: /* the board's own direction */
        board_send_error(b, f->seq, m.type, FTTE_WIRE_ERR_UNEXPECTED, 0);
        return;
    default: break;
    }
    /* A transfer frame (PROVISION, TASK, DATA or one of their chunks). The one acknowledged
     * last, again: its ACK was lost; acknowledge it again, apply nothing. */
    if (b->acked_valid && f->seq == b->last_ack.acked_seq && m.type == b->last_ack.acked_type) {
        board_send_ack(b, f->seq, m.type, b->last_ack.received);
        return;
    }
    if (b->state == FTTE_WIRE_STATE_TRAINING || b->state == FTTE_WIRE_STATE_SENDING) {
        board_send_error(b, f->seq, m.type, FTTE_WIRE_ERR_BUSY, 0);
        return;
    }
    if (ftte_msg_type_is_transfer(m.type))
        transfer_header(b, f, &m);
    else
        transfer_chunk(b, f, &m);
}

int32_t board_service(ftte_board *b, uint32_t timeout_ms) {
    uint8_t buf[64];
    int32_t got = b->port.read(b->port.ctx, buf, sizeof buf, timeout_ms);
    if (got < 0) return got;
    size_t at = 0;
    while (at < (size_t)got) {
        size_t used = 0;
        ftte_wire_frame f;
        int32_t r = ftte_wire_decoder_feed(&b->decoder, buf + at, (size_t)got - at, &used, &f);
        at += used;
        if (r > 0)
            handle_frame(b, &f);
        else if (r < 0) /* a frame the decoder dropped: corrupt, oversized, unknown type */
            board_send_error(b, 0, 0, r, 0);
    }
    return 0;
}

int32_t ftte_board_poll(ftte_board *b, uint32_t timeout_ms) {
    int32_t r = board_service(b, timeout_ms);
    if (r < 0) return r;
    if (b->save_pending) storage_save(b);
    if (b->task_ready) task_run(b);
    if (b->sending) update_check_timeout(b);
    return 0;
}

void ftte_board_run(ftte_board *b) {
    ftte_board_start(b);
    while (ftte_board_poll(b, 20) >= 0) {
    }
}
