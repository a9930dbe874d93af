/*
 * FTTE firmware on a QEMU board (mps2-an386 Cortex-M4F, virt RV32IMC): the firmware core over the
 * machine's UART, polled, with every buffer static and sized by the env (platformio.ini):
 *
 *   FTTE_ARENA_BYTES      training arena (HELLO's ram_budget)
 *   FTTE_STORE_BYTES      sample store (HELLO's data_capacity)
 *   FTTE_BOARD_MAX_FRAME  receive buffer (HELLO's max_frame)
 *
 * Connect QEMU's first serial port to the host, e.g.
 *   -serial tcp:127.0.0.1:4000,server=on,wait=on,nodelay=on   and pyserial's socket://127.0.0.1:4000
 * main() never returns: the board serves its UART until QEMU stops.
 */
#include <stdint.h>
#include <string.h>

#include "ftte_board.h"
#include "ftte_model_data.h"
#include "qemu_board.h"

#ifndef FTTE_ARENA_BYTES
#define FTTE_ARENA_BYTES (64u * 1024u)
#endif
#ifndef FTTE_STORE_BYTES
#define FTTE_STORE_BYTES (96u * 1024u)
#endif
#ifndef FTTE_BOARD_MAX_FRAME
#define FTTE_BOARD_MAX_FRAME 1024u
#endif
#ifndef FTTE_FLASH_BYTES
#define FTTE_FLASH_BYTES (1024u * 1024u)
#endif

static uint32_t arena[FTTE_ARENA_BYTES / 4];
static uint32_t store[FTTE_STORE_BYTES / 4];
static float weights[FTTE_MODEL_PARAMETERS];
static uint8_t rx[FTTE_BOARD_RX_BYTES(FTTE_BOARD_MAX_FRAME)];
static uint8_t tx[FTTE_BOARD_TX_BYTES(FTTE_BOARD_MAX_FRAME)];
static uint8_t stage[FTTE_BOARD_STAGE_BYTES(FTTE_BOARD_MAX_FRAME)];
static ftte_board board;

static int32_t uart_read(void *ctx, uint8_t *buf, uint32_t cap, uint32_t timeout_ms) {
    (void)ctx;
    uint32_t start = chip_millis(), n = 0;
    while (n == 0) {
        while (n < cap && chip_uart_read(&buf[n])) n++;
        if (n == 0 && chip_millis() - start >= timeout_ms) break;
    }
    return (int32_t)n;
}

static int32_t uart_write(void *ctx, const uint8_t *buf, uint32_t n) {
    (void)ctx;
    for (uint32_t i = 0; i < n; i++) chip_uart_write(buf[i]);
    return 0;
}

static uint32_t millis(void *ctx) {
    (void)ctx;
    return chip_millis();
}

int main(void) {
    chip_init();
    ftte_board_config config;
    memset(&config, 0, sizeof config);
    memcpy(config.board_id, chip_name, sizeof config.board_id);
    config.flash_size = FTTE_FLASH_BYTES;
    config.cpu_hz = chip_cpu_hz;
    config.ram_budget = 0; /* the whole arena */
    const ftte_port port = {0, uart_read, uart_write, millis};
    const ftte_board_memory memory = {arena, sizeof arena, store, sizeof store, weights,
                                      FTTE_MODEL_PARAMETERS, rx, tx, stage, FTTE_BOARD_MAX_FRAME};
    if (ftte_board_init(&board, &config, &port, &memory, &ftte_model_data) != FTTE_WIRE_OK) {
        for (;;) {
        }
    }
    for (;;) ftte_board_run(&board); /* the UART never closes */
}
