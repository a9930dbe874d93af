/*
 * Chip layer of QEMU's mps2-an386 (Cortex-M4F, 25 MHz): CMSDK APB UART0 at 0x40004000, polled,
 * and CMSDK APB timer 0 at 0x40000000, free-running from 0xFFFFFFFF at the 25 MHz peripheral
 * clock, for the millisecond clock. No interrupt is used (the dev-platform's vector table sends
 * every exception to its fault handler).
 */
#include <stdint.h>

#include "qemu_board.h"

#define UART0 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0 + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0 + 0x04u)) /* bit 0 TX full, bit 1 RX full */
#define UART_CTRL (*(volatile uint32_t *)(UART0 + 0x08u))  /* bit 0 TX enable, bit 1 RX enable */
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0 + 0x10u))

#define TIMER0 0x40000000u
#define TIMER_CTRL (*(volatile uint32_t *)(TIMER0 + 0x00u)) /* bit 0 enable */
#define TIMER_VALUE (*(volatile uint32_t *)(TIMER0 + 0x04u))
#define TIMER_RELOAD (*(volatile uint32_t *)(TIMER0 + 0x08u))

#define PCLK_HZ 25000000u

const char chip_name[8] = {'M', '4', 'F', 'Q', 'E', 'M', 'U', '1'};
const uint32_t chip_cpu_hz = PCLK_HZ;

static uint32_t last_value;
static uint64_t ticks;

void chip_init(void) {
    UART_BAUDDIV = 16;
    UART_CTRL = 0x3u;
    TIMER_CTRL = 0;
    TIMER_RELOAD = 0xFFFFFFFFu;
    TIMER_VALUE = 0xFFFFFFFFu;
    TIMER_CTRL = 0x1u;
    last_value = TIMER_VALUE;
    ticks = 0;
}

int chip_uart_read(uint8_t *b) {
    if (!(UART_STATE & 0x2u)) return 0;
    *b = (uint8_t)UART_DATA;
    return 1;
}

void chip_uart_write(uint8_t b) {
    while (UART_STATE & 0x1u) {
    }
    UART_DATA = b;
}

uint32_t chip_millis(void) {
    uint32_t now = TIMER_VALUE; /* counts down, wraps from 0 to the reload value */
    ticks += (uint32_t)(last_value - now);
    last_value = now;
    return (uint32_t)(ticks / (PCLK_HZ / 1000u));
}
