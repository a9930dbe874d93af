/*
 * Bare-metal runtime of the ftte-qemu dev-platform for Cortex-M (QEMU mps2-an386), linked
 * into every program of the platform (application and test images alike):
 *
 *  - the vector table and Reset_Handler: enable the FPU, copy .data, zero .bss, then
 *    exit(main());
 *  - newlib's system calls over Arm semihosting: stdout/stderr go to QEMU's console
 *    (SYS_WRITE0), exit(status) ends QEMU with that status (SYS_EXIT_EXTENDED), malloc gets
 *    the RAM between .bss and the stack (see mps2_an386.ld);
 *  - every fault prints its exception number and ends QEMU with status 128 + number, so a
 *    crash is a failed run, never a hang.
 *
 * QEMU must run with `-semihosting-config enable=on,target=native`; on real hardware without
 * a debugger attached the first semihosting call would stop the core.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int main(void);

/* ---- Arm semihosting --------------------------------------------------------------------- */

#define SYS_WRITE0 0x04
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

static int semihost(int operation, const void *argument) {
    register int r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static void console_write(const char *text, size_t length) {
    char chunk[65];
    while (length > 0) {
        size_t n = length < sizeof chunk - 1 ? length : sizeof chunk - 1;
        memcpy(chunk, text, n);
        chunk[n] = '\0';
        semihost(SYS_WRITE0, chunk);
        text += n;
        length -= n;
    }
}

static void __attribute__((noreturn)) semihost_exit(int status) {
    const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};
    for (;;) semihost(SYS_EXIT_EXTENDED, block);
}

/* ---- newlib system calls ------------------------------------------------------------------ */

extern char __heap_start[], __heap_limit[];

int _write(int file, const char *buffer, int length) {
    if (file != 1 && file != 2) {
        errno = EBADF;
        return -1;
    }
    console_write(buffer, (size_t)length);
    return length;
}

int _read(int file, char *buffer, int length) {
    (void)file, (void)buffer, (void)length;
    return 0; /* no input: end of file */
}

void *_sbrk(ptrdiff_t increment) {
    static char *heap_end = __heap_start;
    if (increment > __heap_limit - heap_end || increment < __heap_start - heap_end) {
        errno = ENOMEM;
        return (void *)-1;
    }
    char *previous = heap_end;
    heap_end += increment;
    return previous;
}

void _exit(int status) { semihost_exit(status); }

int _close(int file) {
    (void)file;
    errno = EBADF;
    return -1;
}

int _fstat(int file, struct stat *st) {
    (void)file;
    st->st_mode = S_IFCHR;
    return 0;
}

int _isatty(int file) { return file >= 0 && file <= 2; }

int _lseek(int file, int offset, int whence) {
    (void)file, (void)offset, (void)whence;
    return 0;
}

int _kill(int pid, int signal) {
    (void)pid, (void)signal;
    errno = EINVAL;
    return -1;
}

int _getpid(void) { return 1; }

/* ---- reset and faults -------------------------------------------------------------------- */

extern uint32_t __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[];
extern uint32_t __stack_top[];

void Reset_Handler(void) {
    /* The FPU is off at reset: grant full access to CP10 and CP11 before any float code. */
    volatile uint32_t *const cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    for (uint32_t *src = __data_load, *dst = __data_start; dst < __data_end;) *dst++ = *src++;
    for (uint32_t *dst = __bss_start; dst < __bss_end;) *dst++ = 0;
    exit(main());
}

static void fault_handler(void) {
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    static const char message[] = "ftte-qemu runtime: fault, exception ";
    char number[4] = {(char)('0' + (ipsr / 10) % 10), (char)('0' + ipsr % 10), '\n', '\0'};
    console_write(message, sizeof message - 1);
    console_write(number, 3);
    semihost_exit(128 + (int)(ipsr & 0x1FF));
}

typedef void (*vector)(void);

/* Initial stack pointer, then the 15 system exceptions; no interrupt is used. */
__attribute__((section(".isr_vector"), used)) const vector ftte_vector_table[16] = {
    (vector)(uintptr_t)__stack_top,
    Reset_Handler,
    fault_handler, /* NMI */
    fault_handler, /* HardFault */
    fault_handler, /* MemManage */
    fault_handler, /* BusFault */
    fault_handler, /* UsageFault */
    0, 0, 0, 0,
    fault_handler, /* SVCall */
    fault_handler, /* DebugMonitor */
    0,
    fault_handler, /* PendSV */
    fault_handler, /* SysTick */
};
