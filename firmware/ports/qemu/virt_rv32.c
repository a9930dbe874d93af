/*
 * Chip layer of QEMU's virt machine (RV32IMC): the ns16550a UART at 0x10000000, polled, and the
 * CLINT's 64-bit mtime (10 MHz) at 0x0200BFF8 for the millisecond clock.
 */
#include <stdint.h>

#include "qemu_board.h"

#define UART 0x10000000u
#define UART_RBR (*(volatile uint8_t *)(UART + 0u)) /* receive buffer (read) */
#define UART_THR (*(volatile uint8_t *)(UART + 0u)) /* transmit holding (write) */
#define UART_FCR (*(volatile uint8_t *)(UART + 2u))
#define UART_LCR (*(volatile uint8_t *)(UART + 3u))
#define UART_LSR (*(volatile uint8_t *)(UART + 5u)) /* bit 0 data ready, bit 5 THR empty */

#define MTIME_LO (*(volatile uint32_t *)0x0200BFF8u)
#define MTIME_HI (*(volatile uint32_t *)0x0200BFFCu)
#define MTIME_HZ 10000000u

const char chip_name[8] = {'R', 'V', '3', '2', 'Q', 'E', 'M', 'U'};
const uint32_t chip_cpu_hz = MTIME_HZ;

static uint64_t start;

static uint64_t mtime(void) {
    uint32_t hi, lo;
    do {
        hi = MTIME_HI;
        lo = MTIME_LO;
    } while (hi != MTIME_HI);
    return (uint64_t)hi << 32 | lo;
}

void chip_init(void) {
    UART_LCR = 0x03u; /* 8 data bits, no parity, 1 stop bit */
    UART_FCR = 0x07u; /* FIFOs on and cleared */
    start = mtime();
}

int chip_uart_read(uint8_t *b) {
    if (!(UART_LSR & 0x01u)) return 0;
    *b = UART_RBR;
    return 1;
}

void chip_uart_write(uint8_t b) {
    while (!(UART_LSR & 0x20u)) {
    }
    UART_THR = b;
}

uint32_t chip_millis(void) { return (uint32_t)((mtime() - start) / (MTIME_HZ / 1000u)); }
