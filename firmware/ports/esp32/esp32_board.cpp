/*
 * FTTE on an ESP32 dev board (Arduino-ESP32): Serial is UART0 behind the board's USB-UART
 * bridge; the weights persist in LittleFS on the `spiffs` partition of the default partition
 * table (formatted on first use). The shared glue is ports/arduino/ftte_arduino.cpp.
 */
#include <Arduino.h>
#include <FS.h>
#include <LittleFS.h>

#include "ftte_arduino.h"

static const char *const WEIGHTS_PATH = "/ftte_weights.bin";
static const char *const WEIGHTS_TMP = "/ftte_weights.tmp";

void ftte_arduino_serial_begin(void) {
    Serial.setRxBufferSize(2 * FTTE_BOARD_MAX_FRAME + 64); /* a whole frame while the board trains */
    Serial.begin(FTTE_SERIAL_BAUD);
}

void ftte_arduino_identify(ftte_board_config *config) {
    uint64_t mac = ESP.getEfuseMac(); /* factory-programmed, unique per chip */
    for (int i = FTTE_WIRE_BOARD_ID_SIZE - 1; i >= 0; i--, mac >>= 8) config->board_id[i] = (uint8_t)mac;
    config->board_id[0] = 'E';
    config->flash_size = ESP.getFlashChipSize();
    config->cpu_hz = getCpuFrequencyMhz() * 1000000u;
}

static int32_t fs_load(void *ctx, uint32_t part, void *buf, uint32_t n) {
    (void)ctx;
    if (!LittleFS.exists(WEIGHTS_PATH)) return FTTE_BOARD_NO_RECORD;
    File f = LittleFS.open(WEIGHTS_PATH, "r");
    if (!f) return -2;
    bool ok = f.seek(part == FTTE_BOARD_STORED_BODY ? FTTE_BOARD_STORED_BODY_OFFSET : 0) &&
              f.read((uint8_t *)buf, n) == n;
    f.close();
    return ok ? 0 : -2;
}

/* Written whole to a temporary file, then renamed over the record (littlefs renames atomically):
 * a reset mid-write leaves the previous record. */
static int32_t fs_save(void *ctx, const void *head, uint32_t head_bytes, const void *body, uint32_t body_bytes) {
    (void)ctx;
    File f = LittleFS.open(WEIGHTS_TMP, "w");
    if (!f) return -1;
    bool ok = f.write((const uint8_t *)head, head_bytes) == head_bytes &&
              f.write((const uint8_t *)body, body_bytes) == body_bytes;
    f.close();
    if (ok && !LittleFS.rename(WEIGHTS_TMP, WEIGHTS_PATH)) /* a VFS that will not replace: remove first */
        ok = LittleFS.remove(WEIGHTS_PATH) && LittleFS.rename(WEIGHTS_TMP, WEIGHTS_PATH);
    if (!ok) LittleFS.remove(WEIGHTS_TMP);
    return ok ? 0 : -1;
}

const ftte_storage *ftte_arduino_storage(void) {
    static const ftte_storage storage = {NULL, fs_load, fs_save};
    return LittleFS.begin(true) ? &storage : NULL; /* true: format a partition that is not LittleFS yet */
}
