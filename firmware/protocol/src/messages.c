/*
 * Per-message pack and unpack: field by field, little endian, at the offsets documented in
 * ftte_wire.h. Pack and unpack apply the same checks, so whatever packs also unpacks and
 * re-packs to the same bytes (the golden frames rely on it).
 */
#include "wire_internal.h"

#define CHECK(cond, status)                                                                        \
    do {                                                                                           \
        if (!(cond)) return (status);                                                              \
    } while (0)

/* Common prologue of pack: arguments, and room for `size` bytes. */
#define PACK_BEGIN(m, out, cap, size)                                                              \
    CHECK((m) != NULL && (out) != NULL, FTTE_WIRE_ERR_ARG);                                        \
    CHECK((cap) >= (size), FTTE_WIRE_ERR_TOO_LARGE)

/* Common prologue of unpack: arguments, and exactly `size` bytes. */
#define UNPACK_BEGIN(p, len, m, size)                                                              \
    CHECK((p) != NULL && (m) != NULL, FTTE_WIRE_ERR_ARG);                                          \
    CHECK((len) == (size), FTTE_WIRE_ERR_BAD_LENGTH)

/* ---- field checks shared by pack and unpack ------------------------------------------------ */

static ftte_wire_status check_hello_request(const ftte_msg_hello_request *m) {
    CHECK(m->max_frame >= FTTE_WIRE_MIN_FRAME, FTTE_WIRE_ERR_BAD_FIELD);
    CHECK(m->wire_version >= 1, FTTE_WIRE_ERR_BAD_FIELD);
    return FTTE_WIRE_OK;
}

static ftte_wire_status check_hello(const ftte_msg_hello *m) {
    CHECK(m->max_frame >= FTTE_WIRE_MIN_FRAME, FTTE_WIRE_ERR_BAD_FIELD);
    CHECK(m->wire_version >= 1, FTTE_WIRE_ERR_BAD_FIELD);
    CHECK((m->caps & ~FTTE_WIRE_CAPS_KNOWN) == 0, FTTE_WIRE_ERR_BAD_FIELD);
    return FTTE_WIRE_OK;
}

static ftte_wire_status check_pong(const ftte_msg_pong *m) {
    CHECK(m->state <= FTTE_WIRE_STATE_SENDING, FTTE_WIRE_ERR_BAD_FIELD);
    CHECK(m->progress <= 1000, FTTE_WIRE_ERR_BAD_FIELD);
    return FTTE_WIRE_OK;
}

static ftte_wire_status check_ack(const ftte_msg_ack *m) {
    CHECK(ftte_msg_type_known(m->acked_type), FTTE_WIRE_ERR_BAD_FIELD);
    return FTTE_WIRE_OK;
}

static ftte_wire_status check_error(const ftte_msg_error *m) {
    CHECK(m->code != 0, FTTE_WIRE_ERR_BAD_FIELD);
    CHECK(m->frame_type == 0 || ftte_msg_type_known(m->frame_type), FTTE_WIRE_ERR_BAD_FIELD);
    return FTTE_WIRE_OK;
}

static ftte_wire_status check_provision(const ftte_msg_provision *m) {
    CHECK(m->body_bytes > 0 && m->body_bytes % 4 == 0, FTTE_WIRE_ERR_BAD_FIELD);
    return FTTE_WIRE_OK;
}

static ftte_wire_status check_task(const ftte_msg_task *m) {
    CHECK(wire_f32_finite(m->learning_rate) && wire_f32_finite(m->momentum), FTTE_WIRE_ERR_BAD_FIELD);
    CHECK(m->batch_size >= 1, FTTE_WIRE_ERR_BAD_FIELD);
    CHECK(m->local_steps > 0 || m->local_epochs > 0, FTTE_WIRE_ERR_BAD_FIELD);
    CHECK(m->selection_bytes >= 1 && m->selection_bytes <= FTTE_WIRE_MAX_SELECTION_BYTES,
          FTTE_WIRE_ERR_BAD_FIELD);
    CHECK(m->param_count >= 1, FTTE_WIRE_ERR_BAD_FIELD);
    uint64_t body = (((uint64_t)m->selection_bytes + 3u) & ~(uint64_t)3u) + 4u * (uint64_t)m->param_count;
    CHECK(body == m->body_bytes, FTTE_WIRE_ERR_BAD_FIELD);
    return FTTE_WIRE_OK;
}

static ftte_wire_status check_update(const ftte_msg_update *m) {
    CHECK(m->param_count >= 1, FTTE_WIRE_ERR_BAD_FIELD);
    CHECK(4u * (uint64_t)m->param_count == m->body_bytes, FTTE_WIRE_ERR_BAD_FIELD);
    return FTTE_WIRE_OK;
}

static ftte_wire_status check_data(const ftte_msg_data *m) {
    CHECK(m->sample_count >= 1 && m->features >= 1, FTTE_WIRE_ERR_BAD_FIELD);
    uint64_t body = (uint64_t)m->sample_count * (4u * (uint64_t)m->features + 4u);
    CHECK(body == m->body_bytes, FTTE_WIRE_ERR_BAD_FIELD);
    return FTTE_WIRE_OK;
}

/* ---- HELLO_REQUEST ------------------------------------------------------------------------- */

int32_t ftte_msg_hello_request_pack(const ftte_msg_hello_request *m, uint8_t *out, size_t cap) {
    PACK_BEGIN(m, out, cap, FTTE_MSG_HELLO_REQUEST_SIZE);
    ftte_wire_status st = check_hello_request(m);
    if (st != FTTE_WIRE_OK) return st;
    wire_put_u16(out + 0, m->max_frame);
    out[2] = m->wire_version;
    out[3] = 0;
    return FTTE_MSG_HELLO_REQUEST_SIZE;
}

ftte_wire_status ftte_msg_hello_request_unpack(const uint8_t *p, size_t len, ftte_msg_hello_request *m) {
    UNPACK_BEGIN(p, len, m, FTTE_MSG_HELLO_REQUEST_SIZE);
    CHECK(p[3] == 0, FTTE_WIRE_ERR_BAD_FIELD);
    ftte_msg_hello_request v;
    v.max_frame = wire_get_u16(p + 0);
    v.wire_version = p[2];
    ftte_wire_status st = check_hello_request(&v);
    if (st == FTTE_WIRE_OK) *m = v;
    return st;
}

/* ---- HELLO --------------------------------------------------------------------------------- */

int32_t ftte_msg_hello_pack(const ftte_msg_hello *m, uint8_t *out, size_t cap) {
    PACK_BEGIN(m, out, cap, FTTE_MSG_HELLO_SIZE);
    ftte_wire_status st = check_hello(m);
    if (st != FTTE_WIRE_OK) return st;
    for (int i = 0; i < FTTE_WIRE_BOARD_ID_SIZE; i++) out[i] = m->board_id[i];
    wire_put_u32(out + 8, m->firmware_version);
    wire_put_u32(out + 12, m->ram_budget);
    wire_put_u32(out + 16, m->flash_size);
    wire_put_u32(out + 20, m->cpu_hz);
    wire_put_u32(out + 24, m->layout_hash);
    wire_put_u32(out + 28, m->weights_crc);
    wire_put_u32(out + 32, m->data_capacity);
    wire_put_u16(out + 36, m->max_frame);
    out[38] = m->wire_version;
    out[39] = m->caps;
    return FTTE_MSG_HELLO_SIZE;
}

ftte_wire_status ftte_msg_hello_unpack(const uint8_t *p, size_t len, ftte_msg_hello *m) {
    UNPACK_BEGIN(p, len, m, FTTE_MSG_HELLO_SIZE);
    ftte_msg_hello v;
    for (int i = 0; i < FTTE_WIRE_BOARD_ID_SIZE; i++) v.board_id[i] = p[i];
    v.firmware_version = wire_get_u32(p + 8);
    v.ram_budget = wire_get_u32(p + 12);
    v.flash_size = wire_get_u32(p + 16);
    v.cpu_hz = wire_get_u32(p + 20);
    v.layout_hash = wire_get_u32(p + 24);
    v.weights_crc = wire_get_u32(p + 28);
    v.data_capacity = wire_get_u32(p + 32);
    v.max_frame = wire_get_u16(p + 36);
    v.wire_version = p[38];
    v.caps = p[39];
    ftte_wire_status st = check_hello(&v);
    if (st == FTTE_WIRE_OK) *m = v;
    return st;
}

/* ---- PING, PONG ---------------------------------------------------------------------------- */

int32_t ftte_msg_ping_pack(const ftte_msg_ping *m, uint8_t *out, size_t cap) {
    PACK_BEGIN(m, out, cap, FTTE_MSG_PING_SIZE);
    wire_put_u32(out, m->nonce);
    return FTTE_MSG_PING_SIZE;
}

ftte_wire_status ftte_msg_ping_unpack(const uint8_t *p, size_t len, ftte_msg_ping *m) {
    UNPACK_BEGIN(p, len, m, FTTE_MSG_PING_SIZE);
    m->nonce = wire_get_u32(p);
    return FTTE_WIRE_OK;
}

int32_t ftte_msg_pong_pack(const ftte_msg_pong *m, uint8_t *out, size_t cap) {
    PACK_BEGIN(m, out, cap, FTTE_MSG_PONG_SIZE);
    ftte_wire_status st = check_pong(m);
    if (st != FTTE_WIRE_OK) return st;
    wire_put_u32(out + 0, m->nonce);
    wire_put_u32(out + 4, m->uptime_ms);
    out[8] = m->state;
    out[9] = 0;
    wire_put_u16(out + 10, m->progress);
    return FTTE_MSG_PONG_SIZE;
}

ftte_wire_status ftte_msg_pong_unpack(const uint8_t *p, size_t len, ftte_msg_pong *m) {
    UNPACK_BEGIN(p, len, m, FTTE_MSG_PONG_SIZE);
    CHECK(p[9] == 0, FTTE_WIRE_ERR_BAD_FIELD);
    ftte_msg_pong v;
    v.nonce = wire_get_u32(p + 0);
    v.uptime_ms = wire_get_u32(p + 4);
    v.state = p[8];
    v.progress = wire_get_u16(p + 10);
    ftte_wire_status st = check_pong(&v);
    if (st == FTTE_WIRE_OK) *m = v;
    return st;
}

/* ---- ACK, ERROR ---------------------------------------------------------------------------- */

int32_t ftte_msg_ack_pack(const ftte_msg_ack *m, uint8_t *out, size_t cap) {
    PACK_BEGIN(m, out, cap, FTTE_MSG_ACK_SIZE);
    ftte_wire_status st = check_ack(m);
    if (st != FTTE_WIRE_OK) return st;
    wire_put_u16(out + 0, m->acked_seq);
    out[2] = m->acked_type;
    out[3] = 0;
    wire_put_u32(out + 4, m->received);
    return FTTE_MSG_ACK_SIZE;
}

ftte_wire_status ftte_msg_ack_unpack(const uint8_t *p, size_t len, ftte_msg_ack *m) {
    UNPACK_BEGIN(p, len, m, FTTE_MSG_ACK_SIZE);
    CHECK(p[3] == 0, FTTE_WIRE_ERR_BAD_FIELD);
    ftte_msg_ack v;
    v.acked_seq = wire_get_u16(p + 0);
    v.acked_type = p[2];
    v.received = wire_get_u32(p + 4);
    ftte_wire_status st = check_ack(&v);
    if (st == FTTE_WIRE_OK) *m = v;
    return st;
}

int32_t ftte_msg_error_pack(const ftte_msg_error *m, uint8_t *out, size_t cap) {
    PACK_BEGIN(m, out, cap, FTTE_MSG_ERROR_SIZE);
    ftte_wire_status st = check_error(m);
    if (st != FTTE_WIRE_OK) return st;
    wire_put_u16(out + 0, m->frame_seq);
    out[2] = m->frame_type;
    out[3] = m->code;
    wire_put_u32(out + 4, m->detail);
    return FTTE_MSG_ERROR_SIZE;
}

ftte_wire_status ftte_msg_error_unpack(const uint8_t *p, size_t len, ftte_msg_error *m) {
    UNPACK_BEGIN(p, len, m, FTTE_MSG_ERROR_SIZE);
    ftte_msg_error v;
    v.frame_seq = wire_get_u16(p + 0);
    v.frame_type = p[2];
    v.code = p[3];
    v.detail = wire_get_u32(p + 4);
    ftte_wire_status st = check_error(&v);
    if (st == FTTE_WIRE_OK) *m = v;
    return st;
}

/* ---- PROVISION ----------------------------------------------------------------------------- */

int32_t ftte_msg_provision_pack(const ftte_msg_provision *m, uint8_t *out, size_t cap) {
    PACK_BEGIN(m, out, cap, FTTE_MSG_PROVISION_SIZE);
    ftte_wire_status st = check_provision(m);
    if (st != FTTE_WIRE_OK) return st;
    wire_put_u32(out + 0, m->layout_hash);
    wire_put_u32(out + 4, m->body_bytes);
    wire_put_u32(out + 8, m->body_crc);
    return FTTE_MSG_PROVISION_SIZE;
}

ftte_wire_status ftte_msg_provision_unpack(const uint8_t *p, size_t len, ftte_msg_provision *m) {
    UNPACK_BEGIN(p, len, m, FTTE_MSG_PROVISION_SIZE);
    ftte_msg_provision v;
    v.layout_hash = wire_get_u32(p + 0);
    v.body_bytes = wire_get_u32(p + 4);
    v.body_crc = wire_get_u32(p + 8);
    ftte_wire_status st = check_provision(&v);
    if (st == FTTE_WIRE_OK) *m = v;
    return st;
}

/* ---- TASK ---------------------------------------------------------------------------------- */

int32_t ftte_msg_task_pack(const ftte_msg_task *m, uint8_t *out, size_t cap) {
    PACK_BEGIN(m, out, cap, FTTE_MSG_TASK_SIZE);
    ftte_wire_status st = check_task(m);
    if (st != FTTE_WIRE_OK) return st;
    wire_put_u32(out + 0, m->task_id);
    wire_put_u32(out + 4, m->model_version);
    wire_put_u32(out + 8, m->layout_hash);
    wire_put_f32(out + 12, m->learning_rate);
    wire_put_f32(out + 16, m->momentum);
    wire_put_u32(out + 20, m->local_steps);
    wire_put_u16(out + 24, m->local_epochs);
    wire_put_u16(out + 26, m->batch_size);
    wire_put_u32(out + 28, m->selection_bytes);
    wire_put_u32(out + 32, m->param_count);
    wire_put_u32(out + 36, m->body_bytes);
    wire_put_u32(out + 40, m->body_crc);
    return FTTE_MSG_TASK_SIZE;
}

ftte_wire_status ftte_msg_task_unpack(const uint8_t *p, size_t len, ftte_msg_task *m) {
    UNPACK_BEGIN(p, len, m, FTTE_MSG_TASK_SIZE);
    ftte_msg_task v;
    v.task_id = wire_get_u32(p + 0);
    v.model_version = wire_get_u32(p + 4);
    v.layout_hash = wire_get_u32(p + 8);
    v.learning_rate = wire_get_f32(p + 12);
    v.momentum = wire_get_f32(p + 16);
    v.local_steps = wire_get_u32(p + 20);
    v.local_epochs = wire_get_u16(p + 24);
    v.batch_size = wire_get_u16(p + 26);
    v.selection_bytes = wire_get_u32(p + 28);
    v.param_count = wire_get_u32(p + 32);
    v.body_bytes = wire_get_u32(p + 36);
    v.body_crc = wire_get_u32(p + 40);
    ftte_wire_status st = check_task(&v);
    if (st == FTTE_WIRE_OK) *m = v;
    return st;
}

/* ---- UPDATE -------------------------------------------------------------------------------- */

int32_t ftte_msg_update_pack(const ftte_msg_update *m, uint8_t *out, size_t cap) {
    PACK_BEGIN(m, out, cap, FTTE_MSG_UPDATE_SIZE);
    ftte_wire_status st = check_update(m);
    if (st != FTTE_WIRE_OK) return st;
    wire_put_u32(out + 0, m->task_id);
    wire_put_u32(out + 4, m->base_version);
    wire_put_u32(out + 8, m->samples_used);
    wire_put_f32(out + 12, m->loss_before);
    wire_put_f32(out + 16, m->loss_after);
    wire_put_f32(out + 20, m->delta_mean_sq);
    wire_put_u32(out + 24, m->train_ms);
    wire_put_u32(out + 28, m->param_count);
    wire_put_u32(out + 32, m->body_bytes);
    wire_put_u32(out + 36, m->body_crc);
    return FTTE_MSG_UPDATE_SIZE;
}

ftte_wire_status ftte_msg_update_unpack(const uint8_t *p, size_t len, ftte_msg_update *m) {
    UNPACK_BEGIN(p, len, m, FTTE_MSG_UPDATE_SIZE);
    ftte_msg_update v;
    v.task_id = wire_get_u32(p + 0);
    v.base_version = wire_get_u32(p + 4);
    v.samples_used = wire_get_u32(p + 8);
    v.loss_before = wire_get_f32(p + 12);
    v.loss_after = wire_get_f32(p + 16);
    v.delta_mean_sq = wire_get_f32(p + 20);
    v.train_ms = wire_get_u32(p + 24);
    v.param_count = wire_get_u32(p + 28);
    v.body_bytes = wire_get_u32(p + 32);
    v.body_crc = wire_get_u32(p + 36);
    ftte_wire_status st = check_update(&v);
    if (st == FTTE_WIRE_OK) *m = v;
    return st;
}

/* ---- DATA ---------------------------------------------------------------------------------- */

int32_t ftte_msg_data_pack(const ftte_msg_data *m, uint8_t *out, size_t cap) {
    PACK_BEGIN(m, out, cap, FTTE_MSG_DATA_SIZE);
    ftte_wire_status st = check_data(m);
    if (st != FTTE_WIRE_OK) return st;
    wire_put_u32(out + 0, m->first_sample);
    wire_put_u32(out + 4, m->sample_count);
    wire_put_u32(out + 8, m->features);
    wire_put_u32(out + 12, m->body_bytes);
    wire_put_u32(out + 16, m->body_crc);
    return FTTE_MSG_DATA_SIZE;
}

ftte_wire_status ftte_msg_data_unpack(const uint8_t *p, size_t len, ftte_msg_data *m) {
    UNPACK_BEGIN(p, len, m, FTTE_MSG_DATA_SIZE);
    ftte_msg_data v;
    v.first_sample = wire_get_u32(p + 0);
    v.sample_count = wire_get_u32(p + 4);
    v.features = wire_get_u32(p + 8);
    v.body_bytes = wire_get_u32(p + 12);
    v.body_crc = wire_get_u32(p + 16);
    ftte_wire_status st = check_data(&v);
    if (st == FTTE_WIRE_OK) *m = v;
    return st;
}

/* ---- chunks -------------------------------------------------------------------------------- */

static ftte_wire_status check_chunk(const ftte_msg_chunk *m) {
    CHECK(m->len >= 1 && m->data != NULL, FTTE_WIRE_ERR_BAD_FIELD);
    CHECK(m->len <= FTTE_WIRE_MAX_PAYLOAD - FTTE_MSG_CHUNK_HEADER_SIZE, FTTE_WIRE_ERR_TOO_LARGE);
    return FTTE_WIRE_OK;
}

int32_t ftte_msg_chunk_pack(const ftte_msg_chunk *m, uint8_t *out, size_t cap) {
    CHECK(m != NULL && out != NULL, FTTE_WIRE_ERR_ARG);
    ftte_wire_status st = check_chunk(m);
    if (st != FTTE_WIRE_OK) return st;
    CHECK(cap >= FTTE_MSG_CHUNK_HEADER_SIZE + (size_t)m->len, FTTE_WIRE_ERR_TOO_LARGE);
    wire_put_u32(out, m->offset);
    memmove(out + FTTE_MSG_CHUNK_HEADER_SIZE, m->data, m->len);
    return (int32_t)(FTTE_MSG_CHUNK_HEADER_SIZE + m->len);
}

ftte_wire_status ftte_msg_chunk_unpack(const uint8_t *p, size_t len, ftte_msg_chunk *m) {
    CHECK(p != NULL && m != NULL, FTTE_WIRE_ERR_ARG);
    CHECK(len > FTTE_MSG_CHUNK_HEADER_SIZE, FTTE_WIRE_ERR_BAD_LENGTH);
    CHECK(len - FTTE_MSG_CHUNK_HEADER_SIZE <= FTTE_WIRE_MAX_PAYLOAD - FTTE_MSG_CHUNK_HEADER_SIZE,
          FTTE_WIRE_ERR_TOO_LARGE);
    m->offset = wire_get_u32(p);
    m->len = (uint32_t)(len - FTTE_MSG_CHUNK_HEADER_SIZE);
    m->data = p + FTTE_MSG_CHUNK_HEADER_SIZE;
    return FTTE_WIRE_OK;
}

/* ---- any message --------------------------------------------------------------------------- */

int32_t ftte_msg_pack(const ftte_msg *m, uint8_t *out, size_t cap) {
    CHECK(m != NULL, FTTE_WIRE_ERR_ARG);
    switch (m->type) {
    case FTTE_MSG_HELLO_REQUEST: return ftte_msg_hello_request_pack(&m->u.hello_request, out, cap);
    case FTTE_MSG_HELLO: return ftte_msg_hello_pack(&m->u.hello, out, cap);
    case FTTE_MSG_PING: return ftte_msg_ping_pack(&m->u.ping, out, cap);
    case FTTE_MSG_PONG: return ftte_msg_pong_pack(&m->u.pong, out, cap);
    case FTTE_MSG_ACK: return ftte_msg_ack_pack(&m->u.ack, out, cap);
    case FTTE_MSG_ERROR: return ftte_msg_error_pack(&m->u.error, out, cap);
    case FTTE_MSG_PROVISION: return ftte_msg_provision_pack(&m->u.provision, out, cap);
    case FTTE_MSG_TASK: return ftte_msg_task_pack(&m->u.task, out, cap);
    case FTTE_MSG_UPDATE: return ftte_msg_update_pack(&m->u.update, out, cap);
    case FTTE_MSG_DATA: return ftte_msg_data_pack(&m->u.data, out, cap);
    default:
        if (ftte_msg_type_is_chunk(m->type)) return ftte_msg_chunk_pack(&m->u.chunk, out, cap);
        return FTTE_WIRE_ERR_UNKNOWN_TYPE;
    }
}

ftte_wire_status ftte_msg_unpack(uint8_t type, const uint8_t *p, size_t len, ftte_msg *m) {
    CHECK(m != NULL && (p != NULL || len == 0), FTTE_WIRE_ERR_ARG);
    static const uint8_t empty[1] = {0};
    if (p == NULL) p = empty; /* a zero-length payload: every unpack reports BAD_LENGTH */
    ftte_wire_status st;
    switch (type) {
    case FTTE_MSG_HELLO_REQUEST: st = ftte_msg_hello_request_unpack(p, len, &m->u.hello_request); break;
    case FTTE_MSG_HELLO: st = ftte_msg_hello_unpack(p, len, &m->u.hello); break;
    case FTTE_MSG_PING: st = ftte_msg_ping_unpack(p, len, &m->u.ping); break;
    case FTTE_MSG_PONG: st = ftte_msg_pong_unpack(p, len, &m->u.pong); break;
    case FTTE_MSG_ACK: st = ftte_msg_ack_unpack(p, len, &m->u.ack); break;
    case FTTE_MSG_ERROR: st = ftte_msg_error_unpack(p, len, &m->u.error); break;
    case FTTE_MSG_PROVISION: st = ftte_msg_provision_unpack(p, len, &m->u.provision); break;
    case FTTE_MSG_TASK: st = ftte_msg_task_unpack(p, len, &m->u.task); break;
    case FTTE_MSG_UPDATE: st = ftte_msg_update_unpack(p, len, &m->u.update); break;
    case FTTE_MSG_DATA: st = ftte_msg_data_unpack(p, len, &m->u.data); break;
    default:
        if (!ftte_msg_type_is_chunk(type)) return FTTE_WIRE_ERR_UNKNOWN_TYPE;
        st = ftte_msg_chunk_unpack(p, len, &m->u.chunk);
        break;
    }
    if (st == FTTE_WIRE_OK) m->type = type;
    return st;
}

/* ---- message <-> frame --------------------------------------------------------------------- */

int32_t ftte_wire_encode(const ftte_msg *m, uint8_t flags, uint16_t seq, const uint8_t *tag,
                         uint8_t *out, size_t cap) {
    CHECK(m != NULL, FTTE_WIRE_ERR_ARG);
    if (ftte_msg_type_is_chunk(m->type)) { /* stream the body bytes: no copy */
        ftte_wire_status st = check_chunk(&m->u.chunk);
        if (st != FTTE_WIRE_OK) return st;
        uint8_t head[FTTE_MSG_CHUNK_HEADER_SIZE];
        wire_put_u32(head, m->u.chunk.offset);
        return wire_frame_encode2(m->type, flags, seq, head, sizeof head, m->u.chunk.data,
                                  m->u.chunk.len, tag, out, cap);
    }
    uint8_t payload[FTTE_MSG_MAX_FIXED_SIZE];
    int32_t n = ftte_msg_pack(m, payload, sizeof payload);
    if (n < 0) return n;
    return ftte_wire_frame_encode(m->type, flags, seq, payload, (size_t)n, tag, out, cap);
}

ftte_wire_status ftte_wire_decode(const ftte_wire_frame *f, ftte_msg *m) {
    CHECK(f != NULL, FTTE_WIRE_ERR_ARG);
    return ftte_msg_unpack(f->type, f->payload, f->payload_len, m);
}
