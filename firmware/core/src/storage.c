/*
 * Persistent weights: the provisioned weights saved through the port's ftte_storage and loaded
 * at boot, so that a board that resets needs no new PROVISION.
 *
 * The record is a 24-byte head and the weights as float32 LE (PROVISION's body, so its CRC is
 * HELLO's weights_crc). Head, all u32 LE:
 *
 *   0 magic "FTTW"   4 format (1)   8 layout hash   12 body bytes   16 weights CRC-32
 *   20 CRC-32 of bytes 0..19
 *
 * Nothing is trusted: a head that fails its CRC, a body that is short or fails the weights CRC
 * (a write torn by a reset, flash gone bad) is ignored and the compiled-in weights stay. The
 * body is read straight into the RAM weights (no second copy of the model in RAM), so a body
 * that fails its check is replaced by the compiled-in weights again.
 */
#include <string.h>

#include "board_internal.h"

#define STORED_MAGIC 0x57545446u /* "FTTW" as LE bytes */
#define STORED_FORMAT 1u

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

const char *ftte_board_stored_string(ftte_board_stored stored) {
    switch (stored) {
    case FTTE_BOARD_STORED_LOADED: return "stored weights loaded";
    case FTTE_BOARD_STORED_NONE: return "nothing stored: the compiled-in weights";
    case FTTE_BOARD_STORED_DAMAGED: return "stored record damaged (torn write or corruption): ignored, "
                                           "the compiled-in weights";
    case FTTE_BOARD_STORED_OTHER_MODEL: return "stored weights are another model's: ignored, "
                                               "the compiled-in weights";
    }
    return "unknown";
}

/* The head is whole and ours: magic, format and its own CRC. */
static int head_intact(const uint8_t head[FTTE_BOARD_STORED_HEAD_BYTES]) {
    return get_u32(head) == STORED_MAGIC && get_u32(head + 4) == STORED_FORMAT &&
           get_u32(head + 20) == ftte_wire_crc32(0, head, 20);
}

/* Reads the body into the RAM weights; 0 when it is whole and its CRC is the head's. */
static int load_body(ftte_board *b, uint32_t crc) {
    const ftte_storage *s = &b->storage;
    if (s->load(s->ctx, FTTE_BOARD_STORED_BODY, b->mem.weights, 4u * b->mem.weight_count) != 0) return -1;
    board_le_words_in_place(b->mem.weights, b->mem.weight_count);
    b->weights_crc_valid = 0;
    return ftte_board_weights_crc(b) == crc ? 0 : -1;
}

ftte_board_stored ftte_board_attach_storage(ftte_board *b, const ftte_storage *storage) {
    if (storage == NULL || storage->load == NULL || storage->save == NULL) return FTTE_BOARD_STORED_NONE;
    b->storage = *storage;
    b->has_storage = 1;
    b->save_failed = 0;
    uint8_t head[FTTE_BOARD_STORED_HEAD_BYTES];
    int32_t r = storage->load(storage->ctx, FTTE_BOARD_STORED_HEAD, head, sizeof head);
    if (r == FTTE_BOARD_NO_RECORD) return FTTE_BOARD_STORED_NONE;
    if (r != 0 || !head_intact(head)) return FTTE_BOARD_STORED_DAMAGED;
    if (get_u32(head + 8) != b->layout_hash || get_u32(head + 12) != 4u * b->mem.weight_count)
        return FTTE_BOARD_STORED_OTHER_MODEL;
    if (load_body(b, get_u32(head + 16)) != 0) {
        board_load_flash_weights(b);
        return FTTE_BOARD_STORED_DAMAGED;
    }
    b->weights_valid = 1;
    return FTTE_BOARD_STORED_LOADED;
}

void storage_save(ftte_board *b) {
    b->save_pending = 0;
    if (!b->has_storage || !b->weights_valid) return;
    uint8_t head[FTTE_BOARD_STORED_HEAD_BYTES];
    put_u32(head, STORED_MAGIC);
    put_u32(head + 4, STORED_FORMAT);
    put_u32(head + 8, b->layout_hash);
    put_u32(head + 12, 4u * b->mem.weight_count);
    put_u32(head + 16, ftte_board_weights_crc(b));
    put_u32(head + 20, ftte_wire_crc32(0, head, 20));
    /* The body goes out as LE words: swapped in place around the save on a big-endian board. */
    board_le_words_in_place(b->mem.weights, b->mem.weight_count);
    int32_t r = b->storage.save(b->storage.ctx, head, sizeof head, b->mem.weights, 4u * b->mem.weight_count);
    board_le_words_in_place(b->mem.weights, b->mem.weight_count);
    b->save_failed = r != 0;
}
