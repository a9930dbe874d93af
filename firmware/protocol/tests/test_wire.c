/*
 * Wire codec tests: CRC-32 and COBS against published vectors, frames and their validation,
 * the streaming decoder, every message's pack/unpack and field checks, the selection encoding,
 * transfers, and the golden frames (decoded and re-encoded to identical bytes, and equal to
 * the examples of wire_examples.h).
 *
 * FTTE_WIRE_WRITE_GOLDEN=1 in the environment rewrites tests/golden_frames.txt from the
 * examples instead of checking it (only when the format changes on purpose).
 */
#include "ftte_test.h"
#include "ftte_wire.h"
#include "wire_examples.h"

#ifndef FTTE_WIRE_GOLDEN_PATH
#define FTTE_WIRE_GOLDEN_PATH "tests/golden_frames.txt"
#endif

/* ---- helpers ------------------------------------------------------------------------------- */

static uint8_t *copy_exact(const uint8_t *src, size_t n) { /* exact-size heap copy for ASan */
    uint8_t *p = (uint8_t *)malloc(n ? n : 1);
    if (n) memcpy(p, src, n);
    return p;
}

/* Encodes a message; returns its wire bytes (static buffer) and length. */
static uint8_t enc_buf[FTTE_WIRE_MAX_ENCODED];
static int32_t enc(const ftte_msg *m, uint8_t flags, uint16_t seq, const uint8_t *tag) {
    return ftte_wire_encode(m, flags, seq, tag, enc_buf, sizeof enc_buf);
}

/* Decodes exactly one frame from wire bytes through the streaming decoder; returns the push
 * result of the last byte (frame length or error). */
static uint8_t dec_buf[FTTE_WIRE_MAX_FRAME];
static int32_t dec_one(const uint8_t *wire, size_t n, ftte_wire_frame *f) {
    ftte_wire_decoder d;
    ftte_wire_decoder_init(&d, dec_buf, sizeof dec_buf);
    size_t used = 0;
    int32_t r = ftte_wire_decoder_feed(&d, wire, n, &used, f);
    return used == n ? r : -1000;
}

/* Builds a raw frame (header, payload, CRC) by hand for parse tests. */
static size_t raw_frame(uint8_t *out, uint8_t version, uint8_t type, uint8_t flags, uint8_t reserved,
                        uint16_t len_field, const uint8_t *payload, size_t n) {
    out[0] = version;
    out[1] = type;
    out[2] = flags;
    out[3] = reserved;
    out[4] = 0x34;
    out[5] = 0x12;
    out[6] = (uint8_t)(len_field & 0xFF);
    out[7] = (uint8_t)(len_field >> 8);
    if (n) memcpy(out + 8, payload, n);
    uint32_t crc = ftte_wire_crc32(0, out, 8 + n);
    out[8 + n] = (uint8_t)crc;
    out[9 + n] = (uint8_t)(crc >> 8);
    out[10 + n] = (uint8_t)(crc >> 16);
    out[11 + n] = (uint8_t)(crc >> 24);
    return 12 + n;
}

static int hex_value(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* ---- CRC-32 -------------------------------------------------------------------------------- */

static void test_crc32_vectors(void) {
    const uint8_t check[] = "123456789";
    FTTE_CHECK(ftte_wire_crc32(0, check, 9) == 0xCBF43926u);
    FTTE_CHECK(ftte_wire_crc32(0, check, 0) == 0);
    const uint8_t fox[] = "The quick brown fox jumps over the lazy dog";
    FTTE_CHECK(ftte_wire_crc32(0, fox, 43) == 0x414FA339u);
    /* chaining equals one pass */
    FTTE_CHECK(ftte_wire_crc32(ftte_wire_crc32(0, fox, 10), fox + 10, 33) == 0x414FA339u);
    FTTE_CHECK(ftte_wire_crc32(7, NULL, 5) == 7);
}

/* ---- COBS ---------------------------------------------------------------------------------- */

static void check_cobs(const uint8_t *in, size_t n, const uint8_t *expected, size_t en) {
    uint8_t *src = copy_exact(in, n);
    size_t cap = n + n / 254 + 1;
    uint8_t *out = (uint8_t *)malloc(cap);
    int32_t r = ftte_wire_cobs_encode(src, n, out, cap);
    FTTE_CHECK(r == (int32_t)en);
    if (r == (int32_t)en) FTTE_CHECK(memcmp(out, expected, en) == 0);
    uint8_t *back = (uint8_t *)malloc(n ? n : 1);
    FTTE_CHECK(ftte_wire_cobs_decode(out, en, back, n) == (int32_t)n);
    FTTE_CHECK(n == 0 || memcmp(back, in, n) == 0);
    /* one byte short of the exact output room: refused, no write past the end (ASan) */
    if (en > 0) FTTE_CHECK(ftte_wire_cobs_encode(src, n, out, en - 1) == FTTE_WIRE_ERR_TOO_LARGE);
    if (n > 0) FTTE_CHECK(ftte_wire_cobs_decode(out, en, back, n - 1) == FTTE_WIRE_ERR_TOO_LARGE);
    free(src);
    free(out);
    free(back);
}

static void test_cobs_published_vectors(void) {
    /* Wikipedia's examples 1-6 */
    check_cobs((const uint8_t[]){0x00}, 1, (const uint8_t[]){0x01, 0x01}, 2);
    check_cobs((const uint8_t[]){0x00, 0x00}, 2, (const uint8_t[]){0x01, 0x01, 0x01}, 3);
    check_cobs((const uint8_t[]){0x00, 0x11, 0x00}, 3, (const uint8_t[]){0x01, 0x02, 0x11, 0x01}, 4);
    check_cobs((const uint8_t[]){0x11, 0x22, 0x00, 0x33}, 4, (const uint8_t[]){0x03, 0x11, 0x22, 0x02, 0x33}, 5);
    check_cobs((const uint8_t[]){0x11, 0x22, 0x33, 0x44}, 4, (const uint8_t[]){0x05, 0x11, 0x22, 0x33, 0x44}, 5);
    check_cobs((const uint8_t[]){0x11, 0x00, 0x00, 0x00}, 4, (const uint8_t[]){0x02, 0x11, 0x01, 0x01, 0x01}, 5);
    check_cobs(NULL, 0, (const uint8_t[]){0x01}, 1);
}

static void test_cobs_long_runs(void) {
    /* Wikipedia 7-10: 254 non-zero bytes, a leading zero, 255 bytes, a trailing zero. */
    uint8_t in[256], out[260];
    for (int i = 0; i < 254; i++) in[i] = (uint8_t)(i + 1); /* 01..FE */
    out[0] = 0xFF;
    memcpy(out + 1, in, 254);
    check_cobs(in, 254, out, 255);

    in[0] = 0x00;
    for (int i = 1; i < 255; i++) in[i] = (uint8_t)i; /* 00 01..FE */
    out[0] = 0x01;
    out[1] = 0xFF;
    for (int i = 0; i < 254; i++) out[2 + i] = (uint8_t)(i + 1);
    check_cobs(in, 255, out, 256);

    for (int i = 0; i < 255; i++) in[i] = (uint8_t)(i + 1); /* 01..FF */
    out[0] = 0xFF;
    for (int i = 0; i < 254; i++) out[1 + i] = (uint8_t)(i + 1);
    out[255] = 0x02;
    out[256] = 0xFF;
    check_cobs(in, 255, out, 257);

    for (int i = 0; i < 254; i++) in[i] = (uint8_t)(i + 2); /* 02..FF 00 */
    in[254] = 0x00;
    out[0] = 0xFF;
    for (int i = 0; i < 254; i++) out[1 + i] = (uint8_t)(i + 2);
    out[255] = 0x01;
    out[256] = 0x01;
    check_cobs(in, 255, out, 257);
}

static void test_cobs_round_trip_random(void) {
    uint8_t in[1200], out[1300], back[1200];
    for (int trial = 0; trial < 400; trial++) {
        size_t n = (size_t)(ftte_test_rand() * 600.0f + 600.0f);
        int zeros = trial % 3; /* none, few, many */
        for (size_t i = 0; i < n; i++) {
            uint8_t b = (uint8_t)((ftte_test_rand() + 1.0f) * 127.9f);
            if (zeros == 0 && b == 0) b = 1;
            if (zeros == 2 && ftte_test_rand() > 0.0f) b = 0;
            in[i] = b;
        }
        int32_t en = ftte_wire_cobs_encode(in, n, out, sizeof out);
        FTTE_CHECK(en > 0 && (size_t)en <= n + n / 254 + 1);
        FTTE_CHECK(memchr(out, 0, (size_t)en) == NULL);
        FTTE_CHECK(ftte_wire_cobs_decode(out, (size_t)en, back, sizeof back) == (int32_t)n);
        FTTE_CHECK(memcmp(in, back, n) == 0);
    }
}

static void test_cobs_decode_rejects_broken_input(void) {
    uint8_t out[8];
    FTTE_CHECK(ftte_wire_cobs_decode((const uint8_t[]){0x05, 0x11, 0x22}, 3, out, 8) == FTTE_WIRE_ERR_BAD_COBS);
    FTTE_CHECK(ftte_wire_cobs_decode((const uint8_t[]){0x02, 0x00}, 2, out, 8) == FTTE_WIRE_ERR_BAD_COBS);
    FTTE_CHECK(ftte_wire_cobs_decode((const uint8_t[]){0x00}, 1, out, 8) == FTTE_WIRE_ERR_BAD_COBS);
    FTTE_CHECK(ftte_wire_cobs_encode(NULL, 3, out, 8) == FTTE_WIRE_ERR_ARG);
}

/* ---- frames -------------------------------------------------------------------------------- */

static void test_frame_layout_is_the_documented_one(void) {
    ftte_msg m = {.type = FTTE_MSG_PING};
    m.u.ping.nonce = 0x04030201u;
    int32_t n = enc(&m, 0, 0x1234, NULL);
    uint8_t frame[64];
    int32_t flen = ftte_wire_cobs_decode(enc_buf, (size_t)n - 1, frame, sizeof frame);
    FTTE_CHECK(enc_buf[n - 1] == 0);
    FTTE_CHECK(flen == FTTE_WIRE_OVERHEAD + FTTE_MSG_PING_SIZE);
    const uint8_t head[12] = {FTTE_WIRE_VERSION, FTTE_MSG_PING, 0, 0, 0x34, 0x12, 4, 0, 1, 2, 3, 4};
    FTTE_CHECK(memcmp(frame, head, sizeof head) == 0);
    uint32_t crc = ftte_wire_crc32(0, frame, 12);
    FTTE_CHECK(frame[12] == (uint8_t)crc && frame[13] == (uint8_t)(crc >> 8) &&
               frame[14] == (uint8_t)(crc >> 16) && frame[15] == (uint8_t)(crc >> 24));
    uint8_t header[FTTE_WIRE_HEADER_SIZE];
    FTTE_CHECK(ftte_wire_header_pack(FTTE_MSG_PING, 0, 0x1234, 4, header) == FTTE_WIRE_OK);
    FTTE_CHECK(memcmp(header, head, sizeof header) == 0);
}

static void test_frame_auth_tag_sits_between_payload_and_crc(void) {
    uint8_t tag[FTTE_WIRE_TAG_SIZE];
    for (int i = 0; i < FTTE_WIRE_TAG_SIZE; i++) tag[i] = (uint8_t)(0xA0 + i);
    ftte_msg m = {.type = FTTE_MSG_PING};
    m.u.ping.nonce = 7;
    FTTE_CHECK(enc(&m, FTTE_WIRE_FLAG_AUTH, 1, NULL) == FTTE_WIRE_ERR_ARG); /* tag required */
    FTTE_CHECK(enc(&m, 0x80, 1, NULL) == FTTE_WIRE_ERR_BAD_HEADER);
    int32_t n = enc(&m, FTTE_WIRE_FLAG_AUTH, 1, tag);
    ftte_wire_frame f;
    int32_t r = dec_one(enc_buf, (size_t)n, &f);
    FTTE_CHECK(r == FTTE_WIRE_OVERHEAD + FTTE_MSG_PING_SIZE + FTTE_WIRE_TAG_SIZE);
    FTTE_CHECK(f.flags == FTTE_WIRE_FLAG_AUTH && f.payload_len == FTTE_MSG_PING_SIZE);
    FTTE_CHECK(f.tag == f.payload + FTTE_MSG_PING_SIZE && memcmp(f.tag, tag, sizeof tag) == 0);
    ftte_msg back;
    FTTE_CHECK(ftte_wire_decode(&f, &back) == FTTE_WIRE_OK && back.u.ping.nonce == 7);
    /* same payload bytes and offsets with or without the tag */
    n = enc(&m, 0, 1, NULL);
    r = dec_one(enc_buf, (size_t)n, &f);
    FTTE_CHECK(r > 0 && f.tag == NULL && f.payload == dec_buf + FTTE_WIRE_HEADER_SIZE);
}

static void test_frame_parse_reports_each_problem(void) {
    uint8_t frame[64], payload[4] = {1, 2, 3, 4};
    ftte_wire_frame f;
    size_t n = raw_frame(frame, 1, FTTE_MSG_PING, 0, 0, 4, payload, 4);
    FTTE_CHECK(ftte_wire_frame_parse(frame, n, &f) == FTTE_WIRE_OK && f.seq == 0x1234);
    FTTE_CHECK(ftte_wire_frame_parse(frame, 11, &f) == FTTE_WIRE_ERR_TRUNCATED);
    frame[9] ^= 0x40;
    FTTE_CHECK(ftte_wire_frame_parse(frame, n, &f) == FTTE_WIRE_ERR_BAD_CRC);
    n = raw_frame(frame, 2, FTTE_MSG_PING, 0, 0, 4, payload, 4);
    FTTE_CHECK(ftte_wire_frame_parse(frame, n, &f) == FTTE_WIRE_ERR_BAD_VERSION);
    n = raw_frame(frame, 1, FTTE_MSG_PING, 0x02, 0, 4, payload, 4);
    FTTE_CHECK(ftte_wire_frame_parse(frame, n, &f) == FTTE_WIRE_ERR_BAD_HEADER);
    n = raw_frame(frame, 1, FTTE_MSG_PING, 0, 9, 4, payload, 4);
    FTTE_CHECK(ftte_wire_frame_parse(frame, n, &f) == FTTE_WIRE_ERR_BAD_HEADER);
    n = raw_frame(frame, 1, FTTE_MSG_PING, 0, 0, 6, payload, 4); /* says 6, has 4 */
    FTTE_CHECK(ftte_wire_frame_parse(frame, n, &f) == FTTE_WIRE_ERR_TRUNCATED);
    n = raw_frame(frame, 1, FTTE_MSG_PING, FTTE_WIRE_FLAG_AUTH, 0, 4, payload, 4); /* tag missing */
    FTTE_CHECK(ftte_wire_frame_parse(frame, n, &f) == FTTE_WIRE_ERR_TRUNCATED);
    n = raw_frame(frame, 1, FTTE_MSG_PING, 0, 0, 2, payload, 4); /* says 2, has 4 */
    FTTE_CHECK(ftte_wire_frame_parse(frame, n, &f) == FTTE_WIRE_ERR_BAD_HEADER);
    n = raw_frame(frame, 1, 0x42, 0, 0, 4, payload, 4);
    FTTE_CHECK(ftte_wire_frame_parse(frame, n, &f) == FTTE_WIRE_ERR_UNKNOWN_TYPE);
    n = raw_frame(frame, 1, 0, 0, 0, 4, payload, 4);
    FTTE_CHECK(ftte_wire_frame_parse(frame, n, &f) == FTTE_WIRE_ERR_UNKNOWN_TYPE);
    /* a payload longer than the build's limit */
    uint8_t *big = (uint8_t *)calloc(FTTE_WIRE_MAX_PAYLOAD + 1 + 12, 1);
    uint8_t *zeros = (uint8_t *)calloc(FTTE_WIRE_MAX_PAYLOAD + 1, 1);
    n = raw_frame(big, 1, FTTE_MSG_PING, 0, 0, FTTE_WIRE_MAX_PAYLOAD + 1, zeros, FTTE_WIRE_MAX_PAYLOAD + 1);
    FTTE_CHECK(ftte_wire_frame_parse(big, n, &f) == FTTE_WIRE_ERR_TOO_LARGE);
    free(big);
    free(zeros);
}

static void test_frame_encode_limits(void) {
    uint8_t *payload = (uint8_t *)calloc(FTTE_WIRE_MAX_PAYLOAD + 1, 1);
    uint8_t *out = (uint8_t *)malloc(FTTE_WIRE_MAX_ENCODED + 64);
    int32_t n = ftte_wire_frame_encode(FTTE_MSG_PING, 0, 0, payload, FTTE_WIRE_MAX_PAYLOAD, NULL, out,
                                       FTTE_WIRE_MAX_ENCODED);
    FTTE_CHECK(n > 0 && n <= FTTE_WIRE_ENCODED_BOUND(FTTE_WIRE_MAX_FRAME - FTTE_WIRE_TAG_SIZE));
    FTTE_CHECK(ftte_wire_frame_encode(FTTE_MSG_PING, 0, 0, payload, FTTE_WIRE_MAX_PAYLOAD + 1, NULL, out,
                                      FTTE_WIRE_MAX_ENCODED + 64) == FTTE_WIRE_ERR_TOO_LARGE);
    /* every output capacity short of the need is refused without writing past it (ASan) */
    uint8_t small[40];
    ftte_msg m = {.type = FTTE_MSG_ACK};
    m.u.ack.acked_type = FTTE_MSG_TASK;
    int32_t need = ftte_wire_encode(&m, 0, 3, NULL, small, sizeof small);
    FTTE_CHECK(need > 0);
    for (int32_t cap = 0; cap < need; cap++) {
        uint8_t *exact = (uint8_t *)malloc((size_t)(cap ? cap : 1));
        FTTE_CHECK(ftte_wire_encode(&m, 0, 3, NULL, exact, (size_t)cap) == FTTE_WIRE_ERR_TOO_LARGE);
        free(exact);
    }
    free(payload);
    free(out);
}

/* ---- streaming decoder --------------------------------------------------------------------- */

static void test_decoder_yields_frames_from_a_stream(void) {
    static uint8_t stream[4096];
    size_t len = 0;
    stream[len++] = 0; /* a leading flush delimiter */
    for (uint16_t i = 0; i < 20; i++) {
        ftte_msg m = {.type = FTTE_MSG_PING};
        m.u.ping.nonce = 1000u + i;
        len += (size_t)ftte_wire_encode(&m, 0, i, NULL, stream + len, sizeof stream - len);
        if (i % 4 == 0) stream[len++] = 0; /* idle delimiters are ignored */
    }
    /* fed byte by byte */
    ftte_wire_decoder d;
    uint8_t buf[64];
    FTTE_CHECK(ftte_wire_decoder_init(&d, buf, sizeof buf) == FTTE_WIRE_OK);
    ftte_wire_frame f;
    int got = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t r = ftte_wire_decoder_push(&d, stream[i], &f);
        FTTE_CHECK(r >= 0);
        if (r > 0) {
            ftte_msg m;
            FTTE_CHECK(ftte_wire_decode(&f, &m) == FTTE_WIRE_OK);
            FTTE_CHECK(f.seq == got && m.u.ping.nonce == 1000u + (uint32_t)got);
            got++;
        }
    }
    FTTE_CHECK(got == 20 && !ftte_wire_decoder_pending(&d));
    /* fed in uneven buffers */
    ftte_wire_decoder_reset(&d);
    got = 0;
    size_t pos = 0;
    while (pos < len) {
        size_t piece = 1 + (pos * 7) % 23, used;
        if (piece > len - pos) piece = len - pos;
        const uint8_t *p = stream + pos;
        size_t left = piece;
        while (left > 0) {
            int32_t r = ftte_wire_decoder_feed(&d, p, left, &used, &f);
            FTTE_CHECK(r >= 0);
            if (r > 0) got++;
            p += used;
            left -= used;
        }
        pos += piece;
    }
    FTTE_CHECK(got == 20);
}

static void test_decoder_resynchronises_after_errors(void) {
    uint8_t buf[FTTE_WIRE_MIN_FRAME];
    ftte_wire_decoder d;
    ftte_wire_decoder_init(&d, buf, sizeof buf);
    ftte_wire_frame f;
    ftte_msg m = {.type = FTTE_MSG_PING};
    m.u.ping.nonce = 5;
    int32_t n = enc(&m, 0, 1, NULL);
    uint8_t good[32];
    memcpy(good, enc_buf, (size_t)n);

    /* a corrupted payload byte under valid COBS: BAD_CRC at the delimiter, then resync */
    uint8_t frame[32], bad[40];
    int32_t flen = ftte_wire_cobs_decode(good, (size_t)n - 1, frame, sizeof frame);
    frame[FTTE_WIRE_HEADER_SIZE] ^= 0x01;
    int32_t bn = ftte_wire_cobs_encode(frame, (size_t)flen, bad, sizeof bad);
    bad[bn++] = 0;
    size_t used;
    FTTE_CHECK(ftte_wire_decoder_feed(&d, bad, (size_t)bn, &used, &f) == FTTE_WIRE_ERR_BAD_CRC);
    FTTE_CHECK(ftte_wire_decoder_feed(&d, good, (size_t)n, &used, &f) == FTTE_WIRE_OVERHEAD + 4);

    /* a block that promises 4 bytes and gets 2 before the delimiter: BAD_COBS */
    FTTE_CHECK(ftte_wire_decoder_feed(&d, (const uint8_t[]){0x05, 0x11, 0x22, 0x00}, 4, &used, &f) ==
               FTTE_WIRE_ERR_BAD_COBS);
    FTTE_CHECK(ftte_wire_decoder_feed(&d, good, (size_t)n, &used, &f) > 0);

    /* a frame too large for the buffer: TOO_LARGE once, the rest skipped, then resync */
    static uint8_t huge[FTTE_WIRE_MAX_ENCODED];
    uint8_t payload[600] = {0};
    int32_t hn = ftte_wire_frame_encode(FTTE_MSG_PING, 0, 2, payload, sizeof payload, NULL, huge, sizeof huge);
    int errors = 0, frames = 0;
    for (int32_t i = 0; i < hn; i++) {
        int32_t r = ftte_wire_decoder_push(&d, huge[i], &f);
        errors += r < 0;
        frames += r > 0;
        if (r < 0) FTTE_CHECK(r == FTTE_WIRE_ERR_TOO_LARGE);
    }
    FTTE_CHECK(errors == 1 && frames == 0);
    FTTE_CHECK(ftte_wire_decoder_feed(&d, good, (size_t)n, &used, &f) > 0);

    /* a lone code byte then delimiter: an empty frame is TRUNCATED */
    FTTE_CHECK(ftte_wire_decoder_feed(&d, (const uint8_t[]){0x01, 0x00}, 2, &used, &f) == FTTE_WIRE_ERR_TRUNCATED);
    /* garbage with no delimiter merges with the next frame: one error for both */
    uint8_t glued[64] = {0x33, 0x44, 0x55};
    memcpy(glued + 3, good, (size_t)n);
    FTTE_CHECK(ftte_wire_decoder_feed(&d, glued, 3 + (size_t)n, &used, &f) < 0 && used == 3 + (size_t)n);
    /* after a flush delimiter the next good frame always decodes */
    FTTE_CHECK(ftte_wire_decoder_push(&d, 0, &f) <= 0);
    FTTE_CHECK(ftte_wire_decoder_feed(&d, good, (size_t)n, &used, &f) > 0);
    FTTE_CHECK(ftte_wire_decoder_init(&d, buf, FTTE_WIRE_OVERHEAD - 1) == FTTE_WIRE_ERR_ARG);
}

static void test_decoder_accepts_a_frame_of_exactly_its_capacity(void) {
    for (size_t cap = FTTE_WIRE_MIN_FRAME; cap < FTTE_WIRE_MIN_FRAME + 300; cap += 37) {
        uint8_t *buf = (uint8_t *)malloc(cap);
        ftte_wire_decoder d;
        ftte_wire_decoder_init(&d, buf, cap);
        int32_t room = ftte_wire_chunk_capacity((uint32_t)cap, 0);
        uint8_t body[512];
        for (int i = 0; i < (int)sizeof body; i++) body[i] = (uint8_t)(i * 13);
        ftte_msg m = {.type = FTTE_MSG_DATA_CHUNK};
        m.u.chunk.offset = 4;
        m.u.chunk.data = body;
        m.u.chunk.len = (uint32_t)(cap - FTTE_WIRE_OVERHEAD - FTTE_MSG_CHUNK_HEADER_SIZE);
        FTTE_CHECK(room >= (int32_t)m.u.chunk.len - 3 && room <= (int32_t)m.u.chunk.len);
        int32_t n = enc(&m, 0, 9, NULL);
        ftte_wire_frame f;
        size_t used;
        FTTE_CHECK(ftte_wire_decoder_feed(&d, enc_buf, (size_t)n, &used, &f) == (int32_t)cap);
        m.u.chunk.len++; /* one byte more: too large */
        n = enc(&m, 0, 9, NULL);
        int32_t r = ftte_wire_decoder_feed(&d, enc_buf, (size_t)n, &used, &f);
        FTTE_CHECK(r == FTTE_WIRE_ERR_TOO_LARGE);
        free(buf);
    }
}

/* ---- messages ------------------------------------------------------------------------------ */

/* Every example message: pack, exact-size unpack, identical repack; every shorter and longer
 * payload is BAD_LENGTH (fixed-size messages). */
static void test_messages_round_trip_and_reject_wrong_lengths(void) {
    wire_example ex[WIRE_EXAMPLES_MAX];
    int count = wire_examples(ex);
    for (int i = 0; i < count; i++) {
        uint8_t payload[FTTE_WIRE_MAX_PAYLOAD];
        int32_t n = ftte_msg_pack(&ex[i].msg, payload, sizeof payload);
        FTTE_CHECK(n >= 0);
        if (n < 0) continue;
        uint8_t *exact = copy_exact(payload, (size_t)n);
        ftte_msg back;
        FTTE_CHECK(ftte_msg_unpack(ex[i].msg.type, exact, (size_t)n, &back) == FTTE_WIRE_OK);
        uint8_t again[FTTE_WIRE_MAX_PAYLOAD];
        FTTE_CHECK(ftte_msg_pack(&back, again, sizeof again) == n && memcmp(again, payload, (size_t)n) == 0);
        if (!ftte_msg_type_is_chunk(ex[i].msg.type)) {
            for (int32_t len = 0; len < n + 3; len++) {
                if (len == n) continue;
                uint8_t *p = (uint8_t *)calloc((size_t)len + 1, 1);
                FTTE_CHECK(ftte_msg_unpack(ex[i].msg.type, p, (size_t)len, &back) == FTTE_WIRE_ERR_BAD_LENGTH);
                free(p);
            }
            FTTE_CHECK(ftte_msg_pack(&ex[i].msg, again, (size_t)n - 1) == FTTE_WIRE_ERR_TOO_LARGE);
        }
        free(exact);
    }
    FTTE_CHECK(ftte_msg_unpack(FTTE_MSG_PROVISION_CHUNK, (const uint8_t[]){0, 0, 0, 0}, 4, &(ftte_msg){0}) ==
               FTTE_WIRE_ERR_BAD_LENGTH);
    FTTE_CHECK(ftte_msg_unpack(0x7F, (const uint8_t[]){0}, 1, &(ftte_msg){0}) == FTTE_WIRE_ERR_UNKNOWN_TYPE);
}

static void test_hello_fields_sit_at_their_offsets(void) {
    wire_example ex[WIRE_EXAMPLES_MAX];
    wire_examples(ex);
    uint8_t p[FTTE_MSG_HELLO_SIZE];
    FTTE_CHECK(ftte_msg_hello_pack(&ex[1].msg.u.hello, p, sizeof p) == FTTE_MSG_HELLO_SIZE);
    const uint8_t expected[FTTE_MSG_HELLO_SIZE] = {
        1, 2, 3, 4, 5, 6, 7, 8,             /* board_id */
        0x03, 0x02, 0x01, 0x00,             /* firmware 1.2.3 */
        0x00, 0x00, 0x01, 0x00,             /* ram 65536 */
        0x00, 0x00, 0x10, 0x00,             /* flash 1 MiB */
        0x00, 0x90, 0xD0, 0x03,             /* 64 MHz */
        0xEF, 0xBE, 0xAD, 0xDE,             /* layout hash */
        0x78, 0x56, 0x34, 0x12,             /* weights crc */
        0x00, 0x80, 0x00, 0x00,             /* data capacity 32768 */
        0x00, 0x01,                         /* max frame 256 */
        0x01, 0x03};                        /* wire version, caps */
    FTTE_CHECK(memcmp(p, expected, sizeof p) == 0);
}

static void test_task_fields_and_float_encoding(void) {
    wire_example ex[WIRE_EXAMPLES_MAX];
    int count = wire_examples(ex);
    const ftte_msg_task *t = NULL;
    for (int i = 0; i < count; i++)
        if (ex[i].msg.type == FTTE_MSG_TASK) t = &ex[i].msg.u.task;
    FTTE_CHECK(t != NULL);
    if (t == NULL) return;
    uint8_t p[FTTE_MSG_TASK_SIZE];
    FTTE_CHECK(ftte_msg_task_pack(t, p, sizeof p) == FTTE_MSG_TASK_SIZE);
    /* 0.01f = 0x3C23D70A, 0.9f = 0x3F666666, little endian */
    FTTE_CHECK(p[12] == 0x0A && p[13] == 0xD7 && p[14] == 0x23 && p[15] == 0x3C);
    FTTE_CHECK(p[16] == 0x66 && p[17] == 0x66 && p[18] == 0x66 && p[19] == 0x3F);
    FTTE_CHECK(p[26] == 8 && p[27] == 0);                     /* batch */
    FTTE_CHECK(p[28] == 20 && p[32] == 3 && p[36] == 32);     /* selection, params, body */
    FTTE_CHECK(ftte_wire_task_values_offset(t) == 20);
}

static void test_messages_refuse_out_of_range_fields(void) {
    wire_example ex[WIRE_EXAMPLES_MAX];
    int count = wire_examples(ex);
    uint8_t p[FTTE_WIRE_MAX_PAYLOAD];
    for (int i = 0; i < count; i++) {
        ftte_msg m = ex[i].msg;
        int expect_refused = 1;
        switch (m.type) {
        case FTTE_MSG_HELLO_REQUEST: m.u.hello_request.max_frame = FTTE_WIRE_MIN_FRAME - 1; break;
        case FTTE_MSG_HELLO: m.u.hello.caps = 0x80; break;
        case FTTE_MSG_PONG: m.u.pong.progress = 1001; break;
        case FTTE_MSG_ACK: m.u.ack.acked_type = 0x7E; break;
        case FTTE_MSG_ERROR: m.u.error.code = 0; break;
        case FTTE_MSG_PROVISION: m.u.provision.body_bytes = 6; break;
        case FTTE_MSG_TASK: m.u.task.body_bytes += 4; break;
        case FTTE_MSG_UPDATE: m.u.update.body_bytes = 0; break;
        case FTTE_MSG_DATA: m.u.data.features = 0; break;
        default:
            if (ftte_msg_type_is_chunk(m.type)) m.u.chunk.len = 0;
            else expect_refused = 0;
        }
        if (expect_refused) FTTE_CHECK(ftte_msg_pack(&m, p, sizeof p) == FTTE_WIRE_ERR_BAD_FIELD);
    }
    /* unpack checks the same: corrupt a packed field directly */
    ftte_msg m = ex[3].msg; /* pong */
    int32_t n = ftte_msg_pack(&m, p, sizeof p);
    p[9] = 1; /* reserved */
    FTTE_CHECK(ftte_msg_unpack(FTTE_MSG_PONG, p, (size_t)n, &m) == FTTE_WIRE_ERR_BAD_FIELD);
    ftte_msg task = {.type = FTTE_MSG_TASK};
    for (int i = 0; i < count; i++)
        if (ex[i].msg.type == FTTE_MSG_TASK) task = ex[i].msg;
    task.u.task.learning_rate = 1.0f / 0.0f;
    FTTE_CHECK(ftte_msg_pack(&task, p, sizeof p) == FTTE_WIRE_ERR_BAD_FIELD);
    task.u.task.learning_rate = 0.1f;
    task.u.task.batch_size = 0;
    FTTE_CHECK(ftte_msg_pack(&task, p, sizeof p) == FTTE_WIRE_ERR_BAD_FIELD);
}

/* ---- selection ----------------------------------------------------------------------------- */

static void test_selection_encoding_picks_the_smaller_form(void) {
    ftte_wire_selection s;
    wire_example_selection(&s);
    uint8_t out[64];
    int32_t n = ftte_wire_selection_encode(&s, out, sizeof out);
    const uint8_t expected[] = {5,
                                FTTE_UPDATE_FROZEN,
                                FTTE_UPDATE_CHANNELS, FTTE_WIRE_SEL_BITMASK, 16, 0, 2, 0, 0x22, 0x00,
                                FTTE_UPDATE_CHANNELS, FTTE_WIRE_SEL_INDEX, 64, 0, 1, 0, 3, 0,
                                FTTE_UPDATE_BIAS,
                                FTTE_UPDATE_FULL};
    FTTE_CHECK(n == (int32_t)sizeof expected && memcmp(out, expected, sizeof expected) == 0);
    FTTE_CHECK(s.layers[1].count == 2 && s.layers[2].count == 1);
    for (int32_t cap = 0; cap < n; cap++)
        FTTE_CHECK(ftte_wire_selection_encode(&s, out, (size_t)cap) == FTTE_WIRE_ERR_TOO_LARGE);

    ftte_wire_selection back;
    memset(&back, 0xAB, sizeof back);
    FTTE_CHECK(ftte_wire_selection_decode(out, (size_t)n, &back) == FTTE_WIRE_OK);
    FTTE_CHECK(back.num_layers == 5 && back.mask_bytes == 2 + 8);
    FTTE_CHECK(back.layers[2].mode == FTTE_UPDATE_CHANNELS && back.layers[2].out_channels == 64 &&
               back.layers[2].count == 1 && back.masks[back.layers[2].mask_offset] == 0x08);
    uint8_t again[64];
    FTTE_CHECK(ftte_wire_selection_encode(&back, again, sizeof again) == n && memcmp(again, out, (size_t)n) == 0);

    ftte_layer_update updates[5];
    FTTE_CHECK(ftte_wire_selection_updates(&back, updates, 5) == FTTE_WIRE_OK);
    FTTE_CHECK(updates[1].mode == FTTE_UPDATE_CHANNELS && updates[1].channel_mask[0] == 0x22);
    FTTE_CHECK(updates[0].channel_mask == NULL && updates[4].mode == FTTE_UPDATE_FULL);
    FTTE_CHECK(ftte_wire_selection_updates(&back, updates, 4) == FTTE_WIRE_ERR_MODEL_MISMATCH);
}

static void test_selection_builder(void) {
    ftte_wire_selection s, ref;
    ftte_wire_selection_init(&s);
    FTTE_CHECK(ftte_wire_selection_add_layer(&s, FTTE_UPDATE_FROZEN, 0) == FTTE_WIRE_OK);
    FTTE_CHECK(ftte_wire_selection_add_layer(&s, FTTE_UPDATE_CHANNELS, 16) == FTTE_WIRE_OK);
    FTTE_CHECK(ftte_wire_selection_add_layer(&s, FTTE_UPDATE_CHANNELS, 64) == FTTE_WIRE_OK);
    FTTE_CHECK(ftte_wire_selection_add_layer(&s, FTTE_UPDATE_BIAS, 0) == FTTE_WIRE_OK);
    FTTE_CHECK(ftte_wire_selection_add_layer(&s, FTTE_UPDATE_FULL, 0) == FTTE_WIRE_OK);
    FTTE_CHECK(ftte_wire_selection_set_channel(&s, 1, 1) == FTTE_WIRE_OK);
    FTTE_CHECK(ftte_wire_selection_set_channel(&s, 1, 5) == FTTE_WIRE_OK);
    FTTE_CHECK(ftte_wire_selection_set_channel(&s, 2, 3) == FTTE_WIRE_OK);
    FTTE_CHECK(ftte_wire_selection_set_channel(&s, 2, 64) == FTTE_WIRE_ERR_BAD_FIELD);
    FTTE_CHECK(ftte_wire_selection_set_channel(&s, 0, 0) == FTTE_WIRE_ERR_BAD_FIELD);
    FTTE_CHECK(ftte_wire_selection_set_channel(&s, 5, 0) == FTTE_WIRE_ERR_BAD_FIELD);
    FTTE_CHECK(ftte_wire_selection_has_channel(&s, 1, 5) == 1 && ftte_wire_selection_has_channel(&s, 1, 4) == 0);
    FTTE_CHECK(ftte_wire_selection_has_channel(&s, 3, 0) == FTTE_WIRE_ERR_BAD_FIELD);
    FTTE_CHECK(ftte_wire_selection_add_layer(&s, 7, 0) == FTTE_WIRE_ERR_BAD_FIELD);
    FTTE_CHECK(ftte_wire_selection_add_layer(&s, FTTE_UPDATE_CHANNELS, 0) == FTTE_WIRE_ERR_BAD_FIELD);
    FTTE_CHECK(ftte_wire_selection_add_layer(&s, FTTE_UPDATE_CHANNELS, 8 * FTTE_WIRE_MAX_MASK_BYTES) ==
               FTTE_WIRE_ERR_TOO_LARGE);
    wire_example_selection(&ref);
    uint8_t a[64], b[64];
    int32_t na = ftte_wire_selection_encode(&s, a, sizeof a), nb = ftte_wire_selection_encode(&ref, b, sizeof b);
    FTTE_CHECK(na == nb && na > 0 && memcmp(a, b, (size_t)na) == 0);
    ftte_wire_selection_init(&s);
    for (int i = 0; i < FTTE_MAX_LAYERS; i++) FTTE_CHECK(ftte_wire_selection_add_layer(&s, FTTE_UPDATE_BIAS, 0) == FTTE_WIRE_OK);
    FTTE_CHECK(ftte_wire_selection_add_layer(&s, FTTE_UPDATE_BIAS, 0) == FTTE_WIRE_ERR_TOO_LARGE);
}

static void test_selection_form_threshold(void) {
    /* 64 channels = 8 mask bytes: 3 indices (6 bytes) use the list, 4 (8 bytes) the mask. */
    for (uint32_t k = 0; k <= 6; k++) {
        ftte_wire_selection s;
        memset(&s, 0, sizeof s);
        s.num_layers = 1;
        s.layers[0].mode = FTTE_UPDATE_CHANNELS;
        s.layers[0].out_channels = 64;
        for (uint32_t i = 0; i < k; i++) s.masks[(i * 9) / 8] |= (uint8_t)(1u << ((i * 9) % 8));
        uint8_t out[64];
        int32_t n = ftte_wire_selection_encode(&s, out, sizeof out);
        uint8_t form = out[2];
        FTTE_CHECK(form == (2 * k < 8 ? FTTE_WIRE_SEL_INDEX : FTTE_WIRE_SEL_BITMASK));
        FTTE_CHECK(n == (int32_t)(1 + 1 + 5 + (2 * k < 8 ? 2 * k : 8)));
        ftte_wire_selection back;
        FTTE_CHECK(ftte_wire_selection_decode(out, (size_t)n, &back) == FTTE_WIRE_OK);
        FTTE_CHECK(memcmp(back.masks, s.masks, 8) == 0 && back.layers[0].count == k);
    }
}

static void test_selection_decode_rejects_malformed(void) {
    ftte_wire_selection s;
    const uint8_t list_when_mask_smaller[] = {1, FTTE_UPDATE_CHANNELS, FTTE_WIRE_SEL_INDEX, 8, 0, 2, 0, 1, 0, 2, 0};
    FTTE_CHECK(ftte_wire_selection_decode(list_when_mask_smaller, sizeof list_when_mask_smaller, &s) ==
               FTTE_WIRE_ERR_BAD_FIELD);
    const uint8_t unsorted[] = {1, FTTE_UPDATE_CHANNELS, FTTE_WIRE_SEL_INDEX, 64, 0, 2, 0, 5, 0, 3, 0};
    FTTE_CHECK(ftte_wire_selection_decode(unsorted, sizeof unsorted, &s) == FTTE_WIRE_ERR_BAD_FIELD);
    const uint8_t out_of_range[] = {1, FTTE_UPDATE_CHANNELS, FTTE_WIRE_SEL_INDEX, 64, 0, 1, 0, 64, 0};
    FTTE_CHECK(ftte_wire_selection_decode(out_of_range, sizeof out_of_range, &s) == FTTE_WIRE_ERR_BAD_FIELD);
    const uint8_t count_wrong[] = {1, FTTE_UPDATE_CHANNELS, FTTE_WIRE_SEL_BITMASK, 8, 0, 2, 0, 0x01};
    FTTE_CHECK(ftte_wire_selection_decode(count_wrong, sizeof count_wrong, &s) == FTTE_WIRE_ERR_BAD_FIELD);
    const uint8_t tail_bits[] = {1, FTTE_UPDATE_CHANNELS, FTTE_WIRE_SEL_BITMASK, 4, 0, 3, 0, 0x31};
    FTTE_CHECK(ftte_wire_selection_decode(tail_bits, sizeof tail_bits, &s) == FTTE_WIRE_ERR_BAD_FIELD);
    const uint8_t bad_mode[] = {1, 9};
    FTTE_CHECK(ftte_wire_selection_decode(bad_mode, sizeof bad_mode, &s) == FTTE_WIRE_ERR_BAD_FIELD);
    const uint8_t no_layers[] = {0};
    FTTE_CHECK(ftte_wire_selection_decode(no_layers, 1, &s) == FTTE_WIRE_ERR_BAD_FIELD);
    const uint8_t short_list[] = {2, FTTE_UPDATE_FULL};
    FTTE_CHECK(ftte_wire_selection_decode(short_list, sizeof short_list, &s) == FTTE_WIRE_ERR_TRUNCATED);
    const uint8_t trailing[] = {1, FTTE_UPDATE_FULL, 0};
    FTTE_CHECK(ftte_wire_selection_decode(trailing, sizeof trailing, &s) == FTTE_WIRE_ERR_BAD_FIELD);
    const uint8_t too_wide[] = {1, FTTE_UPDATE_CHANNELS, FTTE_WIRE_SEL_INDEX, 0xFF, 0xFF, 0, 0};
    FTTE_CHECK(ftte_wire_selection_decode(too_wide, sizeof too_wide, &s) == FTTE_WIRE_ERR_TOO_LARGE);
    /* every truncation of a valid encoding is refused */
    wire_example_selection(&s);
    uint8_t out[64];
    int32_t n = ftte_wire_selection_encode(&s, out, sizeof out);
    for (int32_t len = 0; len < n; len++) {
        uint8_t *p = copy_exact(out, (size_t)len);
        FTTE_CHECK(ftte_wire_selection_decode(p, (size_t)len, &s) != FTTE_WIRE_OK);
        free(p);
    }
}

/* ---- transfers ----------------------------------------------------------------------------- */

static void test_chunk_capacity(void) {
    FTTE_CHECK(ftte_wire_chunk_capacity(256, 0) == 240);
    FTTE_CHECK(ftte_wire_chunk_capacity(1024, 0) == 1008);
    FTTE_CHECK(ftte_wire_chunk_capacity(1024, FTTE_WIRE_FLAG_AUTH) == 992);
    FTTE_CHECK(ftte_wire_chunk_capacity(257, 0) == 240); /* rounded down to whole floats */
    FTTE_CHECK(ftte_wire_chunk_capacity(FTTE_WIRE_MIN_FRAME, FTTE_WIRE_FLAG_AUTH) == 96);
    FTTE_CHECK(ftte_wire_chunk_capacity(FTTE_WIRE_MIN_FRAME - 1, 0) == FTTE_WIRE_ERR_ARG);
    FTTE_CHECK(ftte_wire_chunk_capacity(65535, 0) == FTTE_WIRE_MAX_PAYLOAD - FTTE_MSG_CHUNK_HEADER_SIZE);
    FTTE_CHECK(ftte_wire_chunk_capacity(65535, FTTE_WIRE_FLAG_AUTH) == FTTE_WIRE_MAX_PAYLOAD - FTTE_MSG_CHUNK_HEADER_SIZE);
}

/* A 10 KB task body sent through 256-byte frames: every frame fits the receiver's buffer, the
 * receiver reassembles it, and out-of-order, duplicate and corrupt chunks are refused. */
static void test_transfer_of_a_task_through_small_frames(void) {
    enum { PARAMS = 2500, MAX_FRAME = 256 };
    ftte_wire_selection sel;
    wire_example_selection(&sel);
    static uint8_t body[8 + 64 + PARAMS * 4];
    int32_t sn = ftte_wire_selection_encode(&sel, body, sizeof body);
    uint32_t values_at = ((uint32_t)sn + 3u) & ~3u;
    memset(body + sn, 0, values_at - (uint32_t)sn);
    float *values = ftte_test_random_buffer(PARAMS);
    ftte_wire_f32_to_le(values, PARAMS, body + values_at);
    uint32_t total = values_at + PARAMS * 4;

    ftte_msg task = {.type = FTTE_MSG_TASK};
    task.u.task.learning_rate = 0.05f;
    task.u.task.local_steps = 1;
    task.u.task.batch_size = 1;
    task.u.task.selection_bytes = (uint32_t)sn;
    task.u.task.param_count = PARAMS;
    task.u.task.body_bytes = total;
    task.u.task.body_crc = ftte_wire_crc32(0, body, total);

    uint8_t rx_buf[MAX_FRAME];
    ftte_wire_decoder d;
    ftte_wire_decoder_init(&d, rx_buf, sizeof rx_buf);
    static uint8_t received[8 + 64 + PARAMS * 4];
    ftte_wire_rx_transfer t = {0};
    ftte_wire_frame f;
    ftte_msg m;
    size_t used;

    int32_t n = enc(&task, 0, 0, NULL);
    FTTE_CHECK(ftte_wire_decoder_feed(&d, enc_buf, (size_t)n, &used, &f) > 0);
    FTTE_CHECK(ftte_wire_decode(&f, &m) == FTTE_WIRE_OK && ftte_wire_rx_begin(&t, &m) == FTTE_WIRE_OK);

    int32_t room = ftte_wire_chunk_capacity(MAX_FRAME, 0);
    uint16_t seq = 1;
    int done = 0, chunks = 0;
    for (uint32_t off = 0; off < total; off += (uint32_t)room, seq++) {
        ftte_msg c = {.type = FTTE_MSG_TASK_CHUNK};
        c.u.chunk.offset = off;
        c.u.chunk.len = total - off < (uint32_t)room ? total - off : (uint32_t)room;
        c.u.chunk.data = body + off;
        n = enc(&c, 0, seq, NULL);
        int32_t r = ftte_wire_decoder_feed(&d, enc_buf, (size_t)n, &used, &f);
        FTTE_CHECK(r > 0 && r <= MAX_FRAME);
        FTTE_CHECK(ftte_wire_decode(&f, &m) == FTTE_WIRE_OK);
        memcpy(received + m.u.chunk.offset, m.u.chunk.data, m.u.chunk.len);
        int32_t st = ftte_wire_rx_chunk(&t, &m);
        FTTE_CHECK(st == (off + c.u.chunk.len == total));
        done = st == 1;
        if (chunks == 3) /* a retransmitted chunk: its offset is behind */
            FTTE_CHECK(ftte_wire_rx_chunk(&t, &m) == FTTE_WIRE_ERR_OUT_OF_ORDER);
        chunks++;
    }
    FTTE_CHECK(done && t.received == total && memcmp(received, body, total) == 0);
    FTTE_CHECK(chunks == (int)((total + (uint32_t)room - 1) / (uint32_t)room));
    ftte_wire_selection back;
    FTTE_CHECK(ftte_wire_selection_decode(received, task.u.task.selection_bytes, &back) == FTTE_WIRE_OK);
    float *got = ftte_test_zero_buffer(PARAMS);
    ftte_wire_f32_from_le(received + ftte_wire_task_values_offset(&task.u.task), PARAMS, got);
    FTTE_CHECK(memcmp(got, values, sizeof(float) * PARAMS) == 0);

    /* a corrupted body: every chunk accepted, the last refused with BAD_HASH */
    body[100] ^= 1;
    ftte_wire_rx_begin(&t, &task);
    int32_t last = 0;
    for (uint32_t off = 0; off < total; off += (uint32_t)room) {
        ftte_msg c = {.type = FTTE_MSG_TASK_CHUNK};
        c.u.chunk.offset = off;
        c.u.chunk.len = total - off < (uint32_t)room ? total - off : (uint32_t)room;
        c.u.chunk.data = body + off;
        last = ftte_wire_rx_chunk(&t, &c);
    }
    FTTE_CHECK(last == FTTE_WIRE_ERR_BAD_HASH && t.received < total);
    /* wrong chunk type, past the end, no transfer */
    ftte_msg c = {.type = FTTE_MSG_DATA_CHUNK};
    c.u.chunk.offset = t.received;
    c.u.chunk.len = 4;
    c.u.chunk.data = body;
    FTTE_CHECK(ftte_wire_rx_chunk(&t, &c) == FTTE_WIRE_ERR_UNEXPECTED);
    c.type = FTTE_MSG_TASK_CHUNK;
    c.u.chunk.len = total;
    FTTE_CHECK(ftte_wire_rx_chunk(&t, &c) == FTTE_WIRE_ERR_TOO_LARGE);
    ftte_wire_rx_transfer none = {0};
    FTTE_CHECK(ftte_wire_rx_chunk(&none, &c) == FTTE_WIRE_ERR_UNEXPECTED);
    FTTE_CHECK(ftte_wire_rx_begin(&none, &c) == FTTE_WIRE_ERR_ARG);
    free(values);
    free(got);
}

static void test_le_arrays(void) {
    const float f[3] = {1.0f, -0.0f, 3.5f};
    uint8_t b[12];
    ftte_wire_f32_to_le(f, 3, b);
    FTTE_CHECK(b[0] == 0 && b[1] == 0 && b[2] == 0x80 && b[3] == 0x3F);
    FTTE_CHECK(b[7] == 0x80 && b[11] == 0x40 && b[10] == 0x60);
    float g[3];
    ftte_wire_f32_from_le(b, 3, g);
    FTTE_CHECK(memcmp(f, g, sizeof f) == 0);
    const int32_t i[3] = {-1, 2, INT32_MIN};
    ftte_wire_i32_to_le(i, 3, b);
    FTTE_CHECK(b[0] == 0xFF && b[3] == 0xFF && b[4] == 2 && b[11] == 0x80 && b[8] == 0);
    int32_t j[3];
    ftte_wire_i32_from_le(b, 3, j);
    FTTE_CHECK(j[0] == -1 && j[1] == 2 && j[2] == INT32_MIN);
}

static void test_status_strings_and_types(void) {
    FTTE_CHECK(strstr(ftte_wire_status_string(FTTE_WIRE_ERR_BAD_CRC), "CRC") != NULL);
    FTTE_CHECK(strcmp(ftte_wire_status_string(-99), "unknown status") == 0);
    for (int32_t s = FTTE_WIRE_OK; s >= FTTE_WIRE_ERR_TRAINING; s--)
        FTTE_CHECK(strcmp(ftte_wire_status_string(s), "unknown status") != 0);
    int known = 0;
    for (int32_t t = 0; t < 256; t++) known += ftte_msg_type_known(t);
    FTTE_CHECK(known == 14);
    FTTE_CHECK(ftte_msg_type_is_chunk(FTTE_MSG_UPDATE_CHUNK) && !ftte_msg_type_is_chunk(FTTE_MSG_UPDATE));
}

/* ---- golden frames ------------------------------------------------------------------------- */

static void write_golden(const wire_example *ex, int count) {
    FILE *fp = fopen(FTTE_WIRE_GOLDEN_PATH, "w");
    FTTE_CHECK(fp != NULL);
    if (fp == NULL) return;
    fprintf(fp, "# FTTE wire golden frames (wire version %d): name, then the exact bytes on the wire\n"
                "# (COBS-encoded frame and its 0x00 delimiter) in hex. The messages are built in\n"
                "# firmware/protocol/tests/wire_examples.h and tests/test_wire.py; both the C test and\n"
                "# pytest must decode each line and re-encode it to the same bytes.\n", FTTE_WIRE_VERSION);
    for (int i = 0; i < count; i++) {
        int32_t n = enc(&ex[i].msg, ex[i].flags, ex[i].seq, ex[i].tag);
        fprintf(fp, "%s ", ex[i].name);
        for (int32_t k = 0; k < n; k++) fprintf(fp, "%02x", enc_buf[k]);
        fprintf(fp, "\n");
    }
    fclose(fp);
    printf("wrote %s\n", FTTE_WIRE_GOLDEN_PATH);
}

static void test_golden_frames(void) {
    wire_example ex[WIRE_EXAMPLES_MAX];
    int count = wire_examples(ex);
    const char *write = getenv("FTTE_WIRE_WRITE_GOLDEN");
    if (write != NULL && write[0] == '1') write_golden(ex, count);

    FILE *fp = fopen(FTTE_WIRE_GOLDEN_PATH, "r");
    FTTE_CHECK(fp != NULL);
    if (fp == NULL) return;
    static char line[2 * FTTE_WIRE_MAX_ENCODED + 128];
    int checked = 0;
    while (fgets(line, sizeof line, fp) != NULL) {
        if (line[0] == '#' || line[0] == '\n') continue;
        char *space = strchr(line, ' ');
        FTTE_CHECK(space != NULL);
        if (space == NULL) continue;
        *space = '\0';
        const char *hex = space + 1;
        size_t n = 0;
        static uint8_t wire[FTTE_WIRE_MAX_ENCODED];
        while (hex_value(hex[2 * n]) >= 0 && hex_value(hex[2 * n + 1]) >= 0 && n < sizeof wire) {
            wire[n] = (uint8_t)(hex_value(hex[2 * n]) * 16 + hex_value(hex[2 * n + 1]));
            n++;
        }
        /* decode through the streaming decoder, unpack, re-encode: identical bytes */
        uint8_t *exact = copy_exact(wire, n);
        ftte_wire_frame f;
        int32_t r = dec_one(exact, n, &f);
        FTTE_CHECK(r > 0);
        ftte_msg m;
        FTTE_CHECK(r > 0 && ftte_wire_decode(&f, &m) == FTTE_WIRE_OK);
        if (r > 0) {
            int32_t again = enc(&m, f.flags, f.seq, f.tag);
            FTTE_CHECK(again == (int32_t)n && memcmp(enc_buf, wire, n) == 0);
        }
        /* and the example of that name encodes to the same bytes */
        int found = 0;
        for (int i = 0; i < count; i++) {
            if (strcmp(ex[i].name, line) != 0) continue;
            found = 1;
            int32_t e = enc(&ex[i].msg, ex[i].flags, ex[i].seq, ex[i].tag);
            if (!(e == (int32_t)n && memcmp(enc_buf, wire, n) == 0)) printf("golden mismatch: %s\n", line);
            FTTE_CHECK(e == (int32_t)n && memcmp(enc_buf, wire, n) == 0);
        }
        FTTE_CHECK(found);
        free(exact);
        checked++;
    }
    fclose(fp);
    FTTE_CHECK(checked == count);
}

FTTE_TEST_MAIN(test_crc32_vectors, test_cobs_published_vectors, test_cobs_long_runs,
               test_cobs_round_trip_random, test_cobs_decode_rejects_broken_input,
               test_frame_layout_is_the_documented_one, test_frame_auth_tag_sits_between_payload_and_crc,
               test_frame_parse_reports_each_problem, test_frame_encode_limits,
               test_decoder_yields_frames_from_a_stream, test_decoder_resynchronises_after_errors,
               test_decoder_accepts_a_frame_of_exactly_its_capacity,
               test_messages_round_trip_and_reject_wrong_lengths, test_hello_fields_sit_at_their_offsets,
               test_task_fields_and_float_encoding, test_messages_refuse_out_of_range_fields,
               test_selection_encoding_picks_the_smaller_form, test_selection_builder, test_selection_form_threshold,
               test_selection_decode_rejects_malformed, test_chunk_capacity,
               test_transfer_of_a_task_through_small_frames, test_le_arrays,
               test_status_strings_and_types, test_golden_frames)
