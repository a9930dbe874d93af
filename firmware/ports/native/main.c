/*
 * FTTE native board: the firmware core as a POSIX process, serving a pseudo-terminal (default)
 * or its own stdin/stdout. Used by the tests and by `ftte run --emulated N`; it runs the same
 * core, kernels and wire codec as the boards, built with the host compiler.
 *
 *   ftte_board [--pty | --stdio] [--ram BYTES] [--id HEX] [--max-frame N] [--storage FILE]
 *              [--watch-stdin]
 *
 *   --pty           (default) open a pseudo-terminal, print the path of its serial side on the
 *                   first line of stdout, and serve it: open that path as a serial port
 *                   (pyserial, `ftte devices /dev/pts/N`, picocom ...)
 *   --stdio         frames on stdin/stdout instead (stdin's end of file ends the program)
 *   --ram BYTES     the arena budget the board announces and enforces (default: all of the
 *                   static arena, FTTE_ARENA_BYTES); models a smaller board
 *   --id HEX        board id, up to 16 hex digits (default: derived from the process id)
 *   --max-frame N   receive buffer announced in HELLO, 128..FTTE_BOARD_MAX_FRAME
 *   --storage FILE  keep the provisioned weights in FILE (the board's flash): loaded at boot
 *                   when intact, written after every PROVISION; HELLO announces PERSIST
 *   --watch-stdin   with --pty: exit when stdin reaches end of file, so that a board started
 *                   by a program dies with it (the program holds the pipe)
 *
 * Static memory, sized at compile time like a board's (-D in platformio.ini or the host build):
 * FTTE_ARENA_BYTES (training arena), FTTE_STORE_BYTES (sample store), FTTE_BOARD_MAX_FRAME.
 * Nothing is allocated at run time. Diagnostics go to stderr.
 */
#define _XOPEN_SOURCE 600
#define _DEFAULT_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ftte_board.h"
#include "ftte_model_data.h"

#ifndef FTTE_ARENA_BYTES
#define FTTE_ARENA_BYTES (1024u * 1024u)
#endif
#ifndef FTTE_STORE_BYTES
#define FTTE_STORE_BYTES (4u * 1024u * 1024u)
#endif
#ifndef FTTE_BOARD_MAX_FRAME
#define FTTE_BOARD_MAX_FRAME FTTE_WIRE_MAX_FRAME
#endif

/* The board's memory: static, as on a microcontroller. */
static uint32_t arena[FTTE_ARENA_BYTES / 4];
static uint32_t store[FTTE_STORE_BYTES / 4];
static float weights[FTTE_MODEL_PARAMETERS];
static uint8_t rx[FTTE_BOARD_RX_BYTES(FTTE_BOARD_MAX_FRAME)];
static uint8_t tx[FTTE_BOARD_TX_BYTES(FTTE_BOARD_MAX_FRAME)];
static uint8_t stage[FTTE_BOARD_STAGE_BYTES(FTTE_BOARD_MAX_FRAME)];
static ftte_board board;

typedef struct {
    int in, out;   /* the link */
    int watch;     /* fd whose end of file ends the program, or -1 */
} link_fds;

static uint32_t millis(void *ctx) {
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

static void check_watch(const link_fds *l, struct pollfd *p) {
    if (l->watch < 0 || !(p->revents & (POLLIN | POLLHUP | POLLERR))) return;
    char c[64];
    ssize_t r = read(l->watch, c, sizeof c);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) exit(0);
}

static int32_t link_read(void *ctx, uint8_t *buf, uint32_t cap, uint32_t timeout_ms) {
    const link_fds *l = (const link_fds *)ctx;
    struct pollfd p[2] = {{l->in, POLLIN, 0}, {l->watch, POLLIN, 0}};
    int n = poll(p, l->watch >= 0 ? 2 : 1, (int)timeout_ms);
    if (n < 0) return errno == EINTR ? 0 : -1;
    if (l->watch >= 0) check_watch(l, &p[1]);
    if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) return 0;
    ssize_t r = read(l->in, buf, cap);
    if (r > 0) return (int32_t)r;
    if (r == 0) return l->watch >= 0 ? 0 : -1; /* stdio: end of input ends the board */
    if (errno == EAGAIN || errno == EINTR) return 0;
    if (errno == EIO) { /* a pty whose other side is closed: wait for it to be opened again */
        poll(NULL, 0, timeout_ms ? (int)timeout_ms : 1);
        return 0;
    }
    return -1;
}

/* Writes everything, waiting at most 2 s for room each time: a host that stopped reading costs
 * the frame, never a hang. */
static int32_t link_write(void *ctx, const uint8_t *buf, uint32_t n) {
    const link_fds *l = (const link_fds *)ctx;
    while (n > 0) {
        ssize_t w = write(l->out, buf, n);
        if (w > 0) {
            buf += w, n -= (uint32_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR) return -1;
        struct pollfd p = {l->out, POLLOUT, 0};
        if (poll(&p, 1, 2000) <= 0) return -1;
    }
    return 0;
}

static int open_pty(char *path, size_t cap) {
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) return -1;
    const char *name = ptsname(master);
    if (name == NULL || strlen(name) >= cap) return -1;
    strcpy(path, name);
    /* Hold the serial side open ourselves, in raw mode: no echo of what we write, no line
     * editing, and reads of the master never fail while the host has it closed. */
    int slave = open(path, O_RDWR | O_NOCTTY);
    if (slave < 0) return -1;
    struct termios t;
    if (tcgetattr(slave, &t) == 0) {
        cfmakeraw(&t);
        tcsetattr(slave, TCSANOW, &t);
    }
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    return master;
}

/* ---- storage: the record in one file (head, then body), replaced through a rename ---------- */

static int32_t file_load(void *ctx, uint32_t part, void *buf, uint32_t n) {
    const char *path = (const char *)ctx;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return errno == ENOENT ? FTTE_BOARD_NO_RECORD : -2;
    off_t at = part == FTTE_BOARD_STORED_BODY ? FTTE_BOARD_STORED_BODY_OFFSET : 0;
    ssize_t got = pread(fd, buf, n, at);
    close(fd);
    return got == (ssize_t)n ? 0 : -2;
}

static int write_all(int fd, const void *buf, uint32_t n) {
    const uint8_t *p = (const uint8_t *)buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w, n -= (uint32_t)w;
    }
    return 0;
}

/* A new file renamed over the old one: a kill mid-write leaves the previous record whole. */
static int32_t file_save(void *ctx, const void *head, uint32_t head_bytes, const void *body, uint32_t body_bytes) {
    const char *path = (const char *)ctx;
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int ok = fd >= 0 && write_all(fd, head, head_bytes) == 0 && write_all(fd, body, body_bytes) == 0 &&
             fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0) ok = 0;
    if (ok && rename(tmp, path) == 0) {
        fprintf(stderr, "ftte_board: weights 0x%08x saved to %s\n", (unsigned)ftte_board_weights_crc(&board), path);
        return 0;
    }
    fprintf(stderr, "ftte_board: cannot save the weights to %s: %s\n", path, strerror(errno));
    unlink(tmp);
    return -1;
}

static int parse_hex_id(const char *text, uint8_t id[FTTE_WIRE_BOARD_ID_SIZE]) {
    size_t len = strlen(text);
    if (len == 0 || len > 2 * FTTE_WIRE_BOARD_ID_SIZE) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v << 4 | (uint64_t)d;
    }
    for (int i = FTTE_WIRE_BOARD_ID_SIZE - 1; i >= 0; i--, v >>= 8) id[i] = (uint8_t)v;
    return 0;
}

static int usage(const char *program) {
    fprintf(stderr, "usage: %s [--pty | --stdio] [--ram BYTES] [--id HEX] [--max-frame N] "
                    "[--storage FILE] [--watch-stdin]\n", program);
    return 2;
}

int main(int argc, char **argv) {
    int use_stdio = 0, watch_stdin = 0;
    unsigned long ram = 0, max_frame = FTTE_BOARD_MAX_FRAME;
    const char *storage_path = NULL;
    ftte_board_config config;
    memset(&config, 0, sizeof config);
    uint64_t pid = (uint64_t)getpid();
    for (int i = FTTE_WIRE_BOARD_ID_SIZE - 1; i >= 0; i--, pid >>= 8) config.board_id[i] = (uint8_t)pid;
    config.board_id[0] = 'N'; /* native */

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char *end = NULL;
        if (strcmp(a, "--pty") == 0) {
            use_stdio = 0;
        } else if (strcmp(a, "--stdio") == 0) {
            use_stdio = 1;
        } else if (strcmp(a, "--watch-stdin") == 0) {
            watch_stdin = 1;
        } else if (strcmp(a, "--ram") == 0 && i + 1 < argc) {
            ram = strtoul(argv[++i], &end, 0);
            if (*end != '\0' || ram == 0 || ram > FTTE_ARENA_BYTES) {
                fprintf(stderr, "ftte_board: --ram must be 1..%u bytes\n", (unsigned)FTTE_ARENA_BYTES);
                return 2;
            }
        } else if (strcmp(a, "--max-frame") == 0 && i + 1 < argc) {
            max_frame = strtoul(argv[++i], &end, 0);
            if (*end != '\0' || max_frame < FTTE_WIRE_MIN_FRAME || max_frame > FTTE_BOARD_MAX_FRAME) {
                fprintf(stderr, "ftte_board: --max-frame must be %d..%d\n", FTTE_WIRE_MIN_FRAME,
                        (int)FTTE_BOARD_MAX_FRAME);
                return 2;
            }
        } else if (strcmp(a, "--storage") == 0 && i + 1 < argc) {
            storage_path = argv[++i];
            if (*storage_path == '\0') {
                fprintf(stderr, "ftte_board: --storage needs a file name\n");
                return 2;
            }
        } else if (strcmp(a, "--id") == 0 && i + 1 < argc) {
            if (parse_hex_id(argv[++i], config.board_id) != 0) {
                fprintf(stderr, "ftte_board: --id takes up to 16 hex digits\n");
                return 2;
            }
        } else {
            return usage(argv[0]);
        }
    }
    config.ram_budget = (uint32_t)ram;
    config.flash_size = 0;
    config.cpu_hz = 0; /* the host's clock: not a number worth announcing */

    link_fds fds = {0, 1, -1};
    if (!use_stdio) {
        char path[128];
        int master = open_pty(path, sizeof path);
        if (master < 0) {
            perror("ftte_board: cannot open a pseudo-terminal");
            return 1;
        }
        fds.in = fds.out = master;
        fds.watch = watch_stdin ? 0 : -1;
        printf("%s\n", path);
        fflush(stdout);
    }

    const ftte_port port = {&fds, link_read, link_write, millis};
    const ftte_board_memory memory = {arena, sizeof arena, store, sizeof store, weights,
                                      FTTE_MODEL_PARAMETERS, rx, tx, stage, (uint32_t)max_frame};
    ftte_wire_status st = ftte_board_init(&board, &config, &port, &memory, &ftte_model_data);
    if (st != FTTE_WIRE_OK) {
        fprintf(stderr, "ftte_board: init failed: %s\n", ftte_wire_status_string(st));
        return 1;
    }
    if (storage_path != NULL) {
        const ftte_storage storage = {(void *)storage_path, file_load, file_save};
        ftte_board_stored stored = ftte_board_attach_storage(&board, &storage);
        fprintf(stderr, "ftte_board: storage %s: %s (weights 0x%08x)\n", storage_path,
                ftte_board_stored_string(stored), (unsigned)ftte_board_weights_crc(&board));
    }
    fprintf(stderr, "ftte_board: model hash 0x%08x, %u parameters, arena %u B, store %u samples, "
                    "max frame %lu\n", (unsigned)board.layout_hash, (unsigned)FTTE_MODEL_PARAMETERS,
            (unsigned)board.arena_budget, (unsigned)board.sample_capacity, max_frame);
    ftte_board_run(&board);
    return 0;
}
