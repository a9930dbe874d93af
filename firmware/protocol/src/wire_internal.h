/*
 * Private helpers of the wire codec: explicit little-endian reads and writes of unaligned
 * bytes (the only way fields reach or leave the wire), and float bit casts.
 */
#ifndef FTTE_WIRE_INTERNAL_H
#define FTTE_WIRE_INTERNAL_H

#include <stdint.h>
#include <string.h>

#include "ftte_wire.h"

static inline void wire_put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static inline void wire_put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

static inline uint16_t wire_get_u16(const uint8_t *p) {
    return (uint16_t)((uint16_t)p[0] | (uint16_t)((uint16_t)p[1] << 8));
}

static inline uint32_t wire_get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* IEEE-754 binary32 bit pattern of a float and back (memcpy: no aliasing or alignment issue). */
static inline uint32_t wire_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float wire_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline void wire_put_f32(uint8_t *p, float f) { wire_put_u32(p, wire_f32_bits(f)); }
static inline float wire_get_f32(const uint8_t *p) { return wire_bits_f32(wire_get_u32(p)); }

/* A float whose exponent is not all ones (neither infinite nor NaN). */
static inline int wire_f32_finite(float f) { return (wire_f32_bits(f) & 0x7F800000u) != 0x7F800000u; }

/* Streaming COBS writer into a bounded buffer (cobs.c), shared by the frame encoder. */
typedef struct {
    uint8_t *out;
    size_t cap;
    size_t pos;      /* next byte to write */
    size_t code_pos; /* where the current block's code byte goes */
    uint8_t code;    /* 1 + data bytes in the current block */
    uint8_t full;    /* the current block holds 254 bytes: close it before the next byte */
    uint8_t overflow;
} wire_cobs_writer;

void wire_cobs_begin(wire_cobs_writer *w, uint8_t *out, size_t cap);
void wire_cobs_put(wire_cobs_writer *w, const uint8_t *data, size_t n);
/* Closes the last block; returns the encoded length or FTTE_WIRE_ERR_TOO_LARGE. */
int32_t wire_cobs_end(wire_cobs_writer *w);

/* Encodes one frame whose payload is a then b (either may be empty): the chunk encoder streams
 * the chunk header and the caller's body bytes without copying them together (frame.c). */
int32_t wire_frame_encode2(uint8_t type, uint8_t flags, uint16_t seq, const uint8_t *a, size_t na,
                           const uint8_t *b, size_t nb, const uint8_t *tag, uint8_t *out, size_t cap);

#endif /* FTTE_WIRE_INTERNAL_H */
