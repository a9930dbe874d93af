/*
 * Consistent Overhead Byte Stuffing (Cheshire & Baker, 1999): removes every 0x00 from a frame
 * so that 0x00 can delimit frames. Each block is a code byte c (1..255) and c - 1 data bytes;
 * a block with c < 255 stands for its data followed by a 0x00, except the last block of the
 * frame. The overhead is one byte per started 254 bytes, whatever the data.
 */
#include "wire_internal.h"

void wire_cobs_begin(wire_cobs_writer *w, uint8_t *out, size_t cap) {
    w->out = out;
    w->cap = cap;
    w->code_pos = 0;
    w->pos = 1;
    w->code = 1;
    w->full = 0;
    w->overflow = cap < 1;
}

static void cobs_close_block(wire_cobs_writer *w) {
    if (w->code_pos < w->cap) w->out[w->code_pos] = w->code;
    w->code_pos = w->pos++;
    w->code = 1;
    w->full = 0;
    if (w->code_pos >= w->cap) w->overflow = 1;
}

void wire_cobs_put(wire_cobs_writer *w, const uint8_t *data, size_t n) {
    for (size_t i = 0; i < n && !w->overflow; i++) {
        uint8_t b = data[i];
        if (w->full) cobs_close_block(w); /* a 254-byte block implies no zero */
        if (w->overflow) break;
        if (b == 0) {
            cobs_close_block(w);
            continue;
        }
        if (w->pos >= w->cap) {
            w->overflow = 1;
            break;
        }
        w->out[w->pos++] = b;
        if (++w->code == 0xFF) w->full = 1;
    }
}

int32_t wire_cobs_end(wire_cobs_writer *w) {
    if (w->overflow || w->code_pos >= w->cap || w->pos > (size_t)INT32_MAX) return FTTE_WIRE_ERR_TOO_LARGE;
    w->out[w->code_pos] = w->code;
    return (int32_t)w->pos;
}

int32_t ftte_wire_cobs_encode(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
    if ((in == NULL && n > 0) || out == NULL) return FTTE_WIRE_ERR_ARG;
    wire_cobs_writer w;
    wire_cobs_begin(&w, out, cap);
    wire_cobs_put(&w, in, n);
    return wire_cobs_end(&w);
}

int32_t ftte_wire_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
    if ((in == NULL && n > 0) || (out == NULL && cap > 0)) return FTTE_WIRE_ERR_ARG;
    size_t i = 0, len = 0;
    while (i < n) {
        uint8_t code = in[i++];
        if (code == 0) return FTTE_WIRE_ERR_BAD_COBS;
        size_t count = (size_t)code - 1u;
        if (count > n - i) return FTTE_WIRE_ERR_BAD_COBS; /* the block runs past the end */
        for (size_t k = 0; k < count; k++) {
            if (in[i] == 0) return FTTE_WIRE_ERR_BAD_COBS;
            if (len >= cap) return FTTE_WIRE_ERR_TOO_LARGE;
            out[len++] = in[i++];
        }
        if (code != 0xFF && i < n) { /* the implied zero, except after the last block */
            if (len >= cap) return FTTE_WIRE_ERR_TOO_LARGE;
            out[len++] = 0;
        }
    }
    if (len > (size_t)INT32_MAX) return FTTE_WIRE_ERR_TOO_LARGE;
    return (int32_t)len;
}
