/*
 * The QEMU boards' chip layer: a polled UART and a millisecond clock. One file per machine
 * implements it (mps2_an386.c: CMSDK APB UART0 and timer 0; virt_rv32.c: the ns16550 UART and
 * the CLINT's mtime); qemu_board.c is the firmware's main on both.
 */
#ifndef FTTE_QEMU_BOARD_H
#define FTTE_QEMU_BOARD_H

#include <stdint.h>

/** Sets the UART and the clock up. */
void chip_init(void);
/** 1 and the byte in *b when the UART holds a received byte, else 0. */
int chip_uart_read(uint8_t *b);
/** Sends one byte (waits while the transmitter is full). */
void chip_uart_write(uint8_t b);
/** Milliseconds since chip_init (wraps at 2^32). */
uint32_t chip_millis(void);

/** HELLO's identity of the machine. */
extern const char chip_name[8];
extern const uint32_t chip_cpu_hz;

#endif /* FTTE_QEMU_BOARD_H */
