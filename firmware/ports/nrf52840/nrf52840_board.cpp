/*
 * FTTE on an Adafruit Feather nRF52840 (Adafruit's nRF52 Arduino core): Serial is the native
 * USB CDC port (the baud rate is ignored); the weights persist in InternalFS, the core's
 * LittleFS in 28 KB of the chip's flash. That holds models of up to about 20 KB of weights: a
 * larger record fails to save, the file is removed again and HELLO drops PERSIST (the board
 * still trains; after a reset the host provisions it again). The shared glue is
 * ports/arduino/ftte_arduino.cpp.
 */
#include <Arduino.h>
#include <Adafruit_LittleFS.h>
#include <InternalFileSystem.h>

#include "ftte_arduino.h"

using namespace Adafruit_LittleFS_Namespace;

#ifndef F_CPU
#define F_CPU 64000000u
#endif

static const char *const WEIGHTS_PATH = "/ftte_weights.bin";
static const uint32_t PIECE = 1024; /* File::read takes at most 65535 bytes at a time */

void ftte_arduino_serial_begin(void) { Serial.begin(FTTE_SERIAL_BAUD); }

void ftte_arduino_identify(ftte_board_config *config) {
    uint64_t id = (uint64_t)NRF_FICR->DEVICEID[1] << 32 | NRF_FICR->DEVICEID[0]; /* unique per chip */
    for (int i = FTTE_WIRE_BOARD_ID_SIZE - 1; i >= 0; i--, id >>= 8) config->board_id[i] = (uint8_t)id;
    config->board_id[0] = 'F';
    config->flash_size = 1024u * 1024u;
    config->cpu_hz = (uint32_t)F_CPU;
}

static int32_t fs_load(void *ctx, uint32_t part, void *buf, uint32_t n) {
    (void)ctx;
    File f(InternalFS);
    if (!f.open(WEIGHTS_PATH, FILE_O_READ)) return InternalFS.exists(WEIGHTS_PATH) ? -2 : FTTE_BOARD_NO_RECORD;
    bool ok = f.seek(part == FTTE_BOARD_STORED_BODY ? FTTE_BOARD_STORED_BODY_OFFSET : 0);
    for (uint8_t *p = (uint8_t *)buf; ok && n > 0;) {
        uint16_t want = (uint16_t)(n < PIECE ? n : PIECE);
        ok = f.read(p, want) == (int)want;
        p += want, n -= want;
    }
    f.close();
    return ok ? 0 : -2;
}

/* No room for a second copy: the old record goes first, and a write torn by a reset leaves a
 * record that fails its CRC at boot (ignored: the compiled-in weights). */
static int32_t fs_save(void *ctx, const void *head, uint32_t head_bytes, const void *body, uint32_t body_bytes) {
    (void)ctx;
    InternalFS.remove(WEIGHTS_PATH);
    File f(InternalFS);
    if (!f.open(WEIGHTS_PATH, FILE_O_WRITE)) return -1;
    bool ok = f.write((const uint8_t *)head, head_bytes) == head_bytes &&
              f.write((const uint8_t *)body, body_bytes) == body_bytes;
    f.close();
    if (!ok) InternalFS.remove(WEIGHTS_PATH); /* a partial record only costs space */
    return ok ? 0 : -1;
}

const ftte_storage *ftte_arduino_storage(void) {
    static const ftte_storage storage = {NULL, fs_load, fs_save};
    return InternalFS.begin() ? &storage : NULL;
}
