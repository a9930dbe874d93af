/*
 * Frames: header | payload | [tag] | CRC-32, COBS-encoded and 0x00-delimited; the parser that
 * validates a decoded frame; the streaming decoder; status strings and type predicates.
 */
#include "wire_internal.h"

/* ---- status strings ------------------------------------------------------------------------ */

const char *ftte_wire_status_string(int32_t status) {
    switch (status) {
    case FTTE_WIRE_OK: return "ok";
    case FTTE_WIRE_ERR_ARG: return "bad argument to a wire codec function";
    case FTTE_WIRE_ERR_BAD_CRC: return "bad CRC: the frame's CRC-32 does not match its bytes";
    case FTTE_WIRE_ERR_BAD_COBS: return "bad COBS: the frame's byte stuffing is broken (bytes lost or altered)";
    case FTTE_WIRE_ERR_TOO_LARGE: return "too large: frame or payload exceeds the receive buffer or the limit";
    case FTTE_WIRE_ERR_TRUNCATED: return "truncated: frame shorter than its header, length field and CRC";
    case FTTE_WIRE_ERR_BAD_VERSION: return "unsupported wire version";
    case FTTE_WIRE_ERR_UNKNOWN_TYPE: return "unknown message type";
    case FTTE_WIRE_ERR_BAD_HEADER: return "bad header: reserved bits set or frame longer than its length field";
    case FTTE_WIRE_ERR_BAD_LENGTH: return "bad payload length for the message type";
    case FTTE_WIRE_ERR_BAD_FIELD: return "bad field: a value out of range or inconsistent";
    case FTTE_WIRE_ERR_OUT_OF_ORDER: return "out of order: sequence number or chunk offset not the expected one";
    case FTTE_WIRE_ERR_UNEXPECTED: return "message unexpected in the receiver's state";
    case FTTE_WIRE_ERR_MODEL_MISMATCH: return "model mismatch: layout hash differs";
    case FTTE_WIRE_ERR_NO_MEMORY: return "out of memory: does not fit the receiver's RAM or storage";
    case FTTE_WIRE_ERR_BAD_HASH: return "bad hash: transfer body CRC-32 mismatch";
    case FTTE_WIRE_ERR_AUTH: return "authentication failed or not supported";
    case FTTE_WIRE_ERR_BUSY: return "busy: retry later";
    case FTTE_WIRE_ERR_STORAGE: return "persistent storage failed";
    case FTTE_WIRE_ERR_TRAINING: return "training failed";
    default: return "unknown status";
    }
}

/* ---- message types ------------------------------------------------------------------------- */

int32_t ftte_msg_type_is_transfer(int32_t type) {
    return type == FTTE_MSG_PROVISION || type == FTTE_MSG_TASK || type == FTTE_MSG_UPDATE ||
           type == FTTE_MSG_DATA;
}

int32_t ftte_msg_type_is_chunk(int32_t type) { return ftte_msg_type_is_transfer(type - 1); }

int32_t ftte_msg_type_known(int32_t type) {
    return (type >= FTTE_MSG_HELLO_REQUEST && type <= FTTE_MSG_ERROR) ||
           ftte_msg_type_is_transfer(type) || ftte_msg_type_is_chunk(type);
}

/* ---- encoding ------------------------------------------------------------------------------ */

ftte_wire_status ftte_wire_header_pack(uint8_t type, uint8_t flags, uint16_t seq,
                                       size_t payload_len, uint8_t *out) {
    if (out == NULL) return FTTE_WIRE_ERR_ARG;
    if (payload_len > FTTE_WIRE_MAX_PAYLOAD) return FTTE_WIRE_ERR_TOO_LARGE;
    if (flags & ~FTTE_WIRE_FLAGS_KNOWN) return FTTE_WIRE_ERR_BAD_HEADER;
    out[0] = FTTE_WIRE_VERSION;
    out[1] = type;
    out[2] = flags;
    out[3] = 0;
    wire_put_u16(out + 4, seq);
    wire_put_u16(out + 6, (uint16_t)payload_len);
    return FTTE_WIRE_OK;
}

int32_t wire_frame_encode2(uint8_t type, uint8_t flags, uint16_t seq, const uint8_t *a, size_t na,
                           const uint8_t *b, size_t nb, const uint8_t *tag, uint8_t *out, size_t cap) {
    if (out == NULL || (a == NULL && na > 0) || (b == NULL && nb > 0)) return FTTE_WIRE_ERR_ARG;
    if ((flags & FTTE_WIRE_FLAG_AUTH) && tag == NULL) return FTTE_WIRE_ERR_ARG;
    if (na > FTTE_WIRE_MAX_PAYLOAD || nb > FTTE_WIRE_MAX_PAYLOAD - na) return FTTE_WIRE_ERR_TOO_LARGE;
    uint8_t header[FTTE_WIRE_HEADER_SIZE];
    ftte_wire_status st = ftte_wire_header_pack(type, flags, seq, na + nb, header);
    if (st != FTTE_WIRE_OK) return st;

    uint32_t crc = ftte_wire_crc32(0, header, sizeof header);
    crc = ftte_wire_crc32(crc, a, na);
    crc = ftte_wire_crc32(crc, b, nb);
    if (flags & FTTE_WIRE_FLAG_AUTH) crc = ftte_wire_crc32(crc, tag, FTTE_WIRE_TAG_SIZE);
    uint8_t trailer[FTTE_WIRE_CRC_SIZE];
    wire_put_u32(trailer, crc);

    wire_cobs_writer w;
    wire_cobs_begin(&w, out, cap);
    wire_cobs_put(&w, header, sizeof header);
    wire_cobs_put(&w, a, na);
    wire_cobs_put(&w, b, nb);
    if (flags & FTTE_WIRE_FLAG_AUTH) wire_cobs_put(&w, tag, FTTE_WIRE_TAG_SIZE);
    wire_cobs_put(&w, trailer, sizeof trailer);
    int32_t n = wire_cobs_end(&w);
    if (n < 0) return n;
    if ((size_t)n >= cap) return FTTE_WIRE_ERR_TOO_LARGE; /* no room for the delimiter */
    out[n] = 0;
    return n + 1;
}

int32_t ftte_wire_frame_encode(uint8_t type, uint8_t flags, uint16_t seq, const uint8_t *payload,
                               size_t payload_len, const uint8_t *tag, uint8_t *out, size_t cap) {
    return wire_frame_encode2(type, flags, seq, payload, payload_len, NULL, 0, tag, out, cap);
}

/* ---- parsing ------------------------------------------------------------------------------- */

ftte_wire_status ftte_wire_frame_parse(const uint8_t *frame, size_t len, ftte_wire_frame *f) {
    if (frame == NULL || f == NULL) return FTTE_WIRE_ERR_ARG;
    if (len < FTTE_WIRE_OVERHEAD) return FTTE_WIRE_ERR_TRUNCATED;
    if (ftte_wire_crc32(0, frame, len - FTTE_WIRE_CRC_SIZE) != wire_get_u32(frame + len - FTTE_WIRE_CRC_SIZE))
        return FTTE_WIRE_ERR_BAD_CRC;
    uint8_t flags = frame[2];
    if (frame[0] != FTTE_WIRE_VERSION) return FTTE_WIRE_ERR_BAD_VERSION;
    if (frame[3] != 0 || (flags & ~FTTE_WIRE_FLAGS_KNOWN)) return FTTE_WIRE_ERR_BAD_HEADER;
    size_t payload_len = wire_get_u16(frame + 6);
    size_t tag_len = (flags & FTTE_WIRE_FLAG_AUTH) ? FTTE_WIRE_TAG_SIZE : 0;
    size_t expected = FTTE_WIRE_OVERHEAD + payload_len + tag_len;
    if (len < expected) return FTTE_WIRE_ERR_TRUNCATED;
    if (len > expected) return FTTE_WIRE_ERR_BAD_HEADER;
    if (payload_len > FTTE_WIRE_MAX_PAYLOAD) return FTTE_WIRE_ERR_TOO_LARGE;
    if (!ftte_msg_type_known(frame[1])) return FTTE_WIRE_ERR_UNKNOWN_TYPE;
    f->version = frame[0];
    f->type = frame[1];
    f->flags = flags;
    f->seq = wire_get_u16(frame + 4);
    f->payload_len = (uint16_t)payload_len;
    f->payload = frame + FTTE_WIRE_HEADER_SIZE;
    f->tag = tag_len ? frame + FTTE_WIRE_HEADER_SIZE + payload_len : NULL;
    return FTTE_WIRE_OK;
}

/* ---- streaming decoder --------------------------------------------------------------------- */

static void decoder_restart(ftte_wire_decoder *d) {
    d->len = 0;
    d->seen = 0;
    d->remaining = 0;
    d->zero_next = 0;
    d->discarding = 0;
}

ftte_wire_status ftte_wire_decoder_init(ftte_wire_decoder *d, uint8_t *buf, size_t capacity) {
    if (d == NULL || buf == NULL || capacity < FTTE_WIRE_OVERHEAD) return FTTE_WIRE_ERR_ARG;
    d->buf = buf;
    d->capacity = (uint32_t)(capacity > FTTE_WIRE_MAX_FRAME ? FTTE_WIRE_MAX_FRAME : capacity);
    decoder_restart(d);
    return FTTE_WIRE_OK;
}

void ftte_wire_decoder_reset(ftte_wire_decoder *d) {
    if (d != NULL) decoder_restart(d);
}

int32_t ftte_wire_decoder_pending(const ftte_wire_decoder *d) { return d != NULL && d->seen > 0; }

/* Appends a decoded byte; on overflow switches to discarding and reports TOO_LARGE once. */
static int32_t decoder_append(ftte_wire_decoder *d, uint8_t byte) {
    if (d->len >= d->capacity) {
        d->discarding = 1; /* reported now, not again at the delimiter */
        return FTTE_WIRE_ERR_TOO_LARGE;
    }
    d->buf[d->len++] = byte;
    return 0;
}

int32_t ftte_wire_decoder_push(ftte_wire_decoder *d, uint8_t byte, ftte_wire_frame *f) {
    if (d == NULL || f == NULL || d->buf == NULL) return FTTE_WIRE_ERR_ARG;
    if (byte == 0) { /* delimiter */
        int discarding = d->discarding, seen = d->seen > 0, open_block = d->remaining > 0;
        uint32_t len = d->len;
        decoder_restart(d);
        if (discarding) return 0; /* TOO_LARGE was reported when it overflowed */
        if (!seen) return 0; /* idle delimiter */
        if (open_block) return FTTE_WIRE_ERR_BAD_COBS;
        ftte_wire_status st = ftte_wire_frame_parse(d->buf, len, f);
        return st == FTTE_WIRE_OK ? (int32_t)len : st;
    }
    if (d->seen < UINT32_MAX) d->seen++;
    if (d->discarding) return 0;
    if (d->remaining == 0) { /* a code byte starts a block */
        if (d->zero_next) {
            int32_t st = decoder_append(d, 0);
            if (st < 0) return st;
        }
        d->remaining = (uint8_t)(byte - 1u);
        d->zero_next = byte != 0xFF;
        return 0;
    }
    d->remaining--;
    return decoder_append(d, byte);
}

int32_t ftte_wire_decoder_feed(ftte_wire_decoder *d, const uint8_t *data, size_t n,
                               size_t *consumed, ftte_wire_frame *f) {
    if (consumed != NULL) *consumed = 0;
    if (d == NULL || f == NULL || consumed == NULL || (data == NULL && n > 0)) return FTTE_WIRE_ERR_ARG;
    for (size_t i = 0; i < n; i++) {
        int32_t r = ftte_wire_decoder_push(d, data[i], f);
        if (r != 0) {
            *consumed = i + 1;
            return r;
        }
    }
    *consumed = n;
    return 0;
}
