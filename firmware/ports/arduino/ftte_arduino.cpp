/*
 * FTTE firmware on an Arduino board: the firmware core (firmware/core) over the board's Serial
 * (USB serial: a USB-UART bridge on an ESP32 dev board, native USB CDC on an nRF52840), the
 * Arduino millis() clock and static buffers sized by the env. The board's own file
 * (ftte_arduino.h) says who it is and where its weights persist.
 *
 * Serial carries only protocol frames: nothing else may print on it (ESP32: CORE_DEBUG_LEVEL=0
 * in platformio.ini; the ROM's boot text before setup() is skipped by the host's decoder).
 */
#include <Arduino.h>

#include "ftte_arduino.h"
extern "C" {
#include "ftte_model_data.h" /* generated C header, without its own extern "C" */
}

/* The board's memory: static, sized by the env (platformio.ini). */
static uint32_t arena[FTTE_ARENA_BYTES / 4];
static uint32_t store[FTTE_STORE_BYTES / 4];
static float weights[FTTE_MODEL_PARAMETERS];
static uint8_t rx[FTTE_BOARD_RX_BYTES(FTTE_BOARD_MAX_FRAME)];
static uint8_t tx[FTTE_BOARD_TX_BYTES(FTTE_BOARD_MAX_FRAME)];
static uint8_t stage[FTTE_BOARD_STAGE_BYTES(FTTE_BOARD_MAX_FRAME)];
static ftte_board board;
static bool ready = false;

/* Waits at most timeout_ms for a first byte, then takes what is there. delay(1) lets the RTOS
 * run (ESP32's idle task, the nRF52's USB and SoftDevice tasks). */
static int32_t serial_read(void *ctx, uint8_t *buf, uint32_t cap, uint32_t timeout_ms) {
    (void)ctx;
    uint32_t start = millis();
    while (Serial.available() <= 0) {
        if (millis() - start >= timeout_ms) return 0;
        delay(1);
    }
    uint32_t n = 0;
    while (n < cap && Serial.available() > 0) {
        int c = Serial.read();
        if (c < 0) break;
        buf[n++] = (uint8_t)c;
    }
    return (int32_t)n;
}

/* Writes everything, waiting at most 2 s for room: a host that stopped reading (or no USB host
 * at all) costs the frame, never a hung board. */
static int32_t serial_write(void *ctx, const uint8_t *buf, uint32_t n) {
    (void)ctx;
    uint32_t start = millis();
    while (n > 0) {
        size_t w = Serial.write(buf, n);
        buf += w, n -= (uint32_t)w;
        if (n == 0) break;
        if (millis() - start >= 2000u) return -1;
        delay(1);
    }
    return 0;
}

static uint32_t clock_ms(void *ctx) {
    (void)ctx;
    return millis();
}

void setup() {
    ftte_arduino_serial_begin();
    ftte_board_config config;
    memset(&config, 0, sizeof config);
    ftte_arduino_identify(&config);
    const ftte_port port = {NULL, serial_read, serial_write, clock_ms};
    const ftte_board_memory memory = {arena, sizeof arena, store, sizeof store, weights, FTTE_MODEL_PARAMETERS,
                                      rx, tx, stage, FTTE_BOARD_MAX_FRAME};
    if (ftte_board_init(&board, &config, &port, &memory, &ftte_model_data) != FTTE_WIRE_OK) return;
    const ftte_storage *storage = ftte_arduino_storage();
    if (storage != NULL) (void)ftte_board_attach_storage(&board, storage); /* HELLO tells the host */
    ftte_board_start(&board);
    ready = true;
}

void loop() {
    if (ready) (void)ftte_board_poll(&board, 20); /* Serial never closes: poll for ever */
}
