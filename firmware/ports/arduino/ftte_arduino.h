/*
 * FTTE firmware on an Arduino board: what each board's file (ports/esp32/, ports/nrf52840/)
 * gives the shared glue (ftte_arduino.cpp), which owns setup(), loop(), the static memory and
 * the USB serial link.
 *
 * Sizes come from the env's build flags (platformio.ini), as on every board:
 *   FTTE_ARENA_BYTES      training arena (HELLO's ram_budget)
 *   FTTE_STORE_BYTES      sample store (HELLO's data_capacity)
 *   FTTE_BOARD_MAX_FRAME  receive buffer (HELLO's max_frame)
 *   FTTE_SERIAL_BAUD      baud rate of Serial (ignored by native USB: nRF52840)
 */
#ifndef FTTE_ARDUINO_H
#define FTTE_ARDUINO_H

#include "ftte_board.h"

#if !defined(FTTE_ARENA_BYTES) || !defined(FTTE_STORE_BYTES) || !defined(FTTE_BOARD_MAX_FRAME)
#error "set FTTE_ARENA_BYTES, FTTE_STORE_BYTES and FTTE_BOARD_MAX_FRAME in the env's build_flags"
#endif
#ifndef FTTE_SERIAL_BAUD
#define FTTE_SERIAL_BAUD 115200
#endif

/** Starts Serial (before anything is sent): buffer sizes, baud rate. */
void ftte_arduino_serial_begin(void);

/** Fills in who the board is: board_id, flash_size, cpu_hz (ram_budget stays 0: the arena). */
void ftte_arduino_identify(ftte_board_config *config);

/** The board's storage for the provisioned weights, mounted; NULL when it has none or the file
 *  system cannot be mounted (the board then runs without PERSIST). */
const ftte_storage *ftte_arduino_storage(void);

#endif /* FTTE_ARDUINO_H */
