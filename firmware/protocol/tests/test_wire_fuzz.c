/*
 * Fuzzing of everything that reads untrusted bytes, under AddressSanitizer and UBSan: the
 * streaming decoder, the frame parser, every unpack, the selection decoder and COBS. Random
 * streams and mutated valid frames; the invariants are: no out-of-bounds access, every frame
 * the decoder yields passes the parser and re-encodes to the same frame, and after any garbage
 * a delimiter and a good frame always give that frame back.
 *
 * Deterministic (fixed seeds), about a million bytes, well under a second without sanitizers.
 */
#include "ftte_test.h"
#include "ftte_wire.h"
#include "wire_examples.h"

static uint32_t rng_state = 0x9E3779B9u;
static uint32_t rnd(void) {
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}
static uint32_t rnd_below(uint32_t n) { return n ? rnd() % n : 0; }

static uint8_t reencoded[FTTE_WIRE_MAX_ENCODED];
static uint8_t scratch[FTTE_WIRE_MAX_FRAME];

/* A frame the decoder yielded: the parser agrees, and if its payload unpacks, the message
 * re-encodes (same flags, seq, tag) to a frame that decodes to the same bytes. */
static void check_yielded(const uint8_t *buf, int32_t len, const ftte_wire_frame *f) {
    ftte_wire_frame again;
    FTTE_CHECK(ftte_wire_frame_parse(buf, (size_t)len, &again) == FTTE_WIRE_OK);
    FTTE_CHECK(f->payload == buf + FTTE_WIRE_HEADER_SIZE && f->payload_len + FTTE_WIRE_OVERHEAD <= len);
    ftte_msg m;
    if (ftte_wire_decode(f, &m) != FTTE_WIRE_OK) return;
    int32_t n = ftte_wire_encode(&m, f->flags, f->seq, f->tag, reencoded, sizeof reencoded);
    FTTE_CHECK(n > 0);
    if (n <= 0) return;
    int32_t back = ftte_wire_cobs_decode(reencoded, (size_t)n - 1, scratch, sizeof scratch);
    FTTE_CHECK(back == len && memcmp(scratch, buf, (size_t)len) == 0);
}

/* Feeds a stream in random-size pieces; returns frames yielded. */
static int feed_stream(ftte_wire_decoder *d, const uint8_t *data, size_t n, int *errors) {
    int frames = 0;
    size_t pos = 0;
    while (pos < n) {
        size_t piece = 1 + rnd_below(64);
        if (piece > n - pos) piece = n - pos;
        size_t off = 0;
        while (off < piece) {
            size_t used = 0;
            ftte_wire_frame f;
            int32_t r = ftte_wire_decoder_feed(d, data + pos + off, piece - off, &used, &f);
            FTTE_CHECK(used >= 1 && used <= piece - off);
            if (r > 0) {
                frames++;
                check_yielded(d->buf, r, &f);
            } else if (r < 0) {
                (*errors)++;
                /* a framing or parse status, never a codec misuse */
                FTTE_CHECK(r >= FTTE_WIRE_ERR_BAD_HEADER && r != FTTE_WIRE_ERR_ARG);
            }
            off += used;
        }
        pos += piece;
    }
    return frames;
}

static void test_fuzz_decoder_with_random_bytes(void) {
    static uint8_t stream[1 << 16];
    size_t caps[3] = {FTTE_WIRE_MIN_FRAME, 1024, FTTE_WIRE_MAX_FRAME};
    for (int round = 0; round < 24; round++) {
        /* zero density from none to dense: long frames, short frames, empty frames */
        uint32_t zero_every = (uint32_t[]){0, 2, 7, 40, 300, 5000}[round % 6];
        size_t n = 4096 + rnd_below(sizeof stream - 4096);
        for (size_t i = 0; i < n; i++) {
            uint8_t b = (uint8_t)rnd();
            if (zero_every == 0) b |= 1;
            else if (rnd_below(zero_every) == 0) b = 0;
            stream[i] = b;
        }
        size_t cap = caps[round % 3];
        uint8_t *buf = (uint8_t *)malloc(cap);
        ftte_wire_decoder d;
        ftte_wire_decoder_init(&d, buf, cap);
        int errors = 0;
        feed_stream(&d, stream, n, &errors);
        free(buf);
    }
}

/* Valid frames mutated (bit flips, byte changes, deletions, insertions, cuts, splices): the
 * decoder never yields a corrupt frame that the parser rejects, and recovers afterwards. */
static void test_fuzz_decoder_with_mutated_frames(void) {
    wire_example ex[WIRE_EXAMPLES_MAX];
    int count = wire_examples(ex);
    static uint8_t wire[WIRE_EXAMPLES_MAX][FTTE_WIRE_MAX_ENCODED / 4];
    int32_t len[WIRE_EXAMPLES_MAX];
    for (int i = 0; i < count; i++) {
        len[i] = ftte_wire_encode(&ex[i].msg, ex[i].flags, ex[i].seq, ex[i].tag, wire[i], sizeof wire[i]);
        FTTE_CHECK(len[i] > 0);
    }
    static uint8_t stream[4096];
    uint8_t buf[1024];
    ftte_wire_decoder d;
    ftte_wire_decoder_init(&d, buf, sizeof buf);
    int accepted_corrupt = 0;
    for (int trial = 0; trial < 6000; trial++) {
        int k = (int)rnd_below((uint32_t)count);
        size_t n = (size_t)len[k];
        memcpy(stream, wire[k], n);
        int mutations = 1 + (int)rnd_below(4);
        for (int m = 0; m < mutations && n > 1; m++) {
            size_t at = rnd_below((uint32_t)n);
            switch (rnd_below(6)) {
            case 0: stream[at] ^= (uint8_t)(1u << rnd_below(8)); break;
            case 1: stream[at] = (uint8_t)rnd(); break;
            case 2: memmove(stream + at, stream + at + 1, n - at - 1); n--; break; /* delete */
            case 3:
                if (n < sizeof stream - 1) {
                    memmove(stream + at + 1, stream + at, n - at);
                    stream[at] = (uint8_t)rnd();
                    n++;
                }
                break;
            case 4: n = at + 1; break; /* cut */
            default: { /* splice the head of another frame */
                int j = (int)rnd_below((uint32_t)count);
                size_t take = rnd_below((uint32_t)len[j]);
                if (n + take < sizeof stream) {
                    memcpy(stream + n, wire[j], take);
                    n += take;
                }
            }
            }
        }
        int errors = 0;
        int frames = feed_stream(&d, stream, n, &errors);
        /* A mutation that still yields a frame must have kept a valid CRC: with random
         * changes that is rare (the frame may also be an untouched prefix of a splice). */
        accepted_corrupt += frames > 0 && memcmp(stream, wire[k], (size_t)len[k]) != 0;
        /* recovery: a delimiter, then a good frame comes back exactly */
        ftte_wire_frame f;
        ftte_wire_decoder_push(&d, 0, &f);
        size_t used;
        int32_t r = ftte_wire_decoder_feed(&d, wire[0], (size_t)len[0], &used, &f);
        FTTE_CHECK(r > 0 && used == (size_t)len[0]);
    }
    /* CRC-32 lets a random corruption through with probability 2^-32: none in 6000 */
    FTTE_CHECK(accepted_corrupt == 0);
}

/* Frames with a valid CRC but random header fields and payloads: exercises the parser past the
 * CRC check and every unpack on arbitrary bytes. */
static void test_fuzz_frames_with_valid_crc(void) {
    static uint8_t frame[600], wire[700];
    uint8_t buf[FTTE_WIRE_MIN_FRAME * 4];
    ftte_wire_decoder d;
    ftte_wire_decoder_init(&d, buf, sizeof buf);
    int yielded = 0, unpacked = 0, errors = 0;
    for (int trial = 0; trial < 20000; trial++) {
        size_t payload = rnd_below(trial % 4 ? 64 : 560);
        int auth = rnd_below(4) == 0;
        size_t n = FTTE_WIRE_OVERHEAD + payload + (auth ? FTTE_WIRE_TAG_SIZE : 0);
        for (size_t i = 0; i < n; i++) frame[i] = (uint8_t)rnd();
        frame[0] = rnd_below(10) ? FTTE_WIRE_VERSION : (uint8_t)rnd();
        frame[1] = rnd_below(10) ? (uint8_t)rnd_below(0x19) : (uint8_t)rnd();
        frame[2] = rnd_below(10) ? (uint8_t)auth : (uint8_t)rnd();
        if (rnd_below(10)) frame[3] = 0;
        uint16_t len_field = rnd_below(10) ? (uint16_t)payload : (uint16_t)rnd();
        frame[6] = (uint8_t)len_field;
        frame[7] = (uint8_t)(len_field >> 8);
        uint32_t crc = ftte_wire_crc32(0, frame, n - FTTE_WIRE_CRC_SIZE);
        for (int b = 0; b < 4; b++) frame[n - 4 + (size_t)b] = (uint8_t)(crc >> (8 * b));
        int32_t wn = ftte_wire_cobs_encode(frame, n, wire, sizeof wire - 1);
        FTTE_CHECK(wn > 0);
        wire[wn++] = 0;
        size_t used;
        ftte_wire_frame f;
        int32_t r = ftte_wire_decoder_feed(&d, wire, (size_t)wn, &used, &f);
        if (r > 0) {
            yielded++;
            check_yielded(buf, r, &f);
            ftte_msg m;
            unpacked += ftte_wire_decode(&f, &m) == FTTE_WIRE_OK;
        } else {
            errors++;
            FTTE_CHECK(r < 0 && r >= FTTE_WIRE_ERR_BAD_HEADER);
        }
        if (used < (size_t)wn) ftte_wire_decoder_reset(&d); /* TOO_LARGE stops early */
    }
    FTTE_CHECK(yielded > 1000 && errors > 1000 && unpacked > 50);
}

static void test_fuzz_unpack_and_selection(void) {
    uint8_t data[FTTE_WIRE_MAX_SELECTION_BYTES + 8];
    static ftte_wire_selection s;
    for (int trial = 0; trial < 20000; trial++) {
        size_t n = rnd_below(trial % 2 ? 64 : (uint32_t)sizeof data);
        for (size_t i = 0; i < n; i++) data[i] = (uint8_t)rnd();
        if (n > 0 && trial % 3 == 0) data[0] = (uint8_t)(1 + rnd_below(6)); /* plausible layer count */
        for (size_t i = 1; i < n; i += 1 + rnd_below(6))
            if (trial % 5 == 0) data[i] = (uint8_t)rnd_below(4); /* plausible modes */
        uint8_t *exact = (uint8_t *)malloc(n ? n : 1);
        if (n) memcpy(exact, data, n);
        if (ftte_wire_selection_decode(exact, n, &s) == FTTE_WIRE_OK) {
            uint8_t again[sizeof data];
            FTTE_CHECK(ftte_wire_selection_encode(&s, again, sizeof again) == (int32_t)n);
            FTTE_CHECK(memcmp(again, exact, n) == 0);
        }
        ftte_msg m;
        uint8_t type = (uint8_t)rnd_below(0x20);
        if (ftte_msg_unpack(type, exact, n, &m) == FTTE_WIRE_OK) {
            uint8_t again[FTTE_WIRE_MAX_PAYLOAD];
            FTTE_CHECK(ftte_msg_pack(&m, again, sizeof again) == (int32_t)n);
            FTTE_CHECK(memcmp(again, exact, n) == 0);
        }
        uint8_t out[96];
        int32_t r = ftte_wire_cobs_decode(exact, n, out, sizeof out);
        FTTE_CHECK(r == FTTE_WIRE_ERR_BAD_COBS || r == FTTE_WIRE_ERR_TOO_LARGE || (r >= 0 && r <= (int32_t)n));
        free(exact);
    }
}

FTTE_TEST_MAIN(test_fuzz_decoder_with_random_bytes, test_fuzz_decoder_with_mutated_frames,
               test_fuzz_frames_with_valid_crc, test_fuzz_unpack_and_selection)
