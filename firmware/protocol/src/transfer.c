/*
 * Transfers: how many body bytes a chunk carries, the receiver's reassembly state (offset and
 * running CRC-32 checks), and explicit little-endian conversion of the body arrays.
 */
#include "wire_internal.h"

int32_t ftte_wire_chunk_capacity(uint32_t max_frame, uint8_t flags) {
    if (max_frame < FTTE_WIRE_MIN_FRAME) return FTTE_WIRE_ERR_ARG;
    if (flags & ~FTTE_WIRE_FLAGS_KNOWN) return FTTE_WIRE_ERR_BAD_HEADER;
    uint32_t frame = max_frame > FTTE_WIRE_MAX_FRAME ? FTTE_WIRE_MAX_FRAME : max_frame;
    uint32_t payload = frame - FTTE_WIRE_OVERHEAD - ((flags & FTTE_WIRE_FLAG_AUTH) ? FTTE_WIRE_TAG_SIZE : 0);
    if (payload > FTTE_WIRE_MAX_PAYLOAD) payload = FTTE_WIRE_MAX_PAYLOAD;
    return (int32_t)((payload - FTTE_MSG_CHUNK_HEADER_SIZE) & ~3u);
}

static uint32_t header_body_bytes(const ftte_msg *h, uint32_t *crc) {
    switch (h->type) {
    case FTTE_MSG_PROVISION: *crc = h->u.provision.body_crc; return h->u.provision.body_bytes;
    case FTTE_MSG_TASK: *crc = h->u.task.body_crc; return h->u.task.body_bytes;
    case FTTE_MSG_UPDATE: *crc = h->u.update.body_crc; return h->u.update.body_bytes;
    default: *crc = h->u.data.body_crc; return h->u.data.body_bytes; /* DATA */
    }
}

ftte_wire_status ftte_wire_rx_begin(ftte_wire_rx_transfer *t, const ftte_msg *header) {
    if (t == NULL || header == NULL || !ftte_msg_type_is_transfer(header->type)) return FTTE_WIRE_ERR_ARG;
    t->type = header->type;
    t->total = header_body_bytes(header, &t->expected_crc);
    t->received = 0;
    t->crc = 0;
    return FTTE_WIRE_OK;
}

int32_t ftte_wire_rx_chunk(ftte_wire_rx_transfer *t, const ftte_msg *chunk) {
    if (t == NULL || chunk == NULL) return FTTE_WIRE_ERR_ARG;
    if (t->type == 0 || chunk->type != t->type + 1) return FTTE_WIRE_ERR_UNEXPECTED;
    const ftte_msg_chunk *c = &chunk->u.chunk;
    if (c->data == NULL || c->len == 0) return FTTE_WIRE_ERR_ARG;
    if (c->offset != t->received) return FTTE_WIRE_ERR_OUT_OF_ORDER;
    if (c->len > t->total - t->received) return FTTE_WIRE_ERR_TOO_LARGE;
    uint32_t crc = ftte_wire_crc32(t->crc, c->data, c->len);
    uint32_t received = t->received + c->len;
    if (received == t->total && crc != t->expected_crc) return FTTE_WIRE_ERR_BAD_HASH;
    t->crc = crc;
    t->received = received;
    return received == t->total;
}

uint32_t ftte_wire_task_values_offset(const ftte_msg_task *task) {
    return task == NULL ? 0 : (task->selection_bytes + 3u) & ~3u;
}

void ftte_wire_f32_to_le(const float *src, size_t n, uint8_t *dst) {
    if (src == NULL || dst == NULL) return;
    for (size_t i = 0; i < n; i++) wire_put_f32(dst + 4 * i, src[i]);
}

void ftte_wire_f32_from_le(const uint8_t *src, size_t n, float *dst) {
    if (src == NULL || dst == NULL) return;
    for (size_t i = 0; i < n; i++) dst[i] = wire_get_f32(src + 4 * i);
}

void ftte_wire_i32_to_le(const int32_t *src, size_t n, uint8_t *dst) {
    if (src == NULL || dst == NULL) return;
    for (size_t i = 0; i < n; i++) wire_put_u32(dst + 4 * i, (uint32_t)src[i]);
}

void ftte_wire_i32_from_le(const uint8_t *src, size_t n, int32_t *dst) {
    if (src == NULL || dst == NULL) return;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = wire_get_u32(src + 4 * i);
        dst[i] = u <= (uint32_t)INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1; /* two's complement */
    }
}
